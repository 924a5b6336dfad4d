//! Fail closed: when the audit log cannot be written, nothing is done.
//!
//! An action whose audit entry (or whose batch) fails to commit is refused with
//! `503 audit-unavailable` and rolled back with its entry. The broker remembers the
//! failure and `/readyz` reports it, so a balancer stops sending traffic; each
//! readiness check then probes the log (an entry appended and rolled back, through
//! the same path as every other) and the broker is ready again as soon as the probe
//! succeeds, or an action's entry commits.

use crate::audit::{Action, NewEntry, Outcome};
use crate::service::{Error, ErrorKind};
use crate::store::{self, Store};
use std::sync::Mutex;
use time::OffsetDateTime;

/// Whether the audit log was last seen writable.
#[derive(Default, Debug)]
pub struct AuditHealth {
    failing_since: Mutex<Option<OffsetDateTime>>,
}

impl AuditHealth {
    /// Records a failed audit write; returns the problem to answer with.
    pub fn failed(&self, at: OffsetDateTime, cause: &dyn std::fmt::Display) -> Error {
        tracing::error!(error = %cause, "the audit log cannot be written: refusing the action");
        self.failing_since.lock().expect("lock").get_or_insert(at);
        Error::new(
            ErrorKind::AuditUnavailable,
            "The audit log cannot be written at the moment, so nothing was done. Try again later.",
        )
        .with_retry_after(5)
    }

    /// Records a successful audit write.
    pub fn succeeded(&self) {
        let mut since = self.failing_since.lock().expect("lock");
        if since.take().is_some() {
            tracing::info!("the audit log is writable again");
        }
    }

    /// Since when writes have failed, if they do.
    pub fn failing_since(&self) -> Option<OffsetDateTime> {
        *self.failing_since.lock().expect("lock")
    }

    /// Appends a probe entry and rolls it back; clears the failure if that works.
    pub async fn probe(&self, store: &Store, now: OffsetDateTime) -> Result<(), store::StoreError> {
        let mut tx = store.begin().await?;
        let probe = NewEntry::by_broker(
            now,
            "readiness-probe",
            Action::SettingsChange,
            Outcome::Changed,
        );
        let (connection, right_edge) = tx.connection_and_right_edge();
        store::audit::append_many(connection, right_edge, vec![probe]).await?;
        tx.rollback().await?;
        self.succeeded();
        Ok(())
    }
}
