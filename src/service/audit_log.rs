//! The one way to change state: begin, record the entry, commit.
//!
//! Every use case that changes anything ends here: its change and its audit entry
//! commit in one transaction or not at all. When the log cannot be written the action
//! is refused (`503 audit-unavailable`, fail closed) and `/readyz` says so; once the
//! entries are durable the decision metrics count them, and each entry that records a
//! use of a client's data is queued, in the same transaction, for the agency's webhook.

use super::uses::Pushes;
use super::{AppState, Error};
use crate::audit::{AuditEntry, NewEntry};
use crate::store::{self, Tx};

impl AppState {
    /// Appends an audit entry in `tx`, commits, counts the decision, and returns the
    /// entry's index. The change and its entry commit together or not at all.
    pub async fn commit_with_audit(&self, tx: Tx, entry: NewEntry) -> Result<i64, Error> {
        let indexes = self.commit_with_audits(tx, vec![entry]).await?;
        Ok(indexes[0])
    }

    /// Appends several audit entries in `tx` and commits; the metrics count them only
    /// once they are durable. Returns their indexes, in order.
    ///
    /// Each entry that records a use of a client's data is also queued, in the same
    /// transaction, for the agency's webhook if it registered one (see `uses`).
    pub async fn commit_with_audits(
        &self,
        mut tx: Tx,
        entries: Vec<NewEntry>,
    ) -> Result<Vec<i64>, Error> {
        let labels: Vec<_> = entries.iter().map(NewEntry::labels).collect();
        let stored = self.append_audits(&mut tx, entries).await?;
        let mut pushes = Pushes::default();
        for entry in &stored {
            pushes.queue(self, &mut tx, entry).await?;
        }
        self.commit_audited(tx).await?;
        let indexes = stored.iter().map(|entry| entry.index).collect();
        for (action, outcome, reason) in labels {
            self.metrics.observe_decision(action, outcome, reason);
        }
        if pushes.queued() {
            self.webhook_wake.notify_one();
        }
        Ok(indexes)
    }

    /// Appends audit entries in `tx`, in order, in one go; when the log cannot be
    /// written, the action is refused (`503 audit-unavailable`) and the broker reports
    /// it in `/readyz`.
    pub async fn append_audits(
        &self,
        tx: &mut Tx,
        entries: Vec<NewEntry>,
    ) -> Result<Vec<AuditEntry>, Error> {
        let (connection, right_edge) = tx.connection_and_right_edge();
        store::audit::append_many(connection, right_edge, entries)
            .await
            .map_err(|err| self.audit_health.failed(self.clock.now(), &err))
    }

    /// Commits a transaction holding audit entries, failing closed like
    /// [`AppState::append_audits`].
    pub async fn commit_audited(&self, tx: Tx) -> Result<(), Error> {
        tx.commit()
            .await
            .map_err(|err| self.audit_health.failed(self.clock.now(), &err))?;
        self.audit_health.succeeded();
        Ok(())
    }

    /// Records a refusal in the audit log (discarding any uncommitted change in `tx`)
    /// and returns the problem to answer with.
    pub async fn refuse(&self, tx: Tx, entry: NewEntry, problem: Error) -> Error {
        tx.rollback().await.ok();
        let recorded = async {
            let tx = self.store.begin().await?;
            self.commit_with_audit(tx, entry).await
        };
        match recorded.await {
            Ok(_) => problem,
            Err(failure) => failure,
        }
    }
}
