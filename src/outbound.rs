//! Where the broker may send a request of its own: agency webhooks, the SMS gateway
//! and the checkpoint URL.
//!
//! An agency registers its webhook URL, so without a rule the broker would POST
//! wherever a tenant points it: to a cloud metadata endpoint, an admin port on
//! loopback, a database on the private network (request forgery). So every outbound
//! request goes only to a public address:
//!
//! - the URL must be `https://`, carry no credentials, and a literal IP in it must be
//!   public ([`Outbound::check`], at registration and again before each request);
//! - a host name is resolved by the client's own resolver ([`PublicOnly`]), which
//!   refuses the name if any of its addresses is not public, at every connection: a
//!   name that resolved to a public address at registration and to `127.0.0.1` later
//!   (DNS rebinding) is refused then;
//! - no client follows redirects (a `307` to loopback would otherwise carry the signed
//!   body there) or a proxy from the environment.
//!
//! Plain `http://` and private or loopback addresses are allowed only when the broker
//! runs with `--allow-insecure-outbound`, which the demo and the tests set.
//!
//! A URL is never logged whole: [`redact`] keeps the scheme, host, port and path, and
//! drops credentials and the query, which often hold a gateway's key.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// How long connecting to an outbound peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The outbound rule in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outbound {
    allow_insecure: bool,
}

impl Default for Outbound {
    /// Public `https://` addresses only.
    fn default() -> Self {
        Self::public_https_only()
    }
}

/// Why a URL or an address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not an absolute URL.
    #[error("must be an absolute URL")]
    NotAUrl,
    /// Not `https://` (or `http://` when insecure outbound is allowed).
    #[error("must be https://")]
    NotHttps,
    /// `user:password@` in the URL.
    #[error("must not carry credentials")]
    Credentials,
    /// The host is, or resolves to, an address that is not public.
    #[error("names a host that is not on the public internet ({0})")]
    NotPublic(String),
    /// The host name does not resolve.
    #[error("names a host that does not resolve")]
    Unresolvable,
}

impl Outbound {
    /// Public `https://` addresses only: the broker's default.
    pub fn public_https_only() -> Self {
        Self {
            allow_insecure: false,
        }
    }

    /// Also `http://`, loopback and private addresses: for the demo and the tests,
    /// whose peers run on this machine.
    pub fn allow_insecure() -> Self {
        Self {
            allow_insecure: true,
        }
    }

    /// Whether plain http and private addresses are allowed.
    pub fn allows_insecure(&self) -> bool {
        self.allow_insecure
    }

    /// Parses a URL and checks what can be checked without resolving it.
    pub fn parse(&self, raw: &str) -> Result<Url, Refused> {
        let url = Url::parse(raw.trim()).map_err(|_| Refused::NotAUrl)?;
        self.check(&url)?;
        Ok(url)
    }

    /// The scheme, the credentials, and the host when it is an address or a name that
    /// is private by definition (`localhost`, `*.internal`, a name without a dot).
    /// Run again before every request: a literal address is never resolved, so the
    /// resolver cannot check it.
    pub fn check(&self, url: &Url) -> Result<(), Refused> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_insecure => {}
            _ => return Err(Refused::NotHttps),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused::Credentials);
        }
        if self.allow_insecure {
            return Ok(());
        }
        match url.host() {
            None => Err(Refused::NotAUrl),
            Some(url::Host::Ipv4(ip)) => public(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => public(IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => public_name(name),
        }
    }

    /// [`Outbound::check`], then resolves a host name and checks every address it
    /// has now: what registration does, so that a tenant learns at once that its URL
    /// will not be called. The resolver checks again at every connection.
    pub async fn check_resolved(&self, url: &Url) -> Result<(), Refused> {
        self.check(url)?;
        if self.allow_insecure {
            return Ok(());
        }
        let Some(url::Host::Domain(name)) = url.host() else {
            return Ok(());
        };
        let port = url.port_or_known_default().unwrap_or(443);
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
            .await
            .map_err(|_| Refused::Unresolvable)?
            .collect();
        if addresses.is_empty() {
            return Err(Refused::Unresolvable);
        }
        addresses.iter().try_for_each(|a| public(a.ip()))
    }

    /// An HTTP client under this rule: its resolver refuses names with an address that
    /// is not public, it follows no redirect, uses no proxy, and gives up connecting
    /// after [`CONNECT_TIMEOUT`] and on the whole request after `timeout`.
    pub fn client(&self, timeout: Duration) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .https_only(!self.allow_insecure)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout)
            .dns_resolver(Arc::new(PublicOnly {
                allow_insecure: self.allow_insecure,
            }))
            .build()
            .expect("an HTTP client with a resolver builds")
    }
}

/// Why a request failed, in a word fit for a log or a delivery record: never the
/// URL, which may hold a key in its query, and never the peer's text.
pub fn failure(error: &reqwest::Error) -> &'static str {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<NotPublicAddress>().is_some() {
            return "address not public";
        }
        source = e.source();
    }
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "unreachable"
    } else if error.is_redirect() {
        "redirect refused"
    } else {
        "request failed"
    }
}

/// The URL as it may be logged: its origin (scheme, host, port) only. Credentials,
/// query and fragment can hold secrets, and so can the path: many hook services put
/// their token there (`/services/T0/B0/secret`).
pub fn redact(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// Whether an address is on the public internet: not loopback, private (RFC 1918),
/// link-local (which holds the cloud metadata address 169.254.169.254), CGNAT,
/// unique-local, multicast, documentation, benchmarking or reserved. IPv6 forms that
/// embed an IPv4 address (mapped, NAT64, 6to4) are judged by that address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let private = a == 0 // "this network"
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // CGNAT, RFC 6598
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224; // multicast, reserved, broadcast
    !private
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    let embedded = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(embedded(s[6], s[7])); // NAT64
    }
    if s[0] == 0x2002 {
        return is_public_v4(embedded(s[1], s[2])); // 6to4
    }
    let private = ip.is_unspecified()
        || ip.is_loopback()
        || s[0..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible, deprecated
        || (s[0] == 0x100 && s[1..4] == [0, 0, 0]) // discard-only
        || (s[0] == 0x2001 && s[1] < 0x200) // IETF protocol assignments, Teredo
        || (s[0] == 0x2001 && s[1] == 0xdb8) // documentation
        || (s[0] & 0xfe00) == 0xfc00 // unique local (fd00:ec2::254, a metadata address)
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local
        || (s[0] & 0xff00) == 0xff00; // multicast
    !private
}

fn public(ip: IpAddr) -> Result<(), Refused> {
    if is_public(ip) {
        Ok(())
    } else {
        Err(Refused::NotPublic(ip.to_string()))
    }
}

/// Names that are private whatever they resolve to here.
fn public_name(name: &str) -> Result<(), Refused> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let private_suffix = [
        ".localhost",
        ".local",
        ".internal",
        ".localdomain",
        ".home.arpa",
    ]
    .iter()
    .any(|suffix| name.ends_with(suffix));
    if name == "localhost" || private_suffix || !name.contains('.') {
        return Err(Refused::NotPublic(name));
    }
    Ok(())
}

/// The error the resolver fails a connection with: the name has an address that is
/// not public.
#[derive(Debug, thiserror::Error)]
#[error("the host resolves to an address that is not public")]
pub struct NotPublicAddress;

/// The clients' resolver: the system's, refusing a name if any of its addresses is
/// not public (unless insecure outbound is allowed).
#[derive(Debug)]
pub struct PublicOnly {
    allow_insecure: bool,
}

impl Resolve for PublicOnly {
    /// Resolves with the system's resolver and judges the addresses (the name's own
    /// rules were checked by [`Outbound::check`] before the request).
    fn resolve(&self, name: Name) -> Resolving {
        let allow_insecure = self.allow_insecure;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_insecure && addresses.iter().any(|a| !is_public(a.ip())) {
                return Err(Box::new(NotPublicAddress) as _);
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(raw: &str) -> Refused {
        Outbound::public_https_only().parse(raw).unwrap_err()
    }

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.0.0.5",
            "172.16.3.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2001:db8::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!is_public(ip), "{ip} must not be public");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "2002:5db8:d822::",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(is_public(ip), "{ip} is public");
        }
    }

    #[test]
    fn urls_that_point_inside_are_refused_before_any_lookup() {
        assert_eq!(refused("http://example.com/hook"), Refused::NotHttps);
        assert_eq!(refused("ftp://example.com/"), Refused::NotHttps);
        assert_eq!(
            refused("https://user:pw@example.com/"),
            Refused::Credentials
        );
        for raw in [
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.5:8443/admin",
            "https://metadata.google.internal/computeMetadata/v1/",
            "https://localhost:6379/",
            "https://127.0.0.1:2375/containers",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://[::1]/",
            "https://[::ffff:7f00:1]/",
            "https://printer.local/",
            "https://intranet/",
        ] {
            assert!(
                matches!(refused(raw), Refused::NotPublic(_)),
                "{raw} must be refused"
            );
        }
        assert!(Outbound::public_https_only()
            .parse("https://hooks.example.com/passerelle?k=1")
            .is_ok());
    }

    #[test]
    fn insecure_outbound_allows_plain_http_on_loopback_but_never_credentials() {
        let insecure = Outbound::allow_insecure();
        assert!(insecure.parse("http://127.0.0.1:9099/sms").is_ok());
        assert_eq!(
            insecure.parse("http://u:p@127.0.0.1/").unwrap_err(),
            Refused::Credentials
        );
    }

    #[test]
    fn a_redacted_url_keeps_only_its_origin() {
        let url =
            Url::parse("https://user:secret@witness.example:8443/cp/t0k3n?key=abc#x").unwrap();
        assert_eq!(redact(&url), "https://witness.example:8443");
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_that_resolves_to_loopback() {
        let strict = PublicOnly {
            allow_insecure: false,
        };
        let name: Name = "localhost".parse().unwrap();
        assert!(strict.resolve(name).await.is_err());
        let relaxed = PublicOnly {
            allow_insecure: true,
        };
        let name: Name = "localhost".parse().unwrap();
        let addresses: Vec<SocketAddr> = relaxed.resolve(name).await.unwrap().collect();
        assert!(addresses.iter().all(|a| a.ip().is_loopback()));
    }
}
