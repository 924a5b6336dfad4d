//! Per-record data keys, wrapped by master keys: what makes purging a contact final.
//!
//! Each consent record's personal data (its contacts and signed statement) is sealed
//! under a key of its own, drawn at random. That record key is stored only wrapped
//! (sealed) under a master key held outside the database. Purging a record destroys
//! its wrapped key, so the ciphertext left in the row, in WAL files or in backups
//! taken after the purge can no longer be opened by anyone (crypto-shredding).
//!
//! The keyring file holds the root data key (blind indexes, values sealed before
//! record keys existed) and the master keys, one per line:
//!
//! ```text
//! root <base64>
//! master <kid> <base64>
//! ```
//!
//! The last master line is the current one: it wraps new record keys. Older masters
//! stay so that what they still wrap opens; `passerelle keys rotate` adds a master and
//! re-wraps every record key under it while the broker runs. A file holding a lone
//! base64 line (the format of earlier releases) is a root key whose derived master,
//! named `root`, is current until the first rotation.
//!
//! The running broker notices a rotated file by its modification time (one `stat`
//! per use, about a microsecond) and, when it meets a master id it does not know,
//! rereads the file before giving up.
//!
//! Each key has a check value ([`Keys::checks`]): an HMAC of a fixed label under the
//! key, which says nothing of the key but tells two keys apart. The database keeps
//! the check value of every key its data was sealed under; a broker refuses to start
//! with a key whose check differs, and refuses to reload a keyring that changes a
//! known key (a wrong file copied in place), keeping the keys in use.

use super::seal::{DataKey, SealError, SealingKey, Slot};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

/// The id of the master key derived from the root key.
pub const ROOT_MASTER: &str = "root";

/// Errors reading or using the keyring.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The file does not follow the format.
    #[error("keyring line {line}: {reason}")]
    Format {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// No master key with this id is in the keyring.
    #[error("master key `{0}` is not in the keyring")]
    UnknownMaster(String),
    /// A key is not the one the data was sealed under.
    #[error("key `{0}` is not the key of that name this database was sealed under (its check value differs)")]
    WrongKey(String),
    /// A wrapped key or a value does not open.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// Reading or writing the file failed.
    #[error("keyring file: {0}")]
    Io(#[from] std::io::Error),
}

/// The keys as read from one version of the keyring.
pub struct Keys {
    root: DataKey,
    root_base64: String,
    masters: Vec<(String, SealingKey, String)>,
}

impl Keys {
    /// Parses a keyring (or a lone base64 root key).
    pub fn parse(text: &str) -> Result<Self, KeyringError> {
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
            .collect();
        if let [(line, only)] = lines.as_slice() {
            if !only.contains(' ') {
                return Self::from_root(only, *line);
            }
        }
        let mut root = None;
        let mut masters = Vec::new();
        for (line, text) in lines {
            let words: Vec<&str> = text.split_whitespace().collect();
            match words.as_slice() {
                ["root", key] if root.is_none() => root = Some(Self::from_root(key, line)?),
                ["master", kid, key] => {
                    let bytes = decode_key(key, line)?;
                    if *kid == ROOT_MASTER || masters.iter().any(|(k, _, _)| k == kid) {
                        return Err(format_error(line, "repeats a master key id"));
                    }
                    masters.push((
                        kid.to_string(),
                        SealingKey::from_bytes(&bytes),
                        key.to_string(),
                    ));
                }
                _ => {
                    return Err(format_error(
                        line,
                        "expected `root <base64>` once, then `master <kid> <base64>` lines",
                    ))
                }
            }
        }
        let mut keys = root.ok_or_else(|| format_error(1, "no `root` line"))?;
        keys.masters = masters;
        Ok(keys)
    }

    fn from_root(key: &str, line: usize) -> Result<Self, KeyringError> {
        decode_key(key, line)?;
        Ok(Self {
            root: DataKey::from_base64(key)?,
            root_base64: key.to_string(),
            masters: Vec::new(),
        })
    }

    /// The root key: blind indexes and directly sealed values.
    pub fn root(&self) -> &DataKey {
        &self.root
    }

    /// The check value of every key: the root as [`ROOT_MASTER`], then each master
    /// by its id.
    pub fn checks(&self) -> Vec<(String, Vec<u8>)> {
        std::iter::once((ROOT_MASTER.to_string(), check_value(&self.root_base64)))
            .chain(
                self.masters
                    .iter()
                    .map(|(kid, _, b64)| (kid.clone(), check_value(b64))),
            )
            .collect()
    }

    /// Checks these keys against known check values: every key with a known check
    /// must match it. Keys without one are new (a rotation's master).
    pub fn check_against(&self, known: &HashMap<String, Vec<u8>>) -> Result<(), KeyringError> {
        for (kid, value) in self.checks() {
            if let Some(expected) = known.get(&kid) {
                if !bool::from(subtle::ConstantTimeEq::ct_eq(
                    expected.as_slice(),
                    value.as_slice(),
                )) {
                    return Err(KeyringError::WrongKey(kid));
                }
            }
        }
        Ok(())
    }

    /// The id of the master key that wraps new record keys.
    pub fn current_master(&self) -> &str {
        self.masters
            .last()
            .map(|(kid, _, _)| kid.as_str())
            .unwrap_or(ROOT_MASTER)
    }

    fn master(&self, kid: &str) -> Option<&SealingKey> {
        if kid == ROOT_MASTER {
            return Some(self.root.derived_master());
        }
        self.masters
            .iter()
            .find(|(k, _, _)| k == kid)
            .map(|(_, key, _)| key)
    }

    /// The ids of every master key, oldest first.
    pub fn master_ids(&self) -> Vec<String> {
        std::iter::once(ROOT_MASTER.to_string())
            .chain(self.masters.iter().map(|(k, _, _)| k.clone()))
            .collect()
    }

    /// This keyring with a new current master key added, in file form.
    pub fn with_new_master(&self, kid: &str) -> String {
        let mut out = String::from(
            "# Passerelle keyring: the root key, then master keys; the last master is current.\n\
             # Keep it secret and keep a copy: without it no contact in the database opens.\n",
        );
        out.push_str(&format!("root {}\n", self.root_base64));
        for (k, _, b64) in &self.masters {
            out.push_str(&format!("master {k} {b64}\n"));
        }
        out.push_str(&format!(
            "master {kid} {}\n",
            STANDARD.encode(SealingKey::random_bytes())
        ));
        out
    }

    /// Draws a new record key and wraps it under the current master.
    pub fn new_record_key(&self, record_id: &str) -> (SealingKey, WrappedKey) {
        let bytes = SealingKey::random_bytes();
        (SealingKey::from_bytes(&bytes), self.wrap(record_id, &bytes))
    }

    /// Unwraps a record key.
    pub fn open_record_key(
        &self,
        record_id: &str,
        wrapped: &WrappedKey,
    ) -> Result<SealingKey, KeyringError> {
        Ok(SealingKey::from_bytes(&self.unwrap(record_id, wrapped)?))
    }

    /// Re-wraps a record key under the current master.
    pub fn rewrap(
        &self,
        record_id: &str,
        wrapped: &WrappedKey,
    ) -> Result<WrappedKey, KeyringError> {
        Ok(self.wrap(record_id, &self.unwrap(record_id, wrapped)?))
    }

    /// Seals record key bytes under the current master.
    fn wrap(&self, record_id: &str, bytes: &[u8; 32]) -> WrappedKey {
        let master = self.current_master().to_string();
        let wrapped = self
            .master(&master)
            .expect("the current master is in the keyring")
            .seal(wrap_slot(record_id), bytes);
        WrappedKey { master, wrapped }
    }

    /// Opens record key bytes under the master that wrapped them.
    fn unwrap(&self, record_id: &str, wrapped: &WrappedKey) -> Result<[u8; 32], KeyringError> {
        let master = self
            .master(&wrapped.master)
            .ok_or_else(|| KeyringError::UnknownMaster(wrapped.master.clone()))?;
        let bytes = master.open(wrap_slot(record_id), &wrapped.wrapped)?;
        Ok(bytes.try_into().map_err(|_| SealError::Open)?)
    }
}

/// The check value of a key given in base64: 16 bytes of HMAC-SHA256 over a fixed
/// label, keyed with the key's bytes.
fn check_value(key_base64: &str) -> Vec<u8> {
    let bytes = STANDARD.decode(key_base64.trim()).unwrap_or_default();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes);
    ring::hmac::sign(&key, b"passerelle key check v1").as_ref()[..16].to_vec()
}

fn wrap_slot(record_id: &str) -> Slot<'_> {
    Slot {
        table: "consents",
        column: "record_key",
        row_id: record_id,
    }
}

fn decode_key(key: &str, line: usize) -> Result<[u8; 32], KeyringError> {
    STANDARD
        .decode(key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| format_error(line, "a key must be 32 random bytes, base64-encoded"))
}

fn format_error(line: usize, reason: &str) -> KeyringError {
    KeyringError::Format {
        line,
        reason: reason.into(),
    }
}

/// A record key as stored: the id of the master that wraps it and the wrapped bytes.
#[derive(Debug, Clone)]
pub struct WrappedKey {
    /// The master key's id.
    pub master: String,
    /// The record key sealed under it.
    pub wrapped: Vec<u8>,
}

/// The keyring as the running broker holds it: the keys, where to reread them, and
/// the check values a reread keyring must match.
pub struct Keyring {
    keys: RwLock<Arc<Keys>>,
    file: Option<PathBuf>,
    seen: Mutex<Option<SystemTime>>,
    known: Mutex<HashMap<String, Vec<u8>>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(<secret>)")
    }
}

impl Keyring {
    /// A keyring that never changes (from the environment, or in tests).
    pub fn fixed(keys: Keys) -> Self {
        let known = keys.checks().into_iter().collect();
        Self {
            keys: RwLock::new(Arc::new(keys)),
            file: None,
            seen: Mutex::new(None),
            known: Mutex::new(known),
        }
    }

    /// A keyring read from a file, reread when the file changes.
    pub fn from_file(path: &Path) -> Result<Self, KeyringError> {
        let keys = Keys::parse(&std::fs::read_to_string(path)?)?;
        let modified = std::fs::metadata(path)?.modified().ok();
        let known = keys.checks().into_iter().collect();
        Ok(Self {
            keys: RwLock::new(Arc::new(keys)),
            file: Some(path.to_path_buf()),
            seen: Mutex::new(modified),
            known: Mutex::new(known),
        })
    }

    /// Adds check values the keys must match (those the database holds), after
    /// checking the keys in use against them.
    pub fn require_checks(&self, checks: &HashMap<String, Vec<u8>>) -> Result<(), KeyringError> {
        self.keys
            .read()
            .expect("keyring lock")
            .check_against(checks)?;
        let mut known = self.known.lock().expect("keyring lock");
        known.extend(checks.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(())
    }

    /// The current keys, rereading the file first if it changed.
    pub fn keys(&self) -> Arc<Keys> {
        self.refresh(false);
        self.keys.read().expect("keyring lock").clone()
    }

    /// Unwraps a record key; if its master is unknown, rereads the file once.
    pub fn open_record_key(
        &self,
        record_id: &str,
        wrapped: &WrappedKey,
    ) -> Result<SealingKey, KeyringError> {
        match self.keys().open_record_key(record_id, wrapped) {
            Err(KeyringError::UnknownMaster(_)) if self.file.is_some() => {
                self.refresh(true);
                self.keys().open_record_key(record_id, wrapped)
            }
            other => other,
        }
    }

    fn refresh(&self, force: bool) {
        let Some(path) = &self.file else { return };
        let mut seen = self.seen.lock().expect("keyring lock");
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if !force && modified == *seen {
            return;
        }
        let mut known = self.known.lock().expect("keyring lock");
        let reread = std::fs::read_to_string(path)
            .map_err(KeyringError::from)
            .and_then(|t| Keys::parse(&t))
            .and_then(|keys| keys.check_against(&known).map(|()| keys));
        *seen = modified;
        match reread {
            Ok(keys) => {
                known.extend(keys.checks());
                *self.keys.write().expect("keyring lock") = Arc::new(keys);
                tracing::info!("keyring reloaded");
            }
            Err(error) => {
                tracing::error!(%error, "keyring file changed but is refused; keeping the keys in use")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::parse(&DataKey::generate_base64()).unwrap()
    }

    #[test]
    fn a_lone_root_key_wraps_under_its_derived_master() {
        let keys = keys();
        assert_eq!(keys.current_master(), ROOT_MASTER);
        let (key, wrapped) = keys.new_record_key("cns_1");
        let slot = Slot {
            table: "consents",
            column: "mobile",
            row_id: "cns_1",
        };
        let sealed = key.seal(slot, b"+33612345678");
        let opened = keys.open_record_key("cns_1", &wrapped).unwrap();
        assert_eq!(opened.open(slot, &sealed).unwrap(), b"+33612345678");
        assert!(keys.open_record_key("cns_2", &wrapped).is_err());
    }

    #[test]
    fn a_rotated_keyring_rewraps_and_still_opens_old_wraps() {
        let old = keys();
        let (_, wrapped) = old.new_record_key("cns_1");
        let rotated = Keys::parse(&old.with_new_master("m2")).unwrap();
        assert_eq!(rotated.current_master(), "m2");
        assert_eq!(rotated.master_ids(), ["root", "m2"]);
        assert!(rotated.open_record_key("cns_1", &wrapped).is_ok());
        let rewrapped = rotated.rewrap("cns_1", &wrapped).unwrap();
        assert_eq!(rewrapped.master, "m2");
        assert!(rotated.open_record_key("cns_1", &rewrapped).is_ok());
        assert!(old.open_record_key("cns_1", &rewrapped).is_err());
        // The root (blind index) is unchanged by rotation.
        assert_eq!(
            old.root().blind_index("x", "y"),
            rotated.root().blind_index("x", "y")
        );
    }

    #[test]
    fn a_keyring_that_changes_a_known_key_is_refused_on_reload_and_the_keys_in_use_kept() {
        let dir = std::env::temp_dir().join(crate::domain::ids::new_id("keyring"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("data.key");
        let first = DataKey::generate_base64();
        std::fs::write(&path, &first).unwrap();
        let keyring = Keyring::from_file(&path).unwrap();
        let index = keyring.keys().root().blind_index("x", "y");
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, DataKey::generate_base64()).unwrap();
        keyring.refresh(true);
        assert_eq!(
            keyring.keys().root().blind_index("x", "y"),
            index,
            "another root key is refused"
        );
        let rotated = Keys::parse(&first).unwrap().with_new_master("m2");
        std::fs::write(&path, rotated).unwrap();
        keyring.refresh(true);
        assert_eq!(keyring.keys().current_master(), "m2", "a rotation is taken");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn check_values_tell_keys_apart_and_say_nothing_of_them() {
        let keys = keys();
        let checks: HashMap<_, _> = keys.checks().into_iter().collect();
        assert!(keys.check_against(&checks).is_ok());
        let other = self::keys();
        assert!(matches!(
            other.check_against(&checks),
            Err(KeyringError::WrongKey(kid)) if kid == ROOT_MASTER
        ));
        assert_eq!(checks[ROOT_MASTER].len(), 16);
    }

    #[test]
    fn malformed_keyrings_name_the_line() {
        let err = Keys::parse("root AAAA\n").err().unwrap();
        assert!(err.to_string().contains("line 1"), "{err}");
        let root = DataKey::generate_base64();
        let err = Keys::parse(&format!("root {root}\nmaster\n"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
