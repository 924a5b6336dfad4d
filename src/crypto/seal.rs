//! Sealing personal data at rest (AES-256-GCM) and blind indexes (HMAC-SHA256).
//!
//! One 256-bit root data key, held outside the database, yields sub-keys through
//! HKDF-SHA256: one seals, one indexes, one is the first master key (see
//! `crypto::keyring` for per-record keys and master keys). A sealed value is
//! `version (1 byte) ‖ nonce (12 bytes) ‖ ciphertext ‖ tag`, and its associated data
//! names the table, the column and the row id, so a ciphertext copied to another row
//! or column does not open. A copy of the database alone yields no contact.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf::{Salt, HKDF_SHA256};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt;

/// Label of the blind index of travellers' names (their PNR form).
pub const TRAVELLER_NAME_INDEX: &str = "traveller-name";

/// Version byte of the sealed format, so the format or key can change later.
const FORMAT_V1: u8 = 1;

/// Why a sealed value could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Tampered, truncated, moved to another row, or sealed under another key.
    #[error("sealed value does not open under this key and row")]
    Open,
    /// The data key given in configuration is not 32 bytes of base64.
    #[error("the data key must be 32 random bytes, base64-encoded")]
    BadKey,
}

/// An AES-256-GCM key that seals values for their slots.
pub struct SealingKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(<secret>)")
    }
}

/// The root data key's sub-keys: one seals (values sealed before per-record keys,
/// and broker-private values such as stored idempotent responses), one indexes, and
/// one is the implicit first master key that wraps per-record keys.
pub struct DataKey {
    seal: SealingKey,
    index: hmac::Key,
    master: SealingKey,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<secret>)")
    }
}

/// Where a sealed value lives; it becomes the AEAD associated data.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    /// Table name.
    pub table: &'a str,
    /// Column name.
    pub column: &'a str,
    /// The row's id.
    pub row_id: &'a str,
}

impl Slot<'_> {
    fn associated_data(&self) -> Vec<u8> {
        format!(
            "passerelle/v1/{}/{}/{}",
            self.table, self.column, self.row_id
        )
        .into_bytes()
    }
}

impl DataKey {
    /// Makes a fresh random data key and returns its base64 form (for a key file).
    pub fn generate_base64() -> String {
        STANDARD.encode(SealingKey::random_bytes())
    }

    /// Reads a data key from its base64 form (white space around it is ignored).
    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| SealError::BadKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(Self::from_bytes(&bytes))
    }

    /// Derives the sub-keys from 32 key bytes.
    pub fn from_bytes(key: &[u8; 32]) -> Self {
        let prk = Salt::new(HKDF_SHA256, b"passerelle/data-key/v1").extract(key);
        let seal_okm = prk
            .expand(&[b"seal"], &AES_256_GCM)
            .expect("HKDF output fits AES-256");
        let index_okm = prk
            .expand(&[b"blind-index"], hmac::HMAC_SHA256)
            .expect("HKDF output fits HMAC");
        let master_okm = prk
            .expand(&[b"master"], &AES_256_GCM)
            .expect("HKDF output fits AES-256");
        Self {
            seal: SealingKey::new(LessSafeKey::new(UnboundKey::from(seal_okm))),
            index: hmac::Key::from(index_okm),
            master: SealingKey::new(LessSafeKey::new(UnboundKey::from(master_okm))),
        }
    }

    /// The sub-key that seals values directly.
    pub fn sealing(&self) -> &SealingKey {
        &self.seal
    }

    /// The master key derived from the root, used until `keys rotate` adds one.
    pub fn derived_master(&self) -> &SealingKey {
        &self.master
    }

    /// Seals a value for one slot under the root's sealing sub-key.
    pub fn seal(&self, slot: Slot<'_>, plaintext: &[u8]) -> Vec<u8> {
        self.seal.seal(slot, plaintext)
    }

    /// Opens a value sealed by [`DataKey::seal`].
    pub fn open(&self, slot: Slot<'_>, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        self.seal.open(slot, sealed)
    }

    /// Opens a sealed UTF-8 string.
    pub fn open_string(&self, slot: Slot<'_>, sealed: &[u8]) -> Result<String, SealError> {
        self.seal.open_string(slot, sealed)
    }

    /// A keyed, deterministic index of a value, so rows can be found by a value the
    /// database never sees in clear. `label` separates the uses of the index key.
    pub fn blind_index(&self, label: &str, value: &str) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.index);
        ctx.update(label.as_bytes());
        ctx.update(&[0]);
        ctx.update(value.as_bytes());
        ctx.sign().as_ref().to_vec()
    }
}

/// The keyed digests of a contact, one per channel (`blind_index` labels `mobile` and
/// `email`): whether two records hold the same contact, and whether what the broker
/// learnt of a channel is about the contact a record holds now, without opening either.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactDigests {
    /// Of the mobile number, as stored (E.164).
    pub mobile: Option<Vec<u8>>,
    /// Of the email address, as stored.
    pub email: Option<Vec<u8>>,
}

impl ContactDigests {
    /// The digests of a contact under `key`.
    pub fn of(key: &DataKey, mobile: Option<&str>, email: Option<&str>) -> Self {
        Self {
            mobile: mobile.map(|m| key.blind_index("mobile", m)),
            email: email.map(|e| key.blind_index("email", e)),
        }
    }
}

impl SealingKey {
    fn new(key: LessSafeKey) -> Self {
        Self {
            key,
            rng: SystemRandom::new(),
        }
    }

    /// A sealing key from 32 raw key bytes (a per-record key or a master key).
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self::new(LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, bytes).expect("32 bytes make an AES-256 key"),
        ))
    }

    /// 32 fresh random bytes, for a new key.
    pub fn random_bytes() -> [u8; 32] {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .expect("the system random source works");
        bytes
    }

    /// Seals a value for one slot, under a fresh random nonce.
    pub fn seal(&self, slot: Slot<'_>, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .expect("the system random source works");
        let mut buffer = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(slot.associated_data()),
                &mut buffer,
            )
            .expect("AES-GCM seals any plaintext of this size");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buffer.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buffer);
        out
    }

    /// Opens a value sealed for this slot.
    pub fn open(&self, slot: Slot<'_>, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let (version, rest) = sealed.split_first().ok_or(SealError::Open)?;
        if *version != FORMAT_V1 || rest.len() < NONCE_LEN + aead::AES_256_GCM.tag_len() {
            return Err(SealError::Open);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(slot.associated_data()), &mut buffer)
            .map_err(|_| SealError::Open)?;
        Ok(plain.to_vec())
    }

    /// Opens a sealed UTF-8 string.
    pub fn open_string(&self, slot: Slot<'_>, sealed: &[u8]) -> Result<String, SealError> {
        String::from_utf8(self.open(slot, sealed)?).map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_base64(&DataKey::generate_base64()).unwrap()
    }
    const SLOT: Slot<'static> = Slot {
        table: "consents",
        column: "mobile",
        row_id: "cns_1",
    };

    #[test]
    fn a_sealed_value_opens_in_its_own_slot_only() {
        let key = key();
        let sealed = key.seal(SLOT, b"+33612345678");
        assert!(!sealed.windows(12).any(|w| w == b"+33612345678"));
        assert_eq!(key.open(SLOT, &sealed).unwrap(), b"+33612345678");
        assert!(key
            .open(
                Slot {
                    row_id: "cns_2",
                    ..SLOT
                },
                &sealed
            )
            .is_err());
        assert!(key
            .open(
                Slot {
                    column: "email",
                    ..SLOT
                },
                &sealed
            )
            .is_err());
    }

    #[test]
    fn a_tampered_or_foreign_value_does_not_open() {
        let key = key();
        let mut sealed = key.seal(SLOT, b"x");
        *sealed.last_mut().unwrap() ^= 1;
        assert!(key.open(SLOT, &sealed).is_err());
        assert!(self::key().open(SLOT, &key.seal(SLOT, b"x")).is_err());
        assert!(key.open(SLOT, &[]).is_err());
    }

    #[test]
    fn blind_indexes_are_deterministic_per_key_and_label() {
        let key = key();
        assert_eq!(
            key.blind_index("name", "DUPONT/MARIE"),
            key.blind_index("name", "DUPONT/MARIE")
        );
        assert_ne!(
            key.blind_index("name", "DUPONT/MARIE"),
            key.blind_index("other", "DUPONT/MARIE")
        );
        assert_ne!(
            key.blind_index("name", "DUPONT/MARIE"),
            self::key().blind_index("name", "DUPONT/MARIE")
        );
    }

    #[test]
    fn keys_of_the_wrong_size_are_refused() {
        assert!(DataKey::from_base64("c2hvcnQ=").is_err());
        assert!(DataKey::from_base64("not base64!").is_err());
    }
}
