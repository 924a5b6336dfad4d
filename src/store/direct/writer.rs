//! The direct writer: the SQLite file's one write connection outside sqlx, used by the
//! thread a whole write is handed to (see [`super::Write`]).

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

    /// Runs `write` in a transaction and commits it, on this thread. The caller holds
    /// the group commit's lock, so no other connection writes meanwhile; a write that
    /// fails is rolled back whole.
    pub(crate) fn run<T>(
        &self,
        write: impl FnOnce(&mut Direct<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut held = self.connection.lock().expect("direct writer lock");
        if held.is_none() {
            *held = Some(self.open()?);
        }
        let connection = held.as_ref().expect("opened above");
        connection.execute_batch("BEGIN IMMEDIATE")?;
        let written = write(&mut Direct(connection));
        let done = match written {
            Ok(value) => connection
                .execute_batch("COMMIT")
                .map(|()| value)
                .map_err(StoreError::from),
            Err(error) => Err(error),
        };
        if done.is_err()
            && !connection.is_autocommit()
            && connection.execute_batch("ROLLBACK").is_err()
        {
            // A connection that can neither commit nor roll back is not reused.
            *held = None;
        }
        done
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
