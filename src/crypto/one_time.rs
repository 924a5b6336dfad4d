//! One-time secrets a person reads back to prove a contact reaches them: six digits
//! for an SMS (typed from a phone), 256 random bits for an email's link. The broker
//! keeps them sealed, not hashed, because the relay worker must still send them after
//! the request that made them has answered; they are compared in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

/// Digits in an SMS code.
pub const CODE_DIGITS: usize = 6;

/// A code of [`CODE_DIGITS`] decimal digits, uniform over all of them (a draw above
/// the largest multiple of 10⁶ is drawn again, so no code is likelier than another).
pub fn numeric_code() -> String {
    const SPAN: u32 = 1_000_000;
    const FAIR: u32 = u32::MAX - u32::MAX % SPAN;
    let rng = SystemRandom::new();
    loop {
        let mut bytes = [0u8; 4];
        rng.fill(&mut bytes)
            .expect("the system random source works");
        let draw = u32::from_le_bytes(bytes);
        if draw < FAIR {
            return format!("{:0width$}", draw % SPAN, width = CODE_DIGITS);
        }
    }
}

/// A secret for a link: 256 random bits, base64url (43 characters).
pub fn link_secret() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source works");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `presented` is `expected`, compared in constant time. Inside a numeric
/// code, the spaces and hyphens a person may type (`123 456`, `123-456`) are ignored;
/// a link secret (base64url, which holds hyphens) is taken as it is, but for the
/// surrounding blanks.
pub fn matches(presented: &str, expected: &str) -> bool {
    let numeric = expected.bytes().all(|b| b.is_ascii_digit());
    let typed: String = if numeric {
        presented
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect()
    } else {
        presented.trim().to_string()
    };
    typed.as_bytes().ct_eq(expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_six_digits_and_codes_differ() {
        let codes: Vec<String> = (0..50).map(|_| numeric_code()).collect();
        assert!(codes
            .iter()
            .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit())));
        let mut distinct = codes.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 40, "{codes:?}");
    }

    #[test]
    fn a_link_secret_is_43_base64url_characters() {
        let secret = link_secret();
        assert_eq!(secret.len(), 43);
        assert!(URL_SAFE_NO_PAD.decode(&secret).is_ok());
        assert_ne!(secret, link_secret());
    }

    #[test]
    fn a_code_matches_as_typed_and_nothing_else_does() {
        assert!(matches("123456", "123456"));
        assert!(matches(" 123 456 ", "123456"));
        assert!(matches("123-456", "123456"));
        assert!(!matches("123457", "123456"));
        assert!(!matches("12345", "123456"));
        assert!(!matches("", "123456"));
        let secret = "EqHwmbxvLcx-1ENXtrgCe0YNKhvKn2MYsNsTpq-VD-k";
        assert!(matches(secret, secret));
        assert!(!matches(&secret.replace('-', ""), secret));
    }
}
