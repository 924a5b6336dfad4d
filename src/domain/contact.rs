//! Contact values: a traveller's mobile number and email address.
//!
//! Both are personal data: their `Debug` is redacted and they are only ever stored
//! sealed (see `crypto::seal`).

use super::string_serde;
use std::fmt;

/// A mobile phone number in E.164 form (`+33612345678`).
///
/// Parsed with the `phonenumber` crate (a port of libphonenumber): the number must be
/// international (a `+` and a country code), valid for its country, and able to take
/// an SMS (mobile, or a region where fixed and mobile cannot be told apart).
#[derive(Clone, PartialEq, Eq)]
pub struct MobileNumber(String);

impl MobileNumber {
    /// Parses an international mobile number; spaces, dots and dashes are allowed.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if !raw.starts_with('+') {
            return Err(
                "must be an international number starting with + and the country code".into(),
            );
        }
        let number =
            phonenumber::parse(None, raw).map_err(|_| "is not a phone number".to_string())?;
        if !number.is_valid() {
            return Err("is not a valid phone number for its country".into());
        }
        use phonenumber::Type;
        match number.number_type(&phonenumber::metadata::DATABASE) {
            Type::Mobile | Type::FixedLineOrMobile | Type::PersonalNumber => {}
            _ => {
                return Err(
                    "is not a mobile number, so it cannot receive the SMS notifications this contact is for"
                        .into(),
                )
            }
        }
        Ok(Self(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }
    /// The E.164 form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_serde!(MobileNumber);

impl fmt::Debug for MobileNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MobileNumber(<redacted>)")
    }
}

/// An email address that a message can actually be delivered to.
///
/// The `email_address` crate's defaults accept `user@localhost`, domain literals and
/// display names; all three are turned off here. The domain is lower-cased.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

/// RFC 5321 caps a forward path at 256 octets, two of them the angle brackets.
const MAX_EMAIL_LEN: usize = 254;

impl EmailAddress {
    /// Parses a plain `local@domain.tld` address.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.len() > MAX_EMAIL_LEN {
            return Err(format!("must be at most {MAX_EMAIL_LEN} characters"));
        }
        let options = email_address::Options {
            minimum_sub_domains: 2,
            allow_domain_literal: false,
            allow_display_text: false,
            ..email_address::Options::default()
        };
        let parsed = email_address::EmailAddress::parse_with_options(raw, options)
            .map_err(|_| "is not a deliverable email address (local@domain.tld)".to_string())?;
        Ok(Self(format!(
            "{}@{}",
            parsed.local_part(),
            parsed.domain().to_ascii_lowercase()
        )))
    }
    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
string_serde!(EmailAddress);

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmailAddress(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobile_numbers_are_normalised_to_e164() {
        assert_eq!(
            MobileNumber::parse("+33 6 12 34 56 78").unwrap().as_str(),
            "+33612345678"
        );
        assert_eq!(
            MobileNumber::parse("+44 7911 123456").unwrap().as_str(),
            "+447911123456"
        );
    }

    #[test]
    fn national_fixed_and_invalid_numbers_are_refused() {
        assert!(MobileNumber::parse("0612345678")
            .unwrap_err()
            .contains("international"));
        assert!(MobileNumber::parse("+33 1 42 68 53 00")
            .unwrap_err()
            .contains("mobile"));
        assert!(MobileNumber::parse("+33 6 12").is_err());
        assert!(MobileNumber::parse("+not a number").is_err());
    }

    #[test]
    fn emails_refuse_localhost_literals_and_display_names() {
        assert_eq!(
            EmailAddress::parse("Marie.Dupont@Example.FR")
                .unwrap()
                .as_str(),
            "Marie.Dupont@example.fr"
        );
        assert!(EmailAddress::parse("root@localhost").is_err());
        assert!(EmailAddress::parse("a@[127.0.0.1]").is_err());
        assert!(EmailAddress::parse("Marie <marie@example.fr>").is_err());
        assert!(EmailAddress::parse("no-at-sign.example.fr").is_err());
    }

    #[test]
    fn contact_values_never_show_in_debug_output() {
        let mobile = MobileNumber::parse("+33612345678").unwrap();
        let email = EmailAddress::parse("marie@example.fr").unwrap();
        assert!(!format!("{mobile:?}{email:?}").contains("612345678"));
        assert!(!format!("{email:?}").contains("marie"));
    }
}

/// Masks a mobile number for the traveller's own page: the country code, the first
/// digit and the last two stay, in pairs from the right (`+33 6•• •• •• 12`). Enough
/// for a traveller to recognise their number, not enough to call it.
pub fn mask_mobile(e164: &str) -> String {
    let (country, national) = match phonenumber::parse(None, e164) {
        Ok(number) => (
            number.code().value().to_string(),
            number.national().value().to_string(),
        ),
        Err(_) => (String::new(), e164.trim_start_matches('+').to_string()),
    };
    let n = national.chars().count();
    let chars: Vec<char> = national
        .chars()
        .enumerate()
        .map(|(i, d)| if i == 0 || i + 2 >= n { d } else { '•' })
        .collect();
    // Pairs from the right; the first group takes what is left (one to three digits).
    let mut groups = Vec::new();
    let mut end = chars.len();
    while end > 3 {
        groups.push(chars[end - 2..end].iter().collect::<String>());
        end -= 2;
    }
    groups.push(chars[..end].iter().collect::<String>());
    groups.reverse();
    let national = groups.join(" ");
    if country.is_empty() {
        format!("+{national}")
    } else {
        format!("+{country} {national}")
    }
}

/// Masks an email address: the first character of the mailbox and of the domain, and
/// the top-level domain (`j•••@e•••.com`).
pub fn mask_email(address: &str) -> String {
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    let (host, tld) = domain.rsplit_once('.').unwrap_or((domain, ""));
    let tld = if tld.is_empty() {
        String::new()
    } else {
        format!(".{tld}")
    };
    format!("{}•••@{}•••{tld}", first(local), first(host))
}

#[cfg(test)]
mod mask_tests {
    use super::*;

    #[test]
    fn a_french_mobile_keeps_its_country_code_first_digit_and_last_two() {
        assert_eq!(mask_mobile("+33612345612"), "+33 6•• •• •• 12");
    }

    #[test]
    fn a_british_mobile_is_masked_the_same_way() {
        assert_eq!(mask_mobile("+447700900123"), "+44 7• •• •• •• 23");
    }

    #[test]
    fn an_email_keeps_only_first_letters_and_the_top_level_domain() {
        assert_eq!(mask_email("jeanne.martin@example.com"), "j•••@e•••.com");
        assert!(!mask_email("jeanne.martin@example.com").contains("martin"));
    }
}
