//! Cryptography, all on `ring`: bearer secrets (API keys and release tokens), sealing
//! of personal data at rest, and the detached JWS agencies sign consents with.

pub mod canonical;
pub mod countersign;
pub mod jws;
pub mod keyfile;
pub mod keyring;
pub mod one_time;
pub mod seal;
pub mod secret;
pub mod signed_body;

use ring::digest;

/// SHA-256 of some bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    digest::digest(&digest::SHA256, bytes)
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}
