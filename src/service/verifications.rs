//! Verifications of the audit log started from the console: one at a time per
//! broker, run in the background while the integrity page shows how far it got, and
//! recorded when done (`audit_verifications`) so the panel shows the last result.

use crate::domain::ids::new_id;
use crate::service::verify_log::verify_with_progress;
use crate::service::AppState;
use crate::store::verifications::{self, Verification};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// A verification under way.
#[derive(Debug)]
pub struct Run {
    /// Its id, under which it will be recorded.
    pub id: String,
    /// When it started.
    pub started_at: OffsetDateTime,
    checked: AtomicU64,
    total: AtomicU64,
}

impl Run {
    /// Entries checked so far.
    pub fn checked(&self) -> u64 {
        self.checked.load(Ordering::Relaxed)
    }
    /// Entries in the log when it started.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
    /// Per cent done.
    pub fn percent(&self) -> u64 {
        match self.total() {
            0 => 0,
            total => (self.checked() * 100 / total).min(100),
        }
    }
}

/// The verification running on this broker, if any.
#[derive(Debug, Default)]
pub struct Verifications {
    running: Mutex<Option<Arc<Run>>>,
}

impl Verifications {
    /// The verification under way, if one is.
    pub fn running(&self) -> Option<Arc<Run>> {
        self.running.lock().expect("not poisoned").clone()
    }

    /// Starts a verification for `officer_id`, unless one is under way (then that one
    /// is returned: running two at once would only halve the speed of each).
    pub fn start(&self, state: &AppState, officer_id: &str) -> Arc<Run> {
        let mut running = self.running.lock().expect("not poisoned");
        if let Some(run) = running.as_ref() {
            return run.clone();
        }
        let run = Arc::new(Run {
            id: new_id("ver"),
            started_at: state.clock.now(),
            checked: AtomicU64::new(0),
            total: AtomicU64::new(0),
        });
        *running = Some(run.clone());
        tokio::spawn(finish(state.clone(), run.clone(), officer_id.to_string()));
        run
    }
}

async fn finish(state: AppState, run: Arc<Run>, officer_id: String) {
    let progress = |checked, total| {
        run.checked.store(checked, Ordering::Relaxed);
        run.total.store(total, Ordering::Relaxed);
    };
    let outcome =
        verify_with_progress(&state.store, state.checkpointer.log_key(), vec![], progress).await;
    let mut verification = Verification {
        id: run.id.clone(),
        officer_id,
        started_at: run.started_at,
        finished_at: state.clock.now(),
        entries: run.checked() as i64,
        checkpoints: 0,
        root: Vec::new(),
        finding_index: None,
        finding: None,
    };
    match outcome {
        Ok(report) => {
            verification.entries = report.entries as i64;
            verification.checkpoints = report.checkpoints as i64;
            verification.root = report.root.to_vec();
            if let Some(finding) = &report.finding {
                tracing::error!(summary = %report.summary(), "audit log verification FAILED");
                verification.finding_index = finding.index.map(|i| i as i64);
                verification.finding = Some(finding.what.clone());
            }
        }
        Err(err) => {
            tracing::error!(%err, "audit log verification could not read the log");
            verification.finding = Some(format!("the log could not be read: {err}"));
        }
    }
    let recorded = async {
        let mut tx = state.store.begin().await?;
        verifications::insert(&mut tx, &verification).await?;
        tx.commit().await?;
        Ok::<_, crate::store::StoreError>(())
    };
    if let Err(err) = recorded.await {
        tracing::error!(%err, "the verification's result could not be recorded");
    }
    *state.verifications.running.lock().expect("not poisoned") = None;
}

/// What the console's integrity panel shows of the log: its size, its latest
/// checkpoint and the last verification that ran to its end.
pub struct LogState {
    /// Entries in the log.
    pub tree_size: i64,
    /// The latest signed checkpoint.
    pub checkpoint: Option<crate::store::audit::StoredCheckpoint>,
    /// The last finished verification.
    pub last: Option<Verification>,
}

/// The log's state now.
pub async fn log_state(state: &AppState) -> Result<LogState, crate::service::Error> {
    let mut conn = state.store.reader().acquire().await?;
    Ok(LogState {
        tree_size: crate::store::audit::size(&mut conn).await?,
        checkpoint: crate::store::audit::latest_checkpoint(&mut conn).await?,
        last: verifications::latest(&mut conn).await?,
    })
}
