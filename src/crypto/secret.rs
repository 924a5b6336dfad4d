//! Bearer secrets: API keys and release tokens.
//!
//! A secret reads `<prefix><id>.<secret>`: a readable prefix that says what it is
//! (`pas_agency_`, `pas_token_`…), a public lookup id (64 random bits, hex), and
//! 256 random bits (base64url). The database holds the id and the SHA-256 of the
//! secret part only; a lookup goes by id and the hashes are compared in constant time,
//! so neither the index nor the comparison leaks timing about the secret.

use super::sha256;
use crate::domain::ids::hex;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

/// A freshly made secret: the full string (shown once) and what is stored.
pub struct IssuedSecret {
    /// The whole secret, to hand to its holder once and never store.
    pub plaintext: String,
    /// The public lookup id.
    pub id: String,
    /// SHA-256 of the secret part.
    pub hash: [u8; 32],
}

/// A secret as presented by a caller, split but not yet checked.
pub struct PresentedSecret<'a> {
    /// The public lookup id.
    pub id: &'a str,
    secret: &'a str,
}

/// Makes a new secret with the given prefix.
pub fn issue(prefix: &str) -> IssuedSecret {
    let rng = SystemRandom::new();
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    rng.fill(&mut id).expect("the system random source works");
    rng.fill(&mut secret)
        .expect("the system random source works");
    let id = hex(&id);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    IssuedSecret {
        plaintext: format!("{prefix}{id}.{secret}"),
        hash: sha256(secret.as_bytes()),
        id,
    }
}

/// Splits a presented secret if it has the expected prefix and shape.
pub fn parse<'a>(prefix: &str, presented: &'a str) -> Option<PresentedSecret<'a>> {
    let rest = presented.strip_prefix(prefix)?;
    let (id, secret) = rest.split_once('.')?;
    let id_ok = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let secret_ok = secret.len() == 43 && URL_SAFE_NO_PAD.decode(secret).is_ok();
    (id_ok && secret_ok).then_some(PresentedSecret { id, secret })
}

impl PresentedSecret<'_> {
    /// Whether this secret matches the stored hash, compared in constant time.
    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        sha256(self.secret.as_bytes()).ct_eq(stored_hash).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_secret_parses_back_and_matches_its_hash() {
        let issued = issue("pas_token_");
        let presented = parse("pas_token_", &issued.plaintext).unwrap();
        assert_eq!(presented.id, issued.id);
        assert!(presented.matches(&issued.hash));
        assert!(!presented.matches(&[0u8; 32]));
    }

    #[test]
    fn secrets_with_another_prefix_or_shape_do_not_parse() {
        let issued = issue("pas_agency_");
        assert!(parse("pas_airline_", &issued.plaintext).is_none());
        assert!(parse("pas_agency_", "pas_agency_abc.def").is_none());
        assert!(parse(
            "pas_agency_",
            &issued.plaintext[..issued.plaintext.len() - 1]
        )
        .is_none());
    }
}
