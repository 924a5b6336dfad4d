//! Point reads on the calling thread: the reads every request of a disruption makes
//! (its API key, its token with the facts a use is decided on).
//!
//! The read runs where it is asked, on a read-only connection of the file borrowed
//! from a small set and handed back at once; WAL lets it read beside the writer, and it
//! sees the last committed state exactly as a pool connection would.
//!
//! The read holds its thread for its few microseconds, like any other computation: it
//! is for point reads by key, never for a scan. At most [`MAX_CONNECTIONS`] are open
//! (each keeps its own page cache); when all are lent, the read goes through the pool.

use crate::store::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::Mutex;

/// Most connections open at once: one per thread reading at the same moment, and the
/// runtime has one thread per core.
const MAX_CONNECTIONS: usize = 8;

/// How long a read waits on a lock before failing: readers of a WAL database wait only
/// while its index is being rebuilt, which takes milliseconds.
const BUSY_TIMEOUT_MS: u32 = 250;

/// Read-only connections of the SQLite file, lent one at a time.
pub(crate) struct DirectReads {
    path: PathBuf,
    /// Connections not lent, and how many are open in all.
    idle: Mutex<(Vec<Connection>, usize)>,
}

impl std::fmt::Debug for DirectReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectReads")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl DirectReads {
    /// Reads of the SQLite file at `path`; connections are opened when first needed.
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            idle: Mutex::new((Vec::new(), 0)),
        }
    }

    /// Runs `read` on a connection of the file, on this thread; `None` when every
    /// connection is lent (the caller reads through the pool).
    pub(crate) fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Option<Result<T, StoreError>> {
        let connection = match self.lend() {
            Ok(Some(connection)) => connection,
            Ok(None) => return None,
            Err(error) => return Some(Err(error)),
        };
        let result = read(&connection);
        self.give_back(connection);
        Some(result)
    }

    fn lend(&self) -> Result<Option<Connection>, StoreError> {
        {
            let mut idle = self.idle.lock().expect("direct reads lock");
            if let Some(connection) = idle.0.pop() {
                return Ok(Some(connection));
            }
            if idle.1 >= MAX_CONNECTIONS {
                return Ok(None);
            }
            idle.1 += 1;
        }
        match self.open() {
            Ok(connection) => Ok(Some(connection)),
            Err(error) => {
                self.idle.lock().expect("direct reads lock").1 -= 1;
                Err(error)
            }
        }
    }

    fn give_back(&self, connection: Connection) {
        self.idle
            .lock()
            .expect("direct reads lock")
            .0
            .push(connection);
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(std::time::Duration::from_millis(u64::from(BUSY_TIMEOUT_MS)))?;
        Ok(connection)
    }
}
