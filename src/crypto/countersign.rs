//! The broker's own signature on consent receipts, and its offline verification.
//!
//! A countersigned receipt is `{"receipt": {...}, "signature": "<detached JWS>",
//! "key_id": "..."}`: an EdDSA detached JWS over the RFC 8785 form of `receipt`,
//! exactly as agencies sign their statements. Anyone holding the broker's public
//! keys (served at `/.well-known/jwks.json`) can check it without the broker.

use super::canonical;
use super::jws::{self, Jwk};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A receipt with the broker's signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Countersigned {
    /// The receipt, as signed.
    pub receipt: Value,
    /// Detached compact JWS (`header..signature`) over its canonical form.
    pub signature: String,
    /// The id of the broker key that signed.
    pub key_id: String,
}

/// Why a countersigned receipt does not verify.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The JWS is not a detached EdDSA JWS.
    #[error("the signature is malformed: {0}")]
    Malformed(String),
    /// The key id in the JWS header and the one beside the receipt differ.
    #[error(
        "the key id beside the receipt (`{outside}`) is not the one in the signature (`{inside}`)"
    )]
    KeyIdMismatch {
        /// Beside the receipt.
        outside: String,
        /// In the protected header.
        inside: String,
    },
    /// No key with that id in the key set.
    #[error("no key `{0}` in the key set")]
    UnknownKey(String),
    /// The signature does not verify over the receipt.
    #[error("the signature does not verify: the receipt was changed or signed by another key")]
    BadSignature,
}

/// Signs a receipt with the broker key.
pub fn countersign(key: &Jwk, receipt: Value) -> Countersigned {
    let signature = key
        .sign_detached(&canonical::to_vec(&receipt))
        .expect("the broker key is checked when loaded");
    Countersigned {
        receipt,
        signature,
        key_id: key.kid.clone(),
    }
}

/// Verifies a countersigned receipt against a key set (public JWKs).
pub fn verify(signed: &Countersigned, keys: &[Jwk]) -> Result<(), VerifyError> {
    let jws = jws::parse(&signed.signature).map_err(|e| VerifyError::Malformed(e.to_string()))?;
    if jws.kid != signed.key_id {
        return Err(VerifyError::KeyIdMismatch {
            outside: signed.key_id.clone(),
            inside: jws.kid.clone(),
        });
    }
    let key = keys
        .iter()
        .find(|k| k.kid == jws.kid)
        .ok_or_else(|| VerifyError::UnknownKey(jws.kid.clone()))?;
    let public = key
        .public_key_bytes()
        .map_err(|e| VerifyError::Malformed(e.to_string()))?;
    jws.verify(&public, &canonical::to_vec(&signed.receipt))
        .map_err(|_| VerifyError::BadSignature)
}

/// The JWK Set that publishes the broker's public key.
pub fn key_set<'a>(keys: impl IntoIterator<Item = &'a Jwk>) -> Value {
    let keys: Vec<Value> = keys
        .into_iter()
        .map(|key| {
            let public = key.public();
            serde_json::json!({
                "kty": public.kty, "crv": public.crv, "kid": public.kid, "x": public.x,
                "use": "sig", "alg": "EdDSA",
            })
        })
        .collect();
    serde_json::json!({ "keys": keys })
}

/// Reads the keys of a JWK Set (as served at `/.well-known/jwks.json`).
pub fn parse_key_set(value: &Value) -> Result<Vec<Jwk>, String> {
    let keys = value
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("a JWK Set has a `keys` array")?;
    keys.iter()
        .map(|k| {
            let mut k = k.clone();
            if let Some(o) = k.as_object_mut() {
                o.remove("use");
                o.remove("alg");
                o.remove("d");
            }
            serde_json::from_value::<Jwk>(k).map_err(|e| format!("a key does not read: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_countersigned_receipt_verifies_until_one_byte_changes() {
        let key = Jwk::generate("broker-1");
        let signed = countersign(
            &key,
            serde_json::json!({"consentReceiptID": "cns_1", "n": 1}),
        );
        let keys = parse_key_set(&key_set([&key])).unwrap();
        assert_eq!(verify(&signed, &keys), Ok(()));
        let mut changed = signed.clone();
        changed.receipt["n"] = 2.into();
        assert_eq!(verify(&changed, &keys), Err(VerifyError::BadSignature));
        let other = parse_key_set(&key_set([&Jwk::generate("broker-1")])).unwrap();
        assert_eq!(verify(&signed, &other), Err(VerifyError::BadSignature));
        let mut renamed = signed;
        renamed.key_id = "broker-2".into();
        assert!(matches!(
            verify(&renamed, &keys),
            Err(VerifyError::KeyIdMismatch { .. })
        ));
    }
}
