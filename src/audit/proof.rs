//! Proofs as people hand them around: an entry with its inclusion proof and the
//! signed checkpoint it leads to, checkable offline with the log's public key.

use super::checkpoint::{Checkpoint, LogKey};
use super::merkle::{self, Hash};
use super::AuditEntry;
use crate::domain::ids::hex;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Entry `entry.index` is in the tree of `tree_size` entries signed in `checkpoint`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InclusionProof {
    /// The entry, as the audit API shows it.
    pub entry: AuditEntry,
    /// Its RFC 9162 leaf hash, hex.
    pub leaf_hash: String,
    /// Size of the tree proved against.
    pub tree_size: u64,
    /// The audit path, leaf to root, base64.
    pub hashes: Vec<String>,
    /// The signed checkpoint of that tree (C2SP signed note).
    pub checkpoint: String,
}

/// `first` entries are a prefix of `second` entries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The smaller tree's size.
    pub from: u64,
    /// The larger tree's size.
    pub to: u64,
    /// The proof's hashes, base64.
    pub hashes: Vec<String>,
}

/// Hashes as base64 strings.
pub fn encode(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| STANDARD.encode(h)).collect()
}

/// Base64 strings back to hashes.
pub fn decode(hashes: &[String]) -> Result<Vec<Hash>, String> {
    hashes
        .iter()
        .enumerate()
        .map(|(i, h)| {
            STANDARD
                .decode(h)
                .ok()
                .and_then(|b| Hash::try_from(b).ok())
                .ok_or_else(|| format!("hash {i} is not a base64 SHA-256"))
        })
        .collect()
}

impl InclusionProof {
    /// Checks the proof offline: the checkpoint is signed by `key`, the entry hashes to
    /// its leaf, and the path leads from that leaf to the signed root. Returns the
    /// checkpoint.
    pub fn check(&self, key: &LogKey) -> Result<Checkpoint, String> {
        let checkpoint = Checkpoint::open(&self.checkpoint, key).map_err(|e| e.to_string())?;
        if checkpoint.size != self.tree_size {
            return Err(format!(
                "the checkpoint covers {} entries, the proof {}",
                checkpoint.size, self.tree_size
            ));
        }
        let leaf = self.entry.leaf_hash();
        if hex(&leaf) != self.leaf_hash.to_ascii_lowercase() {
            return Err("the entry does not hash to the proof's leaf hash: it was altered".into());
        }
        let index =
            u64::try_from(self.entry.index).map_err(|_| "negative entry index".to_string())?;
        let hashes = decode(&self.hashes)?;
        if !merkle::verify_inclusion(index, self.tree_size, &leaf, &hashes, &checkpoint.root) {
            return Err(format!(
                "the path does not lead from entry {index} to the signed root of {} entries",
                self.tree_size
            ));
        }
        Ok(checkpoint)
    }
}
