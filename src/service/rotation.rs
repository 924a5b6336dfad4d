//! `passerelle keys rotate`: a new master key, and every record key re-wrapped under
//! it, while the broker keeps running.
//!
//! 1. The keyring is checked against the check values the database holds (a wrong
//!    file is refused), and the new master key's check value is recorded. Then the key
//!    is appended to the keyring file (written to a temporary file and renamed, so a
//!    reader never sees half a file). Running brokers notice the change within a
//!    second and wrap new record keys under it.
//! 2. Record keys still wrapped under an older master are re-wrapped, a batch per
//!    transaction. The UPDATE is conditional on the old wrapping, so a record purged
//!    meanwhile stays purged. Passes repeat until none is left, which also catches
//!    records a broker stored under the old master just before it saw the new one.
//! 3. Older masters stay in the file: backups taken before the rotation still need
//!    them. Remove their lines once those backups have expired.

use crate::crypto::keyring::{KeyringError, Keys};
use crate::store::Store;
use anyhow::Context;
use std::path::Path;
use std::time::Duration;

/// Record keys re-wrapped per transaction.
const BATCH: i64 = 500;

/// What a rotation did.
#[derive(Debug)]
pub struct Rotated {
    /// The new master key's id.
    pub master: String,
    /// Record keys re-wrapped.
    pub rewrapped: u64,
}

/// Adds a master key to the keyring file and re-wraps every record key under it.
/// `settle` is how long to wait after writing the file before the last pass, so that
/// running brokers have switched.
pub async fn rotate(
    store: &Store,
    keyring_file: &Path,
    settle: Duration,
) -> anyhow::Result<Rotated> {
    let text = std::fs::read_to_string(keyring_file)
        .with_context(|| format!("reading the keyring {}", keyring_file.display()))?;
    let old = Keys::parse(&text)
        .with_context(|| format!("reading the keyring {}", keyring_file.display()))?;
    let master = format!("m{}", time::OffsetDateTime::now_utc().unix_timestamp());
    let master = if old.master_ids().contains(&master) {
        format!("{master}b")
    } else {
        master
    };
    {
        let mut conn = store.reader().acquire().await?;
        let known = crate::store::keys::checks(&mut conn).await?;
        old.check_against(&known).map_err(|e| {
            anyhow::anyhow!(
                "{e}: is {} the keyring of this database?",
                keyring_file.display()
            )
        })?;
    }
    let rotated = old.with_new_master(&master);
    let keys = Keys::parse(&rotated)?;
    // The new master's check value goes in first: a broker restarted on the new file
    // checks it.
    let mut tx = store.begin().await?;
    for (kid, value) in keys.checks() {
        crate::store::keys::record_check(&mut tx, &kid, &value, time::OffsetDateTime::now_utc())
            .await?;
    }
    tx.commit().await?;
    let temporary = keyring_file.with_extension("rotating");
    crate::crypto::keyfile::write_secret_file(&temporary, &rotated)?;
    std::fs::rename(&temporary, keyring_file)
        .with_context(|| format!("replacing {}", keyring_file.display()))?;
    let mut rewrapped = rewrap_all(store, &keys).await?;
    tokio::time::sleep(settle).await;
    rewrapped += rewrap_all(store, &keys).await?;
    Ok(Rotated { master, rewrapped })
}

/// Re-wraps, batch after batch, every record key not under the current master.
pub async fn rewrap_all(store: &Store, keys: &Keys) -> Result<u64, anyhow::Error> {
    let current = keys.current_master().to_string();
    let mut done = 0;
    loop {
        let mut tx = store.begin().await?;
        let batch = crate::store::sealed::wrapped_elsewhere(&mut tx, &current, BATCH).await?;
        if batch.is_empty() {
            tx.rollback().await.ok();
            return Ok(done);
        }
        for (id, wrapped) in &batch {
            let new = keys.rewrap(id, wrapped).map_err(|e: KeyringError| {
                anyhow::anyhow!(
                    "record {id}: {e}; is the keyring the one this database was sealed with?"
                )
            })?;
            if crate::store::sealed::rewrap(&mut tx, id, &wrapped.master, &new).await? {
                done += 1;
            }
        }
        tx.commit().await?;
    }
}
