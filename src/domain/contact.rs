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
