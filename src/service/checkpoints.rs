//! Signing checkpoints and publishing them outside the database.
//!
//! Before it signs, the broker proves to itself that the log still extends the last
//! checkpoint (an RFC 9162 consistency proof from stored subtrees): it never signs a
//! history that was rewritten under it. Each new checkpoint is stored, then written
//! to a directory (`checkpoint` for the latest, `checkpoint.<size>` for each) and/or
//! POSTed as `text/plain` to a URL, where the database's owner cannot reach it. A
//! failed publication is logged (without the URL's credentials or query) and retried
//! at the next tick. The URL must be a public `https://` address under the outbound
//! rule (`crate::outbound`), and a redirect from it is not followed.
//!
//! Checkpoints are signed by the interval task and on an officer's
//! `POST /v1/audit/checkpoints`, never because someone read something.

use crate::audit::checkpoint::{Checkpoint, LogKey};
use crate::audit::merkle;
use crate::crypto::jws::Jwk;
use crate::store::audit::{self as stored, StoredCheckpoint};
use crate::store::{Store, StoreError};
use std::path::PathBuf;
use std::sync::Mutex;
use time::OffsetDateTime;

/// Where checkpoints go and how often.
#[derive(Debug, Clone)]
pub struct CheckpointSettings {
    /// The log's name, also the signing key's name in signed notes.
    pub origin: String,
    /// Seconds between two checkpoints (when the log grew).
    pub interval: std::time::Duration,
    /// A directory to write each checkpoint to.
    pub dir: Option<PathBuf>,
    /// A URL to POST each checkpoint to.
    pub url: Option<String>,
}

/// The default log name.
pub const DEFAULT_ORIGIN: &str = "passerelle.invalid/audit";

impl Default for CheckpointSettings {
    fn default() -> Self {
        Self {
            origin: DEFAULT_ORIGIN.into(),
            interval: std::time::Duration::from_secs(60),
            dir: None,
            url: None,
        }
    }
}

/// Why no checkpoint was signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The log does not extend the last checkpoint: it was rewritten.
    #[error("the audit log no longer extends the checkpoint of size {0}: refusing to sign")]
    Inconsistent(u64),
    /// The key cannot sign.
    #[error("the broker key cannot sign checkpoints: {0}")]
    Key(&'static str),
}

/// Signs and publishes the broker's checkpoints.
pub struct Checkpointer {
    settings: CheckpointSettings,
    key: Jwk,
    log_key: LogKey,
    url: Option<reqwest::Url>,
    client: reqwest::Client,
    published: Mutex<u64>,
}

impl Checkpointer {
    /// A checkpointer signing with `key` (the broker key) and publishing under the
    /// `outbound` rule. Fails on a log origin that cannot name a key, or a checkpoint
    /// URL the rule refuses.
    pub fn new(
        settings: CheckpointSettings,
        key: Jwk,
        outbound: crate::outbound::Outbound,
    ) -> Result<Self, String> {
        let log_key = LogKey::of(&settings.origin, &key).map_err(str::to_string)?;
        let url = settings
            .url
            .as_deref()
            .map(|url| outbound.parse(url))
            .transpose()
            .map_err(|refused| format!("--checkpoint-url {refused}"))?;
        Ok(Self {
            client: outbound.client(std::time::Duration::from_secs(10)),
            url,
            settings,
            key,
            log_key,
            published: Mutex::new(0),
        })
    }

    /// The verifier key for this log's checkpoints.
    pub fn log_key(&self) -> &LogKey {
        &self.log_key
    }

    /// The settings in force.
    pub fn settings(&self) -> &CheckpointSettings {
        &self.settings
    }

    /// Signs a checkpoint of the log as it is now, unless the latest one already
    /// covers it, and returns the latest.
    pub async fn sign_now(
        &self,
        store: &Store,
        now: OffsetDateTime,
    ) -> Result<StoredCheckpoint, SignError> {
        let mut conn = store.reader().acquire().await.map_err(StoreError::from)?;
        let size = stored::size(&mut conn).await? as u64;
        let root = stored::root_at(&mut conn, size).await?;
        let previous = stored::latest_checkpoint(&mut conn).await?;
        if let Some(previous) = &previous {
            if previous.tree_size >= size {
                if previous.tree_size == size && previous.root != root {
                    return Err(SignError::Inconsistent(previous.tree_size));
                }
                return Ok(previous.clone());
            }
            let (first, first_root) = (previous.tree_size, previous.root);
            let proof =
                stored::over_tree(&mut conn, |get| merkle::consistency_proof(first, size, get))
                    .await?;
            if !merkle::verify_consistency(first, size, &first_root, &root, &proof) {
                return Err(SignError::Inconsistent(first));
            }
        }
        let note = Checkpoint {
            origin: self.settings.origin.clone(),
            size,
            root,
        }
        .sign(&self.key)
        .map_err(SignError::Key)?;
        let checkpoint = StoredCheckpoint {
            tree_size: size,
            root,
            signed_at: now,
            note,
        };
        drop(conn);
        let mut tx = store.begin().await?;
        stored::insert_checkpoint(&mut tx, &checkpoint).await?;
        // Another broker may have stored this size first: serve what is stored.
        let kept = stored::checkpoint_of(&mut tx, size)
            .await?
            .unwrap_or(checkpoint);
        tx.commit().await.map_err(StoreError::from)?;
        Ok(kept)
    }

    /// Publishes `checkpoint` to the directory and URL, if set and not done yet.
    /// Returns whether it is now published everywhere configured.
    pub async fn publish(&self, checkpoint: &StoredCheckpoint) -> bool {
        if *self.published.lock().expect("lock") >= checkpoint.tree_size && checkpoint.tree_size > 0
        {
            return true;
        }
        let mut ok = true;
        if let Some(dir) = &self.settings.dir {
            if let Err(err) = write_to_dir(dir, checkpoint).await {
                tracing::warn!(error = %err, dir = %dir.display(), "could not write the checkpoint");
                ok = false;
            }
        }
        if let Some(url) = &self.url {
            let sent = self
                .client
                .post(url.clone())
                .header("content-type", "text/plain; charset=utf-8")
                .body(checkpoint.note.clone())
                .send()
                .await;
            let failure = match sent {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("http {}", r.status().as_u16())),
                Err(err) => Some(crate::outbound::failure(&err).to_string()),
            };
            if let Some(why) = failure {
                let url = crate::outbound::redact(url);
                tracing::warn!(%url, why, "could not push the checkpoint");
                ok = false;
            }
        }
        if ok {
            let mut published = self.published.lock().expect("lock");
            *published = (*published).max(checkpoint.tree_size);
        }
        ok
    }

    /// Signs when the log grew, and publishes: what the interval task does each tick.
    pub async fn tick(
        &self,
        store: &Store,
        now: OffsetDateTime,
    ) -> Result<StoredCheckpoint, SignError> {
        let checkpoint = self.sign_now(store, now).await?;
        self.publish(&checkpoint).await;
        Ok(checkpoint)
    }
}

async fn write_to_dir(dir: &std::path::Path, checkpoint: &StoredCheckpoint) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let numbered = dir.join(format!("checkpoint.{}", checkpoint.tree_size));
    tokio::fs::write(&numbered, &checkpoint.note).await?;
    let temp = dir.join(".checkpoint.tmp");
    tokio::fs::write(&temp, &checkpoint.note).await?;
    tokio::fs::rename(&temp, dir.join("checkpoint")).await
}
