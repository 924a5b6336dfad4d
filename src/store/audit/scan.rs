//! Reading the whole log in index order, page by page, for `audit verify`: each entry
//! as its recomputed leaf hash (and whether it is the one stored), with the subtrees
//! its page completes.
//!
//! On SQLite the pages are read straight from the database file with rusqlite, on
//! blocking threads, rather than through the pool: sqlx's SQLite driver hands every row
//! from its worker thread to the runtime through a channel, and at ten thousand rows a
//! page that hand-off (a wake-up and an allocation per row, then a conversion to its
//! `Any` row) was most of the time a verification took. Each reading thread also hashes
//! the entries it reads, from the row's own bytes (no entry is copied out of it), and
//! one page is read on each core while the caller checks the one before: a verification
//! is those hashes, and they are shared among the cores. rusqlite links the same
//! `libsqlite3-sys` as sqlx, and the file is opened read-only, so a broker may keep
//! writing while it is read (WAL).
//!
//! On PostgreSQL the pages come through connections of sqlx's own PostgreSQL driver
//! rather than `Any`, whose rows hold every column as an owned value: a page's rows
//! are hashed from the bytes the server sent, on a blocking thread, while the next
//! pages are already being read on other connections.

use crate::audit::merkle::{Hash, NodeId};
use crate::audit::EntryFields;
use crate::domain::time::format_time;
use crate::store::{from_millis, Store, StoreError};
use rusqlite::OpenFlags;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{AnyPool, Row, ValueRef};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;

/// One entry as read: its index, its leaf hash recomputed from its columns, and
/// whether that is the leaf hash stored beside it.
#[derive(Debug, Clone, Copy)]
pub struct Leaf {
    /// The entry's index.
    pub index: u64,
    /// Its leaf hash, recomputed.
    pub hash: Hash,
    /// Whether the stored leaf hash is the same.
    pub as_stored: bool,
}

/// One page of the log: its entries' leaves, and every stored subtree whose last leaf
/// is among them.
pub struct Page {
    /// The leaves, in index order.
    pub leaves: Vec<Leaf>,
    /// The subtrees they complete, by id, as stored (a stored value that is not a hash
    /// reads as zeros, which no subtree hashes to).
    pub nodes: HashMap<NodeId, Hash>,
}

/// Where the pages come from.
enum Source {
    /// The SQLite file, through read-only connections of its own.
    File(FileScan),
    /// PostgreSQL, through connections of its own driver.
    Postgres(PostgresScan),
    /// The pool, for an SQLite database with no file.
    Pool(AnyPool),
}

/// A page being read on a blocking thread, handing back the connection with it.
type Reading = tokio::task::JoinHandle<(rusqlite::Connection, Result<Page, StoreError>)>;

/// The file's connections, and the pages being read ahead on them: the pages after the
/// one asked are read while the caller checks it, one on each connection, assuming the
/// log is dense (it is, unless entries were deleted, which the caller then finds at the
/// first page that does not start where it should).
struct FileScan {
    idle: Vec<rusqlite::Connection>,
    /// Pages being read: their first index and the read.
    ahead: VecDeque<(i64, Reading)>,
    /// The first index of the next page to read ahead.
    next: i64,
}

impl FileScan {
    async fn page(&mut self, from: i64, limit: i64) -> Result<Page, StoreError> {
        if self.ahead.front().map(|(first, _)| *first) != Some(from) {
            // Not the page read ahead (the first one, or a gap): start again from here.
            while let Some((_, reading)) = self.ahead.pop_front() {
                let (conn, _) = joined(reading).await?;
                self.idle.push(conn);
            }
            self.next = from;
        }
        self.start_reads(limit);
        let (_, reading) = self.ahead.pop_front().ok_or_else(lost)?;
        let (conn, page) = joined(reading).await?;
        // The connection goes back to reading at once, while the caller checks this
        // page: handed back only at the next call, each reader sat idle for as long as
        // the caller took (two cores were a sixth idle during a verification).
        self.idle.push(conn);
        self.start_reads(limit);
        page
    }

    /// Starts reading the next pages, one on each idle connection.
    fn start_reads(&mut self, limit: i64) {
        while let Some(conn) = self.idle.pop() {
            let first = self.next;
            self.ahead
                .push_back((first, read_ahead(conn, first, limit)));
            self.next += limit;
        }
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

/// A page being read from PostgreSQL and hashed.
type PostgresReading = tokio::task::JoinHandle<Result<Page, StoreError>>;

/// PostgreSQL's pages, read ahead like the file's: one in flight per connection of
/// `pool` while the caller checks the one before.
struct PostgresScan {
    pool: PgPool,
    /// Pages being read at once.
    depth: usize,
    /// Pages being read: their first index and the read.
    ahead: VecDeque<(i64, PostgresReading)>,
    /// The first index of the next page to read ahead.
    next: i64,
}

impl PostgresScan {
    async fn page(&mut self, from: i64, limit: i64) -> Result<Page, StoreError> {
        if self.ahead.front().map(|(first, _)| *first) != Some(from) {
            // Not the page read ahead (the first one, or a gap): start again from here.
            for (_, reading) in self.ahead.drain(..) {
                reading.abort();
            }
            self.next = from;
        }
        while self.ahead.len() < self.depth {
            let first = self.next;
            let pool = self.pool.clone();
            self.ahead.push_back((
                first,
                tokio::spawn(async move { read_postgres_page(&pool, first, limit).await }),
            ));
            self.next += limit;
        }
        let (_, reading) = self.ahead.pop_front().ok_or_else(lost)?;
        reading
            .await
            .map_err(|e| StoreError::File(format!("the page reader stopped: {e}")))?
    }
}

/// Reads a page's entries and subtrees, then hashes the entries on a blocking thread.
async fn read_postgres_page(pool: &PgPool, from: i64, limit: i64) -> Result<Page, StoreError> {
    let mut conn = pool.acquire().await?;
    // A range of indexes, not `idx >= $1 … LIMIT $2`: without statistics (a table
    // never analysed) PostgreSQL planned that one as a scan of the whole table and a
    // sort, at every page. The log is dense, so the range holds the page; a gap is
    // what the caller reports.
    let rows = sqlx::query(&format!(
        "SELECT {} FROM audit_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx",
        super::search::ENTRY_COLUMNS
    ))
    .bind(from)
    .bind(from.saturating_add(limit))
    .fetch_all(&mut *conn)
    .await?;
    let to = match rows.last() {
        Some(last) => last.try_get::<i64, _>(0)? + 1,
        None => from,
    };
    let stored = sqlx::query(
        "SELECT level, idx, hash FROM audit_nodes WHERE last_leaf >= $1 AND last_leaf < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    drop(conn);
    let mut nodes = HashMap::with_capacity(stored.len());
    for row in &stored {
        let level: i32 = row.try_get(0)?;
        let index: i64 = row.try_get(1)?;
        let hash: &[u8] = row.try_get(2)?;
        let id = NodeId {
            level: level as u32,
            index: index as u64,
        };
        nodes.insert(id, as_hash(hash));
    }
    let leaves = tokio::task::spawn_blocking(move || {
        let mut canonical = Vec::with_capacity(1024);
        let mut shown = Shown::default();
        rows.iter()
            .map(|row| leaf_of(row, &mut canonical, &mut shown))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| StoreError::File(format!("the page hasher stopped: {e}")))??;
    Ok(Page { leaves, nodes })
}

fn lost() -> StoreError {
    StoreError::File("the file's connections were lost with failed reads".into())
}

/// A reader of the whole log.
pub struct LogScan(Source);

impl LogScan {
    /// Opens a reader of the log in `store`.
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(LogScan(match store.sqlite_file() {
            Some(path) => {
                let readers = std::thread::available_parallelism().map_or(1, |n| n.get());
                let idle = (0..readers.clamp(1, 4))
                    .map(|_| open_file(path.clone()))
                    .collect::<Result<_, _>>()?;
                Source::File(FileScan {
                    idle,
                    ahead: VecDeque::new(),
                    next: 0,
                })
            }
            None => match store.postgres_options() {
                Some(options) => {
                    let depth = std::thread::available_parallelism().map_or(1, |n| n.get());
                    let depth = depth.clamp(2, 4);
                    Source::Postgres(PostgresScan {
                        pool: PgPoolOptions::new()
                            .max_connections(depth as u32)
                            .connect_lazy_with(options.0.clone()),
                        depth,
                        ahead: VecDeque::new(),
                        next: 0,
                    })
                }
                None => Source::Pool(store.reader().clone()),
            },
        }))
    }

    /// Stops the pages read ahead and closes the connections opened for the scan, so
    /// that PostgreSQL sees them end rather than reset.
    pub async fn close(self) {
        if let Source::Postgres(mut postgres) = self.0 {
            for (_, reading) in postgres.ahead.drain(..) {
                reading.abort();
            }
            postgres.pool.close().await;
        }
    }

    /// Up to `limit` entries from index `from` on, and the subtrees they complete.
    pub async fn page(&mut self, from: u64, limit: i64) -> Result<Page, StoreError> {
        let from = from as i64;
        match &mut self.0 {
            Source::Pool(pool) => {
                let mut conn = pool.acquire().await?;
                let entries = super::list(&mut *conn, from.checked_sub(1), limit).await?;
                let to = entries.last().map_or(from, |(e, _)| e.index + 1);
                let nodes = super::nodes_completed_in(&mut conn, from as u64, to as u64)
                    .await?
                    .into_iter()
                    .map(|(id, hash)| (id, as_hash(&hash)))
                    .collect();
                let leaves = entries
                    .iter()
                    .map(|(entry, stored)| {
                        let hash = entry.leaf_hash();
                        Leaf {
                            index: entry.index as u64,
                            hash,
                            as_stored: stored.as_slice() == hash.as_slice(),
                        }
                    })
                    .collect();
                Ok(Page { leaves, nodes })
            }
            Source::File(file) => file.page(from, limit).await,
            Source::Postgres(postgres) => postgres.page(from, limit).await,
        }
    }
}

/// Pages of the file read through a memory map rather than copied in by `pread`: a
/// verification reads the whole log once, and the map is the command's, not the
/// broker's.
const MAP_BYTES: i64 = 1 << 40;

fn open_file(path: PathBuf) -> Result<rusqlite::Connection, StoreError> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "mmap_size", MAP_BYTES)?;
    Ok(conn)
}

/// Reads and hashes a page on the calling (blocking) thread.
fn read_page(conn: &rusqlite::Connection, from: i64, limit: i64) -> Result<Page, StoreError> {
    // One read transaction, so the entries and their subtrees are one snapshot.
    conn.execute_batch("BEGIN")?;
    let page = read_in_snapshot(conn, from, limit);
    conn.execute_batch("COMMIT")?;
    page
}

fn read_in_snapshot(
    conn: &rusqlite::Connection,
    from: i64,
    limit: i64,
) -> Result<Page, StoreError> {
    let mut leaves = Vec::with_capacity(limit.clamp(0, 100_000) as usize);
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {} FROM audit_entries WHERE idx >= ?1 ORDER BY idx LIMIT ?2",
        super::search::ENTRY_COLUMNS
    ))?;
    let mut rows = statement.query((from, limit))?;
    let mut canonical = Vec::with_capacity(1024);
    let mut at = Shown::default();
    while let Some(row) = rows.next()? {
        leaves.push(leaf_of(row, &mut canonical, &mut at)?);
    }
    let to = leaves.last().map_or(from, |l| l.index as i64 + 1);
    let mut nodes = HashMap::with_capacity(leaves.len());
    let mut statement = conn.prepare_cached(
        "SELECT level, idx, hash FROM audit_nodes WHERE last_leaf >= ?1 AND last_leaf < ?2",
    )?;
    let mut rows = statement.query((from, to))?;
    while let Some(row) = rows.next()? {
        let level: i64 = row.get(0)?;
        let index: i64 = row.get(1)?;
        let id = NodeId {
            level: level as u32,
            index: index as u64,
        };
        let hash = row.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
        nodes.insert(id, as_hash(hash));
    }
    Ok(Page { leaves, nodes })
}

/// A stored hash, or zeros for a value of another length (which then matches nothing).
fn as_hash(stored: &[u8]) -> Hash {
    stored.try_into().unwrap_or([0; 32])
}

/// The last time shown, by its stored milliseconds: entries appended together share
/// their time, and formatting it is a tenth of an entry's hashing.
#[derive(Default)]
struct Shown {
    millis: Option<i64>,
    text: String,
}

impl Shown {
    fn of(&mut self, millis: i64) -> Result<&str, StoreError> {
        if self.millis != Some(millis) {
            self.text = format_time(from_millis(millis)?);
            self.millis = Some(millis);
        }
        Ok(&self.text)
    }
}

/// A row of `search::ENTRY_COLUMNS`, read as bytes where it is text, whichever driver
/// read it.
trait EntryRow {
    fn int(&self, column: usize) -> Result<i64, StoreError>;
    fn text(&self, column: usize) -> Result<Option<&[u8]>, StoreError>;
    fn blob(&self, column: usize) -> Result<Option<&[u8]>, StoreError>;
}

impl EntryRow for rusqlite::Row<'_> {
    fn int(&self, column: usize) -> Result<i64, StoreError> {
        Ok(self.get(column)?)
    }
    fn text(&self, column: usize) -> Result<Option<&[u8]>, StoreError> {
        Ok(self
            .get_ref(column)?
            .as_bytes_or_null()
            .map_err(rusqlite::Error::from)?)
    }
    fn blob(&self, column: usize) -> Result<Option<&[u8]>, StoreError> {
        Ok(self
            .get_ref(column)?
            .as_blob_or_null()
            .map_err(rusqlite::Error::from)?)
    }
}

/// Text and `bytea` columns are taken as the bytes the server sent (sqlx asks for
/// binary results, in which both are their own bytes), without a type check or UTF-8
/// validation per column: they are only hashed, and a byte changed anywhere changes
/// the hash.
impl EntryRow for PgRow {
    fn int(&self, column: usize) -> Result<i64, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn text(&self, column: usize) -> Result<Option<&[u8]>, StoreError> {
        let value = self.try_get_raw(column)?;
        Ok(if value.is_null() {
            None
        } else {
            Some(value.as_bytes().map_err(sqlx::Error::Decode)?)
        })
    }
    fn blob(&self, column: usize) -> Result<Option<&[u8]>, StoreError> {
        self.text(column)
    }
}

/// An entry's leaf, hashed from the row's own bytes (the columns in
/// `search::ENTRY_COLUMNS` order); `canonical` is a buffer reused from row to row.
fn leaf_of(
    r: &impl EntryRow,
    canonical: &mut Vec<u8>,
    shown: &mut Shown,
) -> Result<Leaf, StoreError> {
    let text = |i: usize| r.text(i);
    let required = |i: usize| -> Result<&[u8], StoreError> {
        text(i)?.ok_or_else(|| StoreError::Corrupt(format!("audit column {i} is empty")))
    };
    let index = r.int(0)?;
    let at = shown.of(r.int(1)?)?;
    let fields = EntryFields {
        index,
        at: at.as_bytes(),
        request_id: required(2)?,
        actor_kind: required(3)?,
        actor_id: required(4)?,
        action: required(5)?,
        outcome: required(6)?,
        reason: text(7)?,
        agency_id: text(8)?,
        airline_id: text(9)?,
        booking_id: text(10)?,
        traveller_id: text(11)?,
        consent_id: text(12)?,
        token_id: text(13)?,
        purpose: text(14)?,
        event_category: text(15)?,
        event_reference: text(16)?,
        flight: text(17)?,
        message_id: text(18)?,
        channel: text(19)?,
        policies: text(20)?,
        policy_digest: text(21)?,
    };
    canonical.clear();
    canonical.push(0x00);
    fields.write_canonical(canonical);
    let hash = crate::crypto::sha256(canonical);
    let stored = r.blob(22)?;
    Ok(Leaf {
        index: index as u64,
        hash,
        as_stored: stored == Some(hash.as_slice()),
    })
}
