//! Canonical JSON and detached signatures over it: canonicalising is idempotent, a
//! signature over the canonical bytes verifies and fails on any other bytes, and an
//! arbitrary string read as a detached JWS never panics the verifier.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passerelle::crypto::canonical;
use passerelle::crypto::jws::{self, Jwk};
use std::sync::OnceLock;

fn key() -> &'static (Jwk, [u8; 32]) {
    static KEY: OnceLock<(Jwk, [u8; 32])> = OnceLock::new();
    KEY.get_or_init(|| {
        let jwk = Jwk::generate("fuzz");
        let public = jwk.public_key_bytes().unwrap();
        (jwk, public)
    })
}

fuzz_target!(|data: &[u8]| {
    let (jwk, public) = key();
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(parsed) = jws::parse(text) {
            let _ = parsed.verify(public, data);
        }
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let bytes = canonical::to_vec(&value);
    let reparsed: serde_json::Value =
        serde_json::from_slice(&bytes).expect("canonical JSON parses");
    assert_eq!(
        canonical::to_vec(&reparsed),
        bytes,
        "canonicalisation is idempotent"
    );
    let signature = jwk.sign_detached(&bytes).unwrap();
    jws::parse(&signature)
        .unwrap()
        .verify(public, &bytes)
        .expect("a fresh signature verifies");
    let mut other = bytes.clone();
    other.push(b' ');
    assert!(jws::parse(&signature)
        .unwrap()
        .verify(public, &other)
        .is_err());
});
