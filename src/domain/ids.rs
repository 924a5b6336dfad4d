//! Public identifiers: random, prefixed by what they name, never guessable.

use ring::rand::{SecureRandom, SystemRandom};

/// A new identifier `prefix_` followed by 128 random bits in hex (`cns_3f9a…`).
///
/// Ids are random rather than sequential so that they reveal neither volumes nor
/// other parties' records.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source works");
    format!("{prefix}_{}", hex(&bytes))
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Prefix of agency party ids.
pub const AGENCY: &str = "agy";
/// Prefix of airline party ids.
pub const AIRLINE: &str = "air";
/// Prefix of compliance officer party ids.
pub const OFFICER: &str = "off";
/// Prefix of booking ids.
pub const BOOKING: &str = "bkg";
/// Prefix of traveller ids.
pub const TRAVELLER: &str = "trv";
/// Prefix of consent record ids.
pub const CONSENT: &str = "cns";

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_prefixed_and_distinct() {
        let a = super::new_id("cns");
        assert!(a.starts_with("cns_") && a.len() == 36);
        assert_ne!(a, super::new_id("cns"));
    }
}
