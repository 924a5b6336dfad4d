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

    /// Empties the page cache of every connection not lent at this moment, and
    /// answers how many were (see [`crate::store::Store::release_idle_caches`]). They
    /// are taken out while they shrink: a read meanwhile opens another connection or
    /// goes through the pool.
    pub(crate) fn release_idle(&self) -> usize {
        let idle = std::mem::take(&mut self.idle.lock().expect("direct reads lock").0);
        let count = idle.len();
        for connection in idle {
            if let Err(error) = connection.execute_batch("PRAGMA shrink_memory") {
                tracing::warn!(%error, "a direct read connection kept its cache");
            }
            self.give_back(connection);
        }
        count
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of page cache `connection` holds (`SQLITE_DBSTATUS_CACHE_USED`).
    fn cache_used(connection: &Connection) -> i32 {
        let (mut current, mut highest) = (0, 0);
        // SAFETY: the handle is the connection's own, alive while it is borrowed, and
        // `sqlite3_db_status` only writes the two counters it is given.
        let status = unsafe {
            rusqlite::ffi::sqlite3_db_status(
                connection.handle(),
                rusqlite::ffi::SQLITE_DBSTATUS_CACHE_USED,
                &mut current,
                &mut highest,
                0,
            )
        };
        assert_eq!(status, rusqlite::ffi::SQLITE_OK);
        current
    }

    #[test]
    fn an_idle_connection_gives_back_the_pages_it_cached() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reads.db");
        let setup = Connection::open(&path).unwrap();
        setup
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000)
                 INSERT INTO t SELECT i, randomblob(300) FROM n;",
            )
            .unwrap();
        let reads = DirectReads::new(path);
        let filled = reads
            .read(|c| {
                let total: i64 =
                    c.query_row("SELECT sum(length(body)) FROM t", [], |r| r.get(0))?;
                assert_eq!(total, 4000 * 300);
                Ok(cache_used(c))
            })
            .unwrap()
            .unwrap();
        assert!(filled > 1_000_000, "the scan cached {filled} bytes");

        assert_eq!(reads.release_idle(), 1, "one connection was idle");

        let after = reads.read(|c| Ok(cache_used(c))).unwrap().unwrap();
        assert!(
            after < filled / 10,
            "{after} bytes still cached of {filled}"
        );
        let (idle, open) = &*reads.idle.lock().unwrap();
        assert_eq!(
            (idle.len(), *open),
            (1, 1),
            "the same connection, handed back"
        );
    }
}
