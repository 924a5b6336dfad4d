//! Reading the whole log in index order, page by page, for `audit verify`.
//!
//! On SQLite the pages are read straight from the database file with rusqlite, on a
//! blocking thread, rather than through the pool: sqlx's SQLite driver hands every
//! row from its worker thread to the runtime through a channel, and at ten thousand
//! rows a page that hand-off (a wake-up and an allocation per row, then a conversion
//! to its `Any` row) was most of the time a verification took. rusqlite links the
//! same `libsqlite3-sys` as sqlx, and the file is opened read-only, so a broker may
//! keep writing while it is read (WAL). On PostgreSQL the pool's reads are used.

use super::search::ENTRY_COLUMNS;
use crate::audit::merkle::NodeId;
use crate::audit::AuditEntry;
use crate::domain::time::format_time;
use crate::store::{from_millis, Store, StoreError};
use rusqlite::OpenFlags;
use sqlx::AnyPool;
use std::collections::HashMap;
use std::path::PathBuf;

/// One page of the log: its entries with their stored leaf hashes, and every stored
/// subtree whose last leaf is among them.
pub struct Page {
    /// The entries, in index order.
    pub entries: Vec<(AuditEntry, Vec<u8>)>,
    /// The subtrees they complete, by id.
    pub nodes: HashMap<NodeId, Vec<u8>>,
}

/// Where the pages come from.
enum Source {
    /// The SQLite file, through its own read-only connection.
    File(FileScan),
    /// The pool, on PostgreSQL (or an SQLite database with no file).
    Pool(AnyPool),
}

/// A page being read on the blocking thread, handing back the connection with it.
type Reading = tokio::task::JoinHandle<(rusqlite::Connection, Result<Page, StoreError>)>;

/// The file's connection, or the read it is lent to: the page after the one last
/// handed out is read while the caller checks that one (two cores, two jobs).
struct FileScan {
    idle: Option<rusqlite::Connection>,
    /// The page being read ahead: its first index, its size, the read.
    ahead: Option<(i64, i64, Reading)>,
}

impl FileScan {
    async fn page(&mut self, from: i64, limit: i64) -> Result<Page, StoreError> {
        let reading = match self.ahead.take() {
            Some((f, l, reading)) if (f, l) == (from, limit) => reading,
            Some((_, _, other)) => {
                let (conn, _) = joined(other).await?;
                read_ahead(conn, from, limit)
            }
            None => read_ahead(self.idle.take().ok_or_else(lost)?, from, limit),
        };
        let (conn, page) = joined(reading).await?;
        let page = page?;
        match page.entries.last() {
            // A full page: the next one is likely there too; read it meanwhile.
            Some((last, _)) if page.entries.len() as i64 == limit => {
                self.ahead = Some((
                    last.index + 1,
                    limit,
                    read_ahead(conn, last.index + 1, limit),
                ));
            }
            _ => self.idle = Some(conn),
        }
        Ok(page)
    }
}

fn read_ahead(conn: rusqlite::Connection, from: i64, limit: i64) -> Reading {
    tokio::task::spawn_blocking(move || {
        let page = read_page(&conn, from, limit);
        (conn, page)
    })
}

async fn joined(
    reading: Reading,
) -> Result<(rusqlite::Connection, Result<Page, StoreError>), StoreError> {
    reading
        .await
        .map_err(|e| StoreError::File(format!("the page reader stopped: {e}")))
}

fn lost() -> StoreError {
    StoreError::File("the file's connection was lost with a failed read".into())
}

/// A reader of the whole log.
pub struct LogScan(Source);

impl LogScan {
    /// Opens a reader of the log in `store`.
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(LogScan(match store.sqlite_file() {
            Some(path) => Source::File(FileScan {
                idle: Some(open_file(path)?),
                ahead: None,
            }),
            None => Source::Pool(store.reader().clone()),
        }))
    }

    /// Up to `limit` entries after index `after` (from the start for `None`), and the
    /// subtrees they complete.
    pub async fn page(&mut self, after: Option<i64>, limit: i64) -> Result<Page, StoreError> {
        let from = after.map_or(0, |a| a + 1);
        match &mut self.0 {
            Source::Pool(pool) => {
                let mut conn = pool.acquire().await?;
                let entries = super::list(&mut conn, after, limit).await?;
                let to = entries.last().map_or(from, |(e, _)| e.index + 1);
                let nodes = super::nodes_completed_in(&mut conn, from as u64, to as u64)
                    .await?
                    .into_iter()
                    .collect();
                Ok(Page { entries, nodes })
            }
            Source::File(file) => file.page(from, limit).await,
        }
    }
}

fn open_file(path: PathBuf) -> Result<rusqlite::Connection, StoreError> {
    rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(file_error)
}

fn file_error(err: rusqlite::Error) -> StoreError {
    StoreError::File(err.to_string())
}

/// Reads a page on the calling (blocking) thread.
fn read_page(conn: &rusqlite::Connection, from: i64, limit: i64) -> Result<Page, StoreError> {
    // One read transaction, so the entries and their subtrees are one snapshot.
    conn.execute_batch("BEGIN").map_err(file_error)?;
    let page = read_in_snapshot(conn, from, limit);
    conn.execute_batch("COMMIT").map_err(file_error)?;
    page
}

fn read_in_snapshot(
    conn: &rusqlite::Connection,
    from: i64,
    limit: i64,
) -> Result<Page, StoreError> {
    let mut entries = Vec::with_capacity(limit.clamp(0, 100_000) as usize);
    let mut statement = conn
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_entries WHERE idx >= ?1 ORDER BY idx LIMIT ?2"
        ))
        .map_err(file_error)?;
    let mut rows = statement.query((from, limit)).map_err(file_error)?;
    while let Some(row) = rows.next().map_err(file_error)? {
        entries.push(entry_from_row(row).map_err(|e| match e {
            RowError::File(e) => file_error(e),
            RowError::Store(e) => e,
        })?);
    }
    let to = entries.last().map_or(from, |(e, _)| e.index + 1);
    let mut nodes = HashMap::new();
    let mut statement = conn
        .prepare_cached(
            "SELECT level, idx, hash FROM audit_nodes WHERE last_leaf >= ?1 AND last_leaf < ?2",
        )
        .map_err(file_error)?;
    let mut rows = statement.query((from, to)).map_err(file_error)?;
    while let Some(row) = rows.next().map_err(file_error)? {
        let level: i64 = row.get(0).map_err(file_error)?;
        let index: i64 = row.get(1).map_err(file_error)?;
        nodes.insert(
            NodeId {
                level: level as u32,
                index: index as u64,
            },
            row.get(2).map_err(file_error)?,
        );
    }
    Ok(Page { entries, nodes })
}

enum RowError {
    File(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for RowError {
    fn from(e: rusqlite::Error) -> Self {
        RowError::File(e)
    }
}

/// An entry from its row, the columns in [`ENTRY_COLUMNS`] order.
fn entry_from_row(r: &rusqlite::Row<'_>) -> Result<(AuditEntry, Vec<u8>), RowError> {
    let at = from_millis(r.get(1)?).map_err(RowError::Store)?;
    let entry = AuditEntry {
        index: r.get(0)?,
        at: format_time(at),
        request_id: r.get(2)?,
        actor_kind: r.get(3)?,
        actor_id: r.get(4)?,
        action: r.get(5)?,
        outcome: r.get(6)?,
        reason: r.get(7)?,
        agency_id: r.get(8)?,
        airline_id: r.get(9)?,
        booking_id: r.get(10)?,
        traveller_id: r.get(11)?,
        consent_id: r.get(12)?,
        token_id: r.get(13)?,
        purpose: r.get(14)?,
        event_category: r.get(15)?,
        event_reference: r.get(16)?,
        flight: r.get(17)?,
        message_id: r.get(18)?,
        channel: r.get(19)?,
        policies: r.get(20)?,
        policy_digest: r.get(21)?,
    };
    Ok((entry, r.get(22)?))
}
