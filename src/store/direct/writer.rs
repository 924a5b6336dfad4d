//! The direct writer: the SQLite file's one write connection outside sqlx, used by the
//! thread a whole write is handed to (see [`super::Write`]).

use crate::audit::merkle::Frontier;
use crate::store::checkpoint::WRITER_BACKSTOP_PAGES;
use crate::store::db::Direct;
use crate::store::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::Mutex;

/// Statements kept prepared: multi-row inserts differ by their number of rows.
const PREPARED: usize = 256;

/// The write connection, opened when first needed and again after a failed commit.
pub(crate) struct Writer {
    path: PathBuf,
    connection: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// The writer of the SQLite file at `path`.
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            connection: Mutex::new(None),
        }
    }

    /// Runs each of `members` in a savepoint of one transaction and commits them
    /// together, on this thread: one fsync for the lot. A member that fails is rolled
    /// back alone (its savepoint), and the audit tree's right edge is forgotten (the
    /// next append reads it from the stored subtrees). Each member is answered only
    /// once the commit's outcome is known; when the batch cannot begin or commit,
    /// every member is answered with that failure. The caller holds the group
    /// commit's lock, so no other connection writes meanwhile. Returns the batch's own
    /// failure, if any.
    pub(crate) fn run_all(
        &self,
        members: Vec<Member>,
        right_edge: &mut Option<Frontier>,
    ) -> Result<(), StoreError> {
        let mut answers = Vec::with_capacity(members.len());
        let outcome = self.run_members(members, right_edge, &mut answers);
        if outcome.is_err() {
            *right_edge = None;
        }
        let committed = outcome.as_ref().copied().map_err(ToString::to_string);
        for answer in answers {
            answer(committed.as_ref().copied().map_err(String::as_str));
        }
        outcome
    }

    /// [`Writer::run_all`]'s transaction: the answers of the members it ran are left
    /// in `answers`; a member it could not run is dropped, which answers it with an
    /// error too (its caller's channel closes).
    fn run_members(
        &self,
        members: Vec<Member>,
        right_edge: &mut Option<Frontier>,
        answers: &mut Vec<Answer>,
    ) -> Result<(), StoreError> {
        let mut held = self.connection.lock().unwrap_or_else(|poisoned| {
            // A write panicked mid-transaction: its connection is closed (SQLite rolls
            // the transaction back) and a new one opened.
            self.connection.clear_poison();
            let mut held = poisoned.into_inner();
            *held = None;
            held
        });
        if held.is_none() {
            *held = Some(self.open()?);
        }
        let connection = held.as_ref().expect("opened above");
        let ran = run_in_transaction(connection, members, right_edge, answers);
        if ran.is_err()
            && !connection.is_autocommit()
            && connection.execute_batch("ROLLBACK").is_err()
        {
            // A connection that can neither commit nor roll back is not reused.
            *held = None;
        }
        ran
    }

    /// The connection, set as the pools' are (see `crate::store::sqlite_pool`).
    fn open(&self) -> Result<Connection, StoreError> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.execute_batch(&format!(
            // The file is in WAL mode already: the pools set it, and it persists.
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = {WRITER_BACKSTOP_PAGES};"
        ))?;
        connection.set_prepared_statement_cache_capacity(PREPARED);
        Ok(connection)
    }
}

/// What a member of a batch answers its caller with, once the batch's commit is known
/// (`Err` names why the batch failed).
pub(crate) type Answer = Box<dyn FnOnce(Result<(), &str>) + Send>;

/// What running a member left: whether its changes are kept, and its answer.
pub(crate) struct Ran {
    /// The write succeeded: its savepoint is released, not rolled back.
    pub kept: bool,
    /// Answers its caller once the batch's outcome is known.
    pub answer: Answer,
}

/// One caller's whole write, waiting for the writer (see `super::super::group`).
pub(crate) type Member = Box<dyn FnOnce(&mut Direct<'_>, &mut Option<Frontier>) -> Ran + Send>;

/// Begins, runs each member in its own savepoint, and commits.
fn run_in_transaction(
    connection: &Connection,
    members: Vec<Member>,
    right_edge: &mut Option<Frontier>,
    answers: &mut Vec<Answer>,
) -> Result<(), StoreError> {
    connection.execute_batch("BEGIN IMMEDIATE")?;
    for member in members {
        connection.execute_batch("SAVEPOINT member")?;
        let ran = member(&mut Direct(connection), right_edge);
        answers.push(ran.answer);
        if ran.kept {
            connection.execute_batch("RELEASE SAVEPOINT member")?;
        } else {
            connection.execute_batch("ROLLBACK TO SAVEPOINT member; RELEASE SAVEPOINT member")?;
            // The edge may hold the undone leaves: the next append reads it afresh.
            *right_edge = None;
        }
    }
    connection.execute_batch("COMMIT")?;
    Ok(())
}
