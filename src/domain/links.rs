//! Links in a relayed message, and the domains an airline may link to.
//!
//! A relayed message reaches the traveller under the broker's sender, so a link in it
//! would be trusted like the broker: an airline (or whoever holds its key) could send
//! a phishing link to every traveller of a flight. So a message may link only to a
//! domain its airline registered, or a subdomain of one. Anything a phone or a mail
//! client would turn into a link counts: `https://…`, `www.…`, a bare `host.tld/…`,
//! an email address, and a host written with non-ASCII letters is refused outright
//! (a look-alike of a registered domain).

/// Most domains an airline may register.
pub const MAX_DOMAINS: usize = 20;

/// A domain an airline registered for links: lower-case ASCII labels (an
/// internationalised name in its `xn--` form), at least two of them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LinkDomain(String);

impl LinkDomain {
    /// Parses a domain such as `airfrance.fr`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let domain = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        if !is_host_name(&domain) || domain.len() > 253 {
            return Err(
                "must be a domain name such as `airfrance.fr` (an internationalised name in its xn-- form)"
                    .into(),
            );
        }
        Ok(Self(domain))
    }

    /// The domain.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `host` is this domain or one of its subdomains.
    pub fn covers(&self, host: &str) -> bool {
        host == self.0
            || host
                .strip_suffix(self.0.as_str())
                .is_some_and(|rest| rest.ends_with('.'))
    }
}
super::string_serde!(LinkDomain);

/// A link found in a text: the host it points to, lower-cased, or the token itself
/// when its host is written with letters outside ASCII.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// A host name in ASCII.
    Host(String),
    /// A token that reads as a link but holds non-ASCII letters.
    Unreadable(String),
}

/// The first link of `text` that none of `domains` covers.
pub fn first_outside(text: &str, domains: &[LinkDomain]) -> Option<Link> {
    links(text).find(|link| match link {
        Link::Host(host) => !domains.iter().any(|d| d.covers(host)),
        Link::Unreadable(_) => true,
    })
}

/// Every link of a text, in order.
pub fn links(text: &str) -> impl Iterator<Item = Link> + '_ {
    text.split(|c: char| c.is_whitespace() || "<>()[]{}\"'«»“”‘’|\\^`".contains(c))
        .filter_map(link_of)
}

/// The link a token reads as, if any.
fn link_of(token: &str) -> Option<Link> {
    let token = token.trim_end_matches(|c: char| ".,;:!?…".contains(c));
    if token.is_empty() {
        return None;
    }
    let lower = token.to_lowercase();
    // After a scheme (`https://`, `mailto:`) or in an email address, the host is what
    // follows the last `@` of the authority.
    let rest = match lower.split_once("://") {
        Some((_, rest)) => rest,
        None => lower.strip_prefix("mailto:").unwrap_or(&lower),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let host = host.trim_end_matches('.');
    let explicit = lower.contains("://") || lower.starts_with("www.") || authority.contains('@');
    if !host.contains('.') {
        return (explicit && !host.is_empty()).then(|| Link::Unreadable(token.to_string()));
    }
    if !host.is_ascii() {
        let tld = host.rsplit('.').next().unwrap_or("");
        let looks_like = tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic);
        return (explicit || looks_like).then(|| Link::Unreadable(token.to_string()));
    }
    if is_host_name(host) {
        return Some(Link::Host(host.to_string()));
    }
    // An address written as digits (`http://192.0.2.1/`) is a link to no domain.
    explicit.then(|| Link::Host(host.to_string()))
}

/// Dotted labels of ASCII letters, digits and hyphens, the last all letters (or an
/// `xn--` label): what a client would take for a host name.
fn is_host_name(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let tld = labels.last().copied().unwrap_or("");
    let tld_ok =
        (tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic())) || tld.starts_with("xn--");
    labels.len() >= 2 && labels.iter().all(label_ok) && tld_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains(list: &[&str]) -> Vec<LinkDomain> {
        list.iter().map(|d| LinkDomain::parse(d).unwrap()).collect()
    }

    fn hosts(text: &str) -> Vec<Link> {
        links(text).collect()
    }

    #[test]
    fn every_form_a_phone_would_turn_into_a_link_is_found() {
        assert_eq!(
            hosts("Rebook at https://www.AirFrance.fr/rebook?x=1, or www.af.com."),
            [
                Link::Host("www.airfrance.fr".into()),
                Link::Host("www.af.com".into())
            ]
        );
        assert_eq!(
            hosts("see evil.example/login now"),
            [Link::Host("evil.example".into())]
        );
        assert_eq!(
            hosts("mail help@air.example"),
            [Link::Host("air.example".into())]
        );
        assert_eq!(
            hosts("https://airfrance.fr@evil.example/"),
            [Link::Host("evil.example".into())],
            "the host is after the @"
        );
        assert_eq!(
            hosts("http://192.0.2.1/x"),
            [Link::Host("192.0.2.1".into())]
        );
        assert_eq!(
            hosts("https://аirfrance.fr/"),
            [Link::Unreadable("https://аirfrance.fr/".into())],
            "a Cyrillic а"
        );
    }

    #[test]
    fn times_flight_numbers_and_sentences_are_not_links() {
        assert!(hosts("AF1234 leaves at 10.30 from gate B12. Sorry.").is_empty());
        assert!(hosts("Vol AF1234 annulé. Nouveau départ 14h05 (porte K).").is_empty());
        assert!(hosts("flight AF1234/2026-12-01 is delayed by 2.5 hours").is_empty());
    }

    #[test]
    fn a_registered_domain_covers_itself_and_its_subdomains_only() {
        let registered = domains(&["airfrance.fr"]);
        assert_eq!(
            first_outside("https://www.airfrance.fr/x", &registered),
            None
        );
        assert_eq!(first_outside("airfrance.fr", &registered), None);
        assert_eq!(
            first_outside("https://airfrance.fr.evil.example/", &registered),
            Some(Link::Host("airfrance.fr.evil.example".into()))
        );
        assert_eq!(
            first_outside("notairfrance.fr", &registered),
            Some(Link::Host("notairfrance.fr".into()))
        );
        assert!(first_outside("no link at all", &[]).is_none());
    }

    #[test]
    fn a_domain_to_register_must_be_a_host_name() {
        assert_eq!(
            LinkDomain::parse("AirFrance.FR.").unwrap().as_str(),
            "airfrance.fr"
        );
        assert!(LinkDomain::parse("xn--bcher-kva.example").is_ok());
        for bad in [
            "fr",
            "https://airfrance.fr",
            "air france.fr",
            "192.0.2.1",
            "-a.fr",
            "bücher.de",
        ] {
            assert!(LinkDomain::parse(bad).is_err(), "{bad}");
        }
    }
}
