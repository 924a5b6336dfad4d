//! Detached JWS (RFC 7515 appendix F) with EdDSA over Ed25519 (RFC 8037).
//!
//! The compact form is `BASE64URL(header) . "" . BASE64URL(signature)`: the payload,
//! the canonical statement, travels beside the signature instead of inside it. The
//! signing input is `BASE64URL(header) "." BASE64URL(payload)`.
//!
//! The algorithm is never taken from the header: the key registered for the `kid`
//! is an Ed25519 key, so Ed25519 is what is verified, and a header that announces
//! anything but `EdDSA` (or asks for extensions through `crit`) is refused outright.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::{Arc, OnceLock};

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Not a detached compact JWS, or a header that is not what we accept.
    #[error("{0}")]
    Malformed(&'static str),
    /// The signature does not verify under the named key.
    #[error("the signature does not verify")]
    BadSignature,
}

/// A parsed detached JWS whose signature is not checked yet.
#[derive(Debug)]
pub struct DetachedJws<'a> {
    /// The key id from the protected header.
    pub kid: String,
    header_b64: &'a str,
    signature: Vec<u8>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: String,
    #[serde(default)]
    crit: Option<serde_json::Value>,
    #[serde(default)]
    b64: Option<serde_json::Value>,
}

/// Longest key id accepted.
const MAX_KID_LEN: usize = 64;

/// Parses `header..signature`, checking the header but not the signature.
pub fn parse(compact: &str) -> Result<DetachedJws<'_>, JwsError> {
    let mut parts = compact.split('.');
    let (Some(header_b64), Some(payload), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed(
            "must be a compact JWS of three dot-separated parts",
        ));
    };
    if !payload.is_empty() {
        return Err(JwsError::Malformed(
            "must be detached: the middle (payload) part must be empty",
        ));
    }
    let header = URL_SAFE_NO_PAD.decode(header_b64).map_err(|_| {
        JwsError::Malformed("the protected header is not base64url without padding")
    })?;
    let header: Header = serde_json::from_slice(&header).map_err(|_| {
        JwsError::Malformed("the protected header must be a JSON object with `alg` and `kid`")
    })?;
    if header.alg != "EdDSA" {
        return Err(JwsError::Malformed("the header's `alg` must be `EdDSA`"));
    }
    if header.crit.is_some() || header.b64.is_some() {
        return Err(JwsError::Malformed(
            "the header must not carry `crit` or `b64`",
        ));
    }
    if header.kid.is_empty() || header.kid.len() > MAX_KID_LEN {
        return Err(JwsError::Malformed(
            "the header's `kid` must have 1 to 64 characters",
        ));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| JwsError::Malformed("the signature is not base64url without padding"))?;
    if signature.len() != 64 {
        return Err(JwsError::Malformed("an Ed25519 signature is 64 bytes"));
    }
    Ok(DetachedJws {
        kid: header.kid,
        header_b64,
        signature,
    })
}

impl DetachedJws<'_> {
    /// Verifies the signature over `payload` with a 32-byte Ed25519 public key.
    pub fn verify(&self, public_key: &[u8], payload: &[u8]) -> Result<(), JwsError> {
        let input = signing_input(self.header_b64, payload);
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(&input, &self.signature)
            .map_err(|_| JwsError::BadSignature)
    }
}

fn signing_input(header_b64: &str, payload: &[u8]) -> Vec<u8> {
    format!("{header_b64}.{}", URL_SAFE_NO_PAD.encode(payload)).into_bytes()
}

/// An Ed25519 key as a JSON Web Key (RFC 8037): `d` is present on private keys only.
#[derive(Clone, Serialize, Deserialize)]
pub struct Jwk {
    /// Always `OKP`.
    pub kty: String,
    /// Always `Ed25519`.
    pub crv: String,
    /// The key id.
    pub kid: String,
    /// The public key, base64url.
    pub x: String,
    /// The private seed, base64url; absent on a public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<String>,
    /// The key pair made from `d` and `x` at the first signature, with the `d` and
    /// `x` it was made from: making it costs as much as a signature (the public key
    /// is derived to be checked against `x`), and the broker signs every receipt.
    #[serde(skip)]
    signer: OnceLock<Arc<Signer>>,
}

/// A key pair with the JWK halves it was made from.
struct Signer {
    d: String,
    x: String,
    pair: Ed25519KeyPair,
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Jwk {{ kid: {:?}, x: {:?}, d: <{}> }}",
            self.kid,
            self.x,
            if self.d.is_some() { "secret" } else { "none" }
        )
    }
}

impl Jwk {
    /// Makes a new Ed25519 key pair.
    pub fn generate(kid: &str) -> Jwk {
        let mut seed = [0u8; 32];
        SystemRandom::new()
            .fill(&mut seed)
            .expect("the system random source works");
        let pair =
            Ed25519KeyPair::from_seed_unchecked(&seed).expect("any 32 bytes are an Ed25519 seed");
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            kid: kid.into(),
            x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            d: Some(URL_SAFE_NO_PAD.encode(seed)),
            signer: OnceLock::new(),
        }
    }

    /// The public half of this key.
    pub fn public(&self) -> Jwk {
        Jwk {
            d: None,
            signer: OnceLock::new(),
            ..self.clone()
        }
    }

    /// The 32-byte public key, after checking that this is an Ed25519 JWK.
    pub fn public_key_bytes(&self) -> Result<[u8; 32], &'static str> {
        if self.kty != "OKP" || self.crv != "Ed25519" {
            return Err("the key must be an Ed25519 JWK (kty OKP, crv Ed25519)");
        }
        if self.kid.is_empty() || self.kid.len() > MAX_KID_LEN {
            return Err("the key id (kid) must have 1 to 64 characters");
        }
        let x = URL_SAFE_NO_PAD
            .decode(&self.x)
            .map_err(|_| "`x` must be base64url without padding")?;
        x.try_into()
            .map_err(|_| "`x` must be a 32-byte Ed25519 public key")
    }

    /// The key pair to sign with: made once, and again only if `d` or `x` were
    /// changed since.
    fn key_pair(&self) -> Result<Arc<Signer>, &'static str> {
        let d = self
            .d
            .as_deref()
            .ok_or("this is a public key: it has no `d` to sign with")?;
        if let Some(signer) = self.signer.get() {
            if signer.d == d && signer.x == self.x {
                return Ok(signer.clone());
            }
        }
        let seed = URL_SAFE_NO_PAD
            .decode(d)
            .map_err(|_| "`d` must be base64url without padding")?;
        let pair = Ed25519KeyPair::from_seed_and_public_key(&seed, &self.public_key_bytes()?)
            .map_err(|_| "`d` and `x` are not halves of one Ed25519 key")?;
        let signer = Arc::new(Signer {
            d: d.to_string(),
            x: self.x.clone(),
            pair,
        });
        // Kept only if none was: a key changed after its first signature is made anew.
        self.signer.set(signer.clone()).ok();
        Ok(signer)
    }

    /// A raw Ed25519 signature over `message` (RFC 8032), for formats other than JWS.
    pub fn sign_raw(&self, message: &[u8]) -> Result<[u8; 64], &'static str> {
        let signature = self.key_pair()?.pair.sign(message);
        Ok(signature
            .as_ref()
            .try_into()
            .expect("an Ed25519 signature is 64 bytes"))
    }

    /// Signs `payload` as a detached JWS with this key's `kid` in the header.
    pub fn sign_detached(&self, payload: &[u8]) -> Result<String, &'static str> {
        let signer = self.key_pair()?;
        let header = serde_json::json!({"alg": "EdDSA", "kid": self.kid});
        let header_b64 =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("a header serializes"));
        let signature = signer.pair.sign(&signing_input(&header_b64, payload));
        Ok(format!(
            "{header_b64}..{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detached_signature_verifies_over_its_payload_only() {
        let key = Jwk::generate("k1");
        let jws = key.sign_detached(b"payload").unwrap();
        let parsed = parse(&jws).unwrap();
        assert_eq!(parsed.kid, "k1");
        let public = key.public().public_key_bytes().unwrap();
        assert_eq!(parsed.verify(&public, b"payload"), Ok(()));
        assert_eq!(
            parsed.verify(&public, b"payloae"),
            Err(JwsError::BadSignature)
        );
        let other = Jwk::generate("k1").public_key_bytes().unwrap();
        assert_eq!(
            parsed.verify(&other, b"payload"),
            Err(JwsError::BadSignature)
        );
    }

    fn with_header(header: serde_json::Value) -> String {
        format!(
            "{}..{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode([0u8; 64])
        )
    }

    #[test]
    fn headers_that_choose_another_algorithm_are_refused() {
        for alg in ["none", "HS256", "ES256", "eddsa"] {
            let err =
                parse(&with_header(serde_json::json!({"alg": alg, "kid": "k1"}))).unwrap_err();
            assert!(
                matches!(err, JwsError::Malformed(m) if m.contains("EdDSA")),
                "{alg}"
            );
        }
        assert!(parse(&with_header(
            serde_json::json!({"alg": "EdDSA", "kid": "k1", "crit": ["b64"]})
        ))
        .is_err());
        assert!(parse(&with_header(serde_json::json!({"alg": "EdDSA"}))).is_err());
    }

    #[test]
    fn attached_or_mangled_forms_are_refused() {
        let key = Jwk::generate("k1");
        let jws = key.sign_detached(b"p").unwrap();
        let attached = jws.replace("..", ".cA.");
        assert!(parse(&attached).is_err());
        assert!(parse("only.two").is_err());
        assert!(parse(&format!("{jws}=")).is_err());
    }

    #[test]
    fn a_public_jwk_cannot_sign() {
        assert!(Jwk::generate("k1").public().sign_detached(b"p").is_err());
        let signed_once = Jwk::generate("k1");
        signed_once.sign_detached(b"p").unwrap();
        assert!(signed_once.public().sign_detached(b"p").is_err());
    }

    #[test]
    fn a_key_whose_halves_change_after_a_signature_signs_with_the_new_ones() {
        let mut key = Jwk::generate("k1");
        key.sign_detached(b"p").unwrap();
        let other = Jwk::generate("k1");
        key.d = other.d.clone();
        key.x = other.x.clone();
        let signed = key.sign_detached(b"p").unwrap();
        let jws = parse(&signed).unwrap();
        assert!(jws.verify(&other.public_key_bytes().unwrap(), b"p").is_ok());
        key.x = Jwk::generate("k1").x;
        assert!(key.sign_detached(b"p").is_err(), "mismatched halves");
    }
}
