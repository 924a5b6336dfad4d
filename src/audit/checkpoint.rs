//! Checkpoints: the broker's signed statement of the log's size and root, in the C2SP
//! `tlog-checkpoint` format inside a C2SP `signed-note`.
//!
//! ```text
//! passerelle.example/audit
//! 1234
//! m6Y1…base64 root…=
//!
//! — passerelle.example/audit AbCd…base64(key id ‖ Ed25519 signature)…
//! ```
//!
//! A checkpoint copied out of the database (to a directory, a URL, an officer's disk)
//! pins the history up to its size: a rewritten database can no longer produce the
//! same root. It is signed with the broker's Ed25519 key under the log's origin as key
//! name; the verifier key (`name+keyid+base64(0x01 ‖ public key)`, the format of Go's
//! `golang.org/x/mod/sumdb/note`) is all an offline verifier needs.

use super::merkle::Hash;
use crate::crypto::jws::Jwk;
use crate::crypto::sha256;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::signature::{UnparsedPublicKey, ED25519};
use std::fmt;

/// The signature type byte of Ed25519 in signed notes.
const ED25519_TYPE: u8 = 0x01;

/// Why a checkpoint or a verifier key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The text does not follow the format.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// No signature line is from the expected key.
    #[error("the checkpoint carries no signature by {0}")]
    Unsigned(String),
    /// The signature by the expected key does not verify.
    #[error("the checkpoint's signature does not verify: it was altered or signed by another key")]
    BadSignature,
    /// The verifier key does not parse.
    #[error("malformed log key: {0}")]
    BadKey(String),
}

/// A tree head: the log's origin, size and root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's name (also the signing key's name).
    pub origin: String,
    /// Entries covered.
    pub size: u64,
    /// RFC 9162 tree head of those entries.
    pub root: Hash,
}

impl Checkpoint {
    /// The signed text: origin, size and base64 root, one per line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// The checkpoint as a signed note by `key`.
    pub fn sign(&self, key: &Jwk) -> Result<String, &'static str> {
        let log_key = LogKey::of(&self.origin, key)?;
        let body = self.body();
        let signature = key.sign_raw(body.as_bytes())?;
        let mut sig = Vec::with_capacity(68);
        sig.extend_from_slice(&log_key.id);
        sig.extend_from_slice(&signature);
        Ok(format!(
            "{body}\n\u{2014} {} {}\n",
            log_key.name,
            STANDARD.encode(sig)
        ))
    }

    /// Opens a signed note: checks the signature by `key` and parses the text.
    pub fn open(note: &str, key: &LogKey) -> Result<Self, CheckpointError> {
        let malformed = |m: &str| CheckpointError::Malformed(m.to_string());
        if note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(malformed("control characters other than newline"));
        }
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| malformed("no blank line before the signatures"))?;
        let (body, signatures) = (&note[..=split], &note[split + 2..]);
        let mut signed = false;
        for line in signatures.lines() {
            let rest = line
                .strip_prefix("\u{2014} ")
                .ok_or_else(|| malformed("a signature line must start with an em dash"))?;
            let (name, sig) = rest
                .split_once(' ')
                .ok_or_else(|| malformed("a signature line names a key and a signature"))?;
            let sig = STANDARD
                .decode(sig)
                .map_err(|_| malformed("a signature is not base64"))?;
            if name != key.name || sig.len() != 68 || sig[..4] != key.id {
                continue;
            }
            UnparsedPublicKey::new(&ED25519, key.public)
                .verify(body.as_bytes(), &sig[4..])
                .map_err(|_| CheckpointError::BadSignature)?;
            signed = true;
        }
        if !signed {
            return Err(CheckpointError::Unsigned(key.name.clone()));
        }
        let mut lines = body.lines();
        let origin = lines.next().unwrap_or_default().to_string();
        if origin != key.name {
            return Err(malformed("the origin is not the log key's name"));
        }
        let size = lines
            .next()
            .and_then(|l| l.parse::<u64>().ok().filter(|_| !l.starts_with('+')))
            .ok_or_else(|| malformed("the second line must be the tree size"))?;
        let root = lines
            .next()
            .and_then(|l| STANDARD.decode(l).ok())
            .and_then(|b| <Hash>::try_from(b).ok())
            .ok_or_else(|| malformed("the third line must be a base64 SHA-256 root"))?;
        Ok(Self { origin, size, root })
    }
}

/// The public key that checkpoints verify against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogKey {
    /// The key name (the log's origin).
    pub name: String,
    /// First four bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key).
    pub id: [u8; 4],
    /// The Ed25519 public key.
    pub public: [u8; 32],
}

impl LogKey {
    /// The verifier key of `key` under the log name `origin`.
    pub fn of(origin: &str, key: &Jwk) -> Result<Self, &'static str> {
        Self::from_parts(origin, key.public_key_bytes()?)
            .map_err(|_| "the log origin must be non-empty, without spaces or `+`")
    }

    fn from_parts(name: &str, public: [u8; 32]) -> Result<Self, CheckpointError> {
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
            return Err(CheckpointError::BadKey(
                "the name must be non-empty, without spaces or `+`".into(),
            ));
        }
        let mut bytes = name.as_bytes().to_vec();
        bytes.push(b'\n');
        bytes.push(ED25519_TYPE);
        bytes.extend_from_slice(&public);
        let id = sha256(&bytes)[..4].try_into().expect("four bytes");
        Ok(Self {
            name: name.to_string(),
            id,
            public,
        })
    }

    /// Parses `name+keyid+base64(0x01 ‖ public key)`.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let bad = |m: &str| CheckpointError::BadKey(m.to_string());
        // The base64 key may itself hold `+`; the name and the hex id never do.
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected name+keyid+key"));
        };
        let key = STANDARD
            .decode(key)
            .map_err(|_| bad("the key is not base64"))?;
        let public: [u8; 32] = match key.split_first() {
            Some((&ED25519_TYPE, rest)) => rest
                .try_into()
                .map_err(|_| bad("an Ed25519 key is 32 bytes"))?,
            _ => return Err(bad("only Ed25519 keys (type 0x01) are accepted")),
        };
        let parsed = Self::from_parts(name, public)?;
        if crate::domain::ids::hex(&parsed.id) != id.to_ascii_lowercase() {
            return Err(bad("the key id does not match the name and key"));
        }
        Ok(parsed)
    }
}

impl fmt::Display for LogKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut key = vec![ED25519_TYPE];
        key.extend_from_slice(&self.public);
        write!(
            f,
            "{}+{}+{}",
            self.name,
            crate::domain::ids::hex(&self.id),
            STANDARD.encode(key)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "passerelle.test/audit".into(),
            size: 42,
            root: sha256(b"root"),
        }
    }

    #[test]
    fn a_signed_checkpoint_opens_with_its_key_and_round_trips() {
        let key = Jwk::generate("broker");
        let note = checkpoint().sign(&key).unwrap();
        assert!(note.starts_with("passerelle.test/audit\n42\n"));
        let log_key = LogKey::parse(
            &LogKey::of("passerelle.test/audit", &key)
                .unwrap()
                .to_string(),
        )
        .unwrap();
        assert_eq!(Checkpoint::open(&note, &log_key).unwrap(), checkpoint());
    }

    #[test]
    fn an_altered_or_foreign_checkpoint_is_refused() {
        let key = Jwk::generate("broker");
        let log_key = LogKey::of("passerelle.test/audit", &key).unwrap();
        let note = checkpoint().sign(&key).unwrap();
        let altered = note.replacen("\n42\n", "\n41\n", 1);
        assert_eq!(
            Checkpoint::open(&altered, &log_key),
            Err(CheckpointError::BadSignature)
        );
        let foreign = checkpoint().sign(&Jwk::generate("other")).unwrap();
        assert!(matches!(
            Checkpoint::open(&foreign, &log_key),
            Err(CheckpointError::Unsigned(_))
        ));
        assert!(Checkpoint::open("passerelle.test/audit\n42\n", &log_key).is_err());
    }

    #[test]
    fn a_log_key_with_a_wrong_id_or_type_is_refused() {
        let key = Jwk::generate("broker");
        let text = LogKey::of("passerelle.test/audit", &key)
            .unwrap()
            .to_string();
        let (name, rest) = text.split_once('+').unwrap();
        let (_, b64) = rest.split_once('+').unwrap();
        assert!(LogKey::parse(&format!("{name}+00000000+{b64}")).is_err());
        assert!(LogKey::parse("a+b").is_err());
        assert!(LogKey::of("has space", &key).is_err());
    }
}
