//! The one way to change state: begin, record the entry, commit.
//!
//! Every use case that changes anything ends here: its change and its audit entry
//! commit in one transaction or not at all. When the log cannot be written the action
//! is refused (`503 audit-unavailable`, fail closed) and `/readyz` says so; once the
//! entries are durable the decision metrics count them, and each entry that records a
//! use of a client's data is queued, in the same transaction, for the agency's webhook.

use super::uses::Pushes;
use super::{AppState, Error};
use crate::audit::merkle::Frontier;
use crate::audit::{AuditEntry, NewEntry};
use crate::store::db::Db;
use crate::store::direct::Write;
use crate::store::outbox::WebhookDelivery;
use crate::store::{self, StoreError, Tx};
use time::OffsetDateTime;

/// What a whole audited write (see [`AppState::write_audited`]) leaves: its own
/// answer, with the entries it appended and whether it queued webhook pushes.
pub struct Audited<T> {
    /// The write's own answer.
    pub output: T,
    /// The entries appended, as stored.
    pub entries: Vec<AuditEntry>,
    /// The decision labels of those entries, for the metrics.
    labels: Vec<(&'static str, &'static str, &'static str)>,
    /// Whether a push was queued for an agency's webhook.
    pushed: bool,
}

impl<T> Audited<T> {
    /// A write that appended nothing: a change it found already made, or none to make.
    pub fn unwritten(output: T) -> Self {
        Self {
            output,
            entries: Vec::new(),
            labels: Vec::new(),
            pushed: false,
        }
    }
}

impl<T> Audited<Vec<T>> {
    /// A write that appended nothing (an empty upload).
    pub fn nothing() -> Self {
        Self::unwritten(Vec::new())
    }

    /// Adds what a later part of the same write appended.
    pub fn merge(&mut self, later: Audited<Vec<T>>) {
        self.output.extend(later.output);
        self.entries.extend(later.entries);
        self.labels.extend(later.labels);
        self.pushed |= later.pushed;
    }
}

/// Appends `entries` and queues their webhook pushes, inside a write over `db`: the
/// last step of every whole audited write.
pub async fn append_with_pushes<T>(
    db: &mut impl Db,
    right_edge: &mut Option<Frontier>,
    output: T,
    entries: Vec<NewEntry>,
    now: OffsetDateTime,
) -> Result<Audited<T>, StoreError> {
    append_with_events(db, right_edge, output, entries, now, |_| Vec::new()).await
}

/// [`append_with_pushes`], then queues the webhook events `events_of` makes of the
/// entries as stored (an event names the entry that recorded it), in the same write.
pub async fn append_with_events<T>(
    db: &mut impl Db,
    right_edge: &mut Option<Frontier>,
    output: T,
    entries: Vec<NewEntry>,
    now: OffsetDateTime,
    events_of: impl FnOnce(&[AuditEntry]) -> Vec<WebhookDelivery>,
) -> Result<Audited<T>, StoreError> {
    let labels = entries.iter().map(NewEntry::labels).collect();
    let stored = store::audit::append_many(db, right_edge, entries).await?;
    let mut pushes = Pushes::default();
    pushes.queue_all(db, &stored, now).await?;
    let events = events_of(&stored);
    store::outbox::enqueue_webhooks(db, &events, now).await?;
    Ok(Audited {
        output,
        entries: stored,
        labels,
        pushed: pushes.queued() || !events.is_empty(),
    })
}

/// Entries appended in an open transaction, with the agencies' use pushes queued
/// beside them (see [`AppState::append_with_use_pushes`]).
pub struct Appended {
    /// The entries, as stored.
    pub entries: Vec<AuditEntry>,
    labels: Vec<(&'static str, &'static str, &'static str)>,
    pushed: bool,
}

impl AppState {
    /// Runs a whole write that appends audit entries (through [`append_with_pushes`]):
    /// on SQLite by the direct writer, elsewhere in a group-commit transaction (see
    /// [`store::direct`]). Durable when it returns; a write that fails is refused with
    /// `503 audit-unavailable` like any audited change (fail closed); the decisions
    /// are counted and the webhook worker woken once it is durable.
    pub async fn write_audited<T, W>(&self, write: W) -> Result<Audited<T>, Error>
    where
        W: Write<Output = Audited<T>>,
        T: Send + 'static,
    {
        let written = self
            .store
            .write(write)
            .await
            .map_err(|err| self.audit_health.failed(self.clock.now(), &err))?;
        self.audit_health.succeeded();
        for (action, outcome, reason) in &written.labels {
            self.metrics.observe_decision(action, outcome, reason);
        }
        if written.pushed {
            self.webhook_wake.notify_one();
        }
        Ok(written)
    }

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
        tx: Tx,
        entries: Vec<NewEntry>,
    ) -> Result<Vec<i64>, Error> {
        let stored = self.commit_with_pushes(tx, entries, |_| Vec::new()).await?;
        Ok(stored.iter().map(|entry| entry.index).collect())
    }

    /// [`AppState::commit_with_audits`], also queueing in the same transaction the
    /// webhook events `events_of` makes of the entries as stored (an event names the
    /// entry that records it). Returns the entries.
    pub async fn commit_with_pushes(
        &self,
        mut tx: Tx,
        entries: Vec<NewEntry>,
        events_of: impl FnOnce(&[AuditEntry]) -> Vec<WebhookDelivery>,
    ) -> Result<Vec<AuditEntry>, Error> {
        let appended = self.append_with_use_pushes(&mut tx, entries).await?;
        let events = events_of(&appended.entries);
        self.commit_appended(tx, appended, events).await
    }

    /// Appends `entries` in `tx` and queues the agencies' pushes of those that are uses,
    /// leaving the transaction open for what must name the entries' indexes (a row
    /// that keeps its entry, an event); [`AppState::commit_appended`] finishes it.
    pub async fn append_with_use_pushes(
        &self,
        tx: &mut Tx,
        entries: Vec<NewEntry>,
    ) -> Result<Appended, Error> {
        let labels: Vec<_> = entries.iter().map(NewEntry::labels).collect();
        let stored = self.append_audits(tx, entries).await?;
        let mut pushes = Pushes::default();
        pushes.queue_all(tx, &stored, self.clock.now()).await?;
        Ok(Appended {
            entries: stored,
            labels,
            pushed: pushes.queued(),
        })
    }

    /// Queues `events` for their parties' webhooks and commits what
    /// [`AppState::append_with_use_pushes`] appended; once it is durable, counts the
    /// decisions and wakes the webhook worker. Returns the entries.
    pub async fn commit_appended(
        &self,
        mut tx: Tx,
        appended: Appended,
        events: Vec<WebhookDelivery>,
    ) -> Result<Vec<AuditEntry>, Error> {
        store::outbox::enqueue_webhooks(&mut tx, &events, self.clock.now()).await?;
        self.commit_audited(tx).await?;
        for (action, outcome, reason) in appended.labels {
            self.metrics.observe_decision(action, outcome, reason);
        }
        if appended.pushed || !events.is_empty() {
            self.webhook_wake.notify_one();
        }
        Ok(appended.entries)
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
        self.record_refusal(entry, problem).await
    }

    /// Records a refusal decided before anything was changed: its entry alone, as one
    /// whole write (batched with the others on SQLite's direct writer). Returns the
    /// problem to answer with, or the failure to record it (fail closed).
    pub async fn record_refusal(&self, entry: NewEntry, problem: Error) -> Error {
        let write = Entries {
            entries: vec![entry],
            now: self.clock.now(),
        };
        match self.write_audited(write).await {
            Ok(_) => problem,
            Err(failure) => failure,
        }
    }
}

/// A write of audit entries alone (a refusal): what it changes is the log.
struct Entries {
    entries: Vec<NewEntry>,
    now: OffsetDateTime,
}

impl Entries {
    async fn write(
        self,
        db: &mut impl Db,
        right_edge: &mut Option<Frontier>,
    ) -> Result<Audited<()>, StoreError> {
        append_with_pushes(db, right_edge, (), self.entries, self.now).await
    }
}

crate::store::direct::write_over_db!(Entries, Audited<()>, write);
