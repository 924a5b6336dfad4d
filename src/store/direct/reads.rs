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
//!
//! A read that may scan (an officer's search, counted up to its limit; a page of an
//! agency's receipts; a traveller's view of their uses) is handed whole to a blocking
//! thread with a connection instead ([`DirectReads::read_apart`]): one hand-off for all
//! its statements and rows, where sqlx's worker takes two for each statement and wakes
//! its caller as rows arrive.

use crate::store::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::Mutex;

/// Most connections open at once: one per thread reading at the same moment, and the
/// runtime has one thread per core.
const MAX_CONNECTIONS: usize = 8;

/// Most connections lent at once to reads apart ([`DirectReads::read_apart`]): the
/// rest stay for the point reads every release makes, so that a burst of officers'
/// searches never sends an airline's releases through the pool.
const MAX_APART: usize = 4;

/// How long a read waits on a lock before failing: readers of a WAL database wait only
/// while its index is being rebuilt, which takes milliseconds.
const BUSY_TIMEOUT_MS: u32 = 250;

/// Read-only connections of the SQLite file, lent one at a time.
pub(crate) struct DirectReads {
    path: PathBuf,
    lending: Mutex<Lending>,
}

/// The connections, as they are lent.
#[derive(Default)]
struct Lending {
    /// Connections not lent.
    idle: Vec<Connection>,
    /// Connections open in all, lent or not.
    open: usize,
    /// Connections lent to reads apart.
    apart: usize,
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
            lending: Mutex::new(Lending::default()),
        }
    }

    /// Runs `read` on a connection of the file, on this thread; `None` when every
    /// connection is lent (the caller reads through the pool).
    pub(crate) fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Option<Result<T, StoreError>> {
        let connection = match self.lend(false) {
            Ok(Some(connection)) => connection,
            Ok(None) => return None,
            Err(error) => return Some(Err(error)),
        };
        let result = read(&connection);
        self.give_back(connection, false);
        Some(result)
    }

    /// Runs `read` over `job` on a connection of the file, on a blocking thread, so
    /// that a read of many rows holds no runtime thread; `Err(job)` when every
    /// connection is lent (the caller reads through the pool). A connection is lent
    /// before the thread is taken, so a burst of reads beyond the connections costs no
    /// threads. At most [`MAX_APART`] are lent so at once.
    pub(crate) async fn read_apart<J, T, E>(
        self: &std::sync::Arc<Self>,
        job: J,
        read: fn(&J, &Connection) -> Result<T, E>,
    ) -> Result<Result<T, E>, J>
    where
        J: Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let connection = match self.lend(true) {
            Ok(Some(connection)) => connection,
            Ok(None) => return Err(job),
            Err(error) => return Ok(Err(error.into())),
        };
        let reads = std::sync::Arc::clone(self);
        let done = tokio::task::spawn_blocking(move || {
            let result = read(&job, &connection);
            reads.give_back(connection, true);
            result
        })
        .await;
        Ok(match done {
            Ok(result) => result,
            Err(error) if error.is_panic() => {
                // The connection went with the thread's unwinding: it is no longer open.
                let mut lending = self.lending.lock().expect("direct reads lock");
                lending.open -= 1;
                lending.apart -= 1;
                drop(lending);
                std::panic::resume_unwind(error.into_panic())
            }
            // Only when the runtime shuts down.
            Err(_) => Err(StoreError::File("the read's thread was stopped".into()).into()),
        })
    }

    /// A connection, idle or newly opened; `None` when all that may be are lent
    /// (`apart`: to a read apart, of which at most [`MAX_APART`]).
    fn lend(&self, apart: bool) -> Result<Option<Connection>, StoreError> {
        {
            let mut lending = self.lending.lock().expect("direct reads lock");
            if apart && lending.apart >= MAX_APART {
                return Ok(None);
            }
            let idle = match lending.idle.pop() {
                Some(connection) => Some(connection),
                None if lending.open < MAX_CONNECTIONS => {
                    lending.open += 1;
                    None
                }
                None => return Ok(None),
            };
            lending.apart += usize::from(apart);
            if let Some(connection) = idle {
                return Ok(Some(connection));
            }
        }
        match self.open() {
            Ok(connection) => Ok(Some(connection)),
            Err(error) => {
                let mut lending = self.lending.lock().expect("direct reads lock");
                lending.open -= 1;
                if apart {
                    lending.apart -= 1;
                }
                Err(error)
            }
        }
    }

    /// Empties the page cache of every connection not lent at this moment, and
    /// answers how many were (see [`crate::store::Store::release_idle_caches`]). They
    /// are taken out while they shrink: a read meanwhile opens another connection or
    /// goes through the pool.
    pub(crate) fn release_idle(&self) -> usize {
        let idle = std::mem::take(&mut self.lending.lock().expect("direct reads lock").idle);
        let count = idle.len();
        for connection in idle {
            if let Err(error) = connection.execute_batch("PRAGMA shrink_memory") {
                tracing::warn!(%error, "a direct read connection kept its cache");
            }
            self.give_back(connection, false);
        }
        count
    }

    fn give_back(&self, connection: Connection, apart: bool) {
        let mut lending = self.lending.lock().expect("direct reads lock");
        lending.idle.push(connection);
        if apart {
            lending.apart -= 1;
        }
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
        let lending = reads.lending.lock().unwrap();
        assert_eq!(
            (lending.idle.len(), lending.open),
            (1, 1),
            "the same connection, handed back"
        );
    }

    fn three_rows() -> (tempfile::TempDir, std::sync::Arc<DirectReads>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apart.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE t (id INTEGER PRIMARY KEY);
                 INSERT INTO t VALUES (1), (2), (3);",
            )
            .unwrap();
        (dir, std::sync::Arc::new(DirectReads::new(path)))
    }

    /// `count` connections lent at once, to reads apart or not.
    fn lent(reads: &DirectReads, count: usize, apart: bool) -> Vec<Connection> {
        (0..count)
            .map(|_| reads.lend(apart).unwrap().expect("a connection"))
            .collect()
    }

    /// A search asked apart: `Err("search")` when it is handed back for the pool.
    async fn a_search(
        reads: &std::sync::Arc<DirectReads>,
    ) -> Result<Result<(), StoreError>, &'static str> {
        reads.read_apart("search", |_, _| Ok(())).await
    }

    #[tokio::test]
    async fn a_read_apart_runs_off_the_callers_thread_and_gives_its_connection_back() {
        let (_dir, reads) = three_rows();
        let caller = std::thread::current().id();
        let read = reads
            .read_apart("search", |job, c| {
                let n: i64 = c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
                Ok::<_, StoreError>((*job, n, std::thread::current().id()))
            })
            .await;
        let Ok(Ok((job, rows, thread))) = read else {
            panic!("the read did not run apart");
        };
        assert_eq!((job, rows), ("search", 3), "the job was lent to the read");
        assert_ne!(thread, caller, "the read ran on a thread of its own");
        let lending = reads.lending.lock().unwrap();
        assert_eq!(
            (lending.idle.len(), lending.open, lending.apart),
            (1, 1, 0),
            "its connection, handed back"
        );
    }

    #[tokio::test]
    async fn a_read_apart_is_handed_back_when_every_connection_is_lent() {
        let (_dir, reads) = three_rows();
        let every = lent(&reads, MAX_CONNECTIONS, false);
        assert!(
            matches!(a_search(&reads).await, Err("search")),
            "the job comes back for the pool"
        );
        for connection in every {
            reads.give_back(connection, false);
        }
        assert!(
            matches!(a_search(&reads).await, Ok(Ok(()))),
            "a connection given back serves again"
        );
    }

    #[tokio::test]
    async fn reads_apart_leave_connections_for_the_point_reads() {
        let (_dir, reads) = three_rows();
        let apart = lent(&reads, MAX_APART, true);
        assert!(
            matches!(a_search(&reads).await, Err("search")),
            "a search past the reads apart' share goes through the pool"
        );
        let point =
            reads.read(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))?));
        assert!(
            matches!(point, Some(Ok(3))),
            "a point read still has a connection of the file"
        );
        for connection in apart {
            reads.give_back(connection, true);
        }
        assert_eq!(reads.lending.lock().unwrap().apart, 0);
    }
}
