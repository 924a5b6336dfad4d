//! All SQL lives here, and only here.
//!
//! One code path serves SQLite and PostgreSQL: queries go through sqlx's `Any` driver,
//! checked at run time, written in the SQL both engines accept (`$1` placeholders,
//! `ON CONFLICT`, `RETURNING`), with integer times and byte-string blobs. Only the
//! migrations differ by engine (`migrations/sqlite`, `migrations/postgres`), in types.
//!
//! SQLite allows one writer at a time, and a deferred transaction that reads before it
//! writes can fail with `SQLITE_BUSY` when another writer commits in between. So on
//! SQLite all write transactions go through a one-connection writer pool (they queue
//! instead of failing), while reads use a separate pool that WAL lets run alongside.
//! On PostgreSQL both are the same pool.
//!
//! Functions take `&mut AnyConnection` so that the caller decides the transaction:
//! a change and its audit entry always commit together.

pub mod agency_keys;
pub mod api_keys;
pub mod audit;
pub mod bookings;
pub mod budgets;
mod checkpoint;
pub mod consents;
pub mod contact_verifications;
pub mod db;
pub mod direct;
pub mod disruptions;
pub mod erasures;
pub mod group;
pub mod idempotency;
pub mod keys;
pub mod memory;
pub mod outbox;
pub mod parties;
pub mod rate_budgets;
pub mod reachability;
pub mod records;
pub mod release;
pub mod reports;
pub mod row;
pub mod sealed;
pub mod sessions;
pub mod templates;
pub mod tokens;
pub mod use_facts;
pub mod verifications;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;
use std::time::Duration;
use time::OffsetDateTime;

/// A write transaction: a savepoint in a group-committed batch (see [`group`]).
pub type Tx = group::Tx;
/// A connection, inside a transaction or not.
pub type Conn = sqlx::AnyConnection;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value does not parse back: the database was changed behind our back.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// The SQLite file, read directly (see `audit::LogScan`), refused or failed.
    #[error("database file error: {0}")]
    File(String),
    /// A read of the SQLite file on the calling thread (see [`direct`]) failed.
    #[error("database file error: {0}")]
    Direct(#[from] rusqlite::Error),
    /// The database URL names an engine we do not run on.
    #[error("unsupported database URL: use sqlite://PATH or postgres://…")]
    UnsupportedUrl,
}

/// PostgreSQL's connection options, printed without what they hold (a password).
#[derive(Clone)]
pub struct PostgresOptions(pub sqlx::postgres::PgConnectOptions);

impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresOptions { .. }")
    }
}

/// The database engine in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The embedded default.
    Sqlite,
    /// The production engine for deployments that outgrow one machine.
    Postgres,
}

/// Handle to the database: a pool for reads and one for write transactions.
#[derive(Clone, Debug)]
pub struct Store {
    engine: Engine,
    /// The SQLite database file, for what reads it directly; `None` on PostgreSQL
    /// and for an in-memory database.
    sqlite_file: Option<std::path::PathBuf>,
    /// How to open PostgreSQL's own connections, for what reads it without `Any`
    /// (see `audit::LogScan`); `None` on SQLite.
    postgres: Option<PostgresOptions>,
    reader: AnyPool,
    writer: AnyPool,
    group: group::GroupCommit,
    /// Reads of the SQLite file on the calling thread, for the hottest point reads;
    /// `None` on PostgreSQL and for an in-memory database.
    direct: Option<std::sync::Arc<direct::reads::DirectReads>>,
    /// The direct writer of the SQLite file (see [`direct`]); `None` where `direct`
    /// is.
    direct_writer: Option<std::sync::Arc<direct::writer::Writer>>,
    /// The WAL checkpoint thread of the SQLite file, which runs while this is held.
    _checkpoints: Option<std::sync::Arc<checkpoint::Running>>,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connects to `sqlite://PATH` (the file is created if missing) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Engine::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let options = AnyConnectOptions::from_str(url)?;
        match engine {
            Engine::Sqlite => {
                // The writer checkpoints only as a backstop: a thread does it beside it.
                let writer = sqlite_pool(1, checkpoint::WRITER_BACKSTOP_PAGES)
                    .connect_with(options.clone())
                    .await?;
                let reader = sqlite_pool(4, checkpoint::WRITER_BACKSTOP_PAGES)
                    .connect_with(options)
                    .await?;
                let file = sqlite_file(url);
                Ok(Self {
                    engine,
                    _checkpoints: file
                        .clone()
                        .map(|path| std::sync::Arc::new(checkpoint::start(path))),
                    direct: file
                        .clone()
                        .map(|path| std::sync::Arc::new(direct::reads::DirectReads::new(path))),
                    direct_writer: file
                        .clone()
                        .map(|path| std::sync::Arc::new(direct::writer::Writer::new(path))),
                    sqlite_file: file,
                    postgres: None,
                    reader,
                    group: group::GroupCommit::new(writer.clone()),
                    writer,
                })
            }
            Engine::Postgres => {
                let reader = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(5))
                    .test_before_acquire(false)
                    .connect_with(options.clone())
                    .await?;
                // The group commit's own connections: with one pool for both, requests
                // holding a read connection while they waited for the writer took every
                // connection the writer needed to open its batch, until acquiring timed
                // out (seen as `503 audit-unavailable` under a disruption's load).
                let writer = AnyPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(Duration::from_secs(5))
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await?;
                Ok(Self {
                    engine,
                    _checkpoints: None,
                    direct: None,
                    direct_writer: None,
                    sqlite_file: None,
                    postgres: Some(PostgresOptions(sqlx::postgres::PgConnectOptions::from_str(
                        url,
                    )?)),
                    reader,
                    group: group::GroupCommit::new(writer.clone()),
                    writer,
                })
            }
        }
    }

    /// Brings the schema up to date; safe to run on every start.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.engine {
            Engine::Sqlite => &SQLITE_MIGRATIONS,
            Engine::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.writer).await?;
        // Logs written before the tree's subtrees were stored get them now.
        let mut tx = self.writer.begin().await?;
        let written = audit::complete_tree(&mut tx).await?;
        tx.commit().await?;
        if written > 0 {
            tracing::info!(nodes = written, "stored the audit tree's subtrees");
        }
        Ok(())
    }

    /// The engine in use.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The SQLite database file, when there is one.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        self.sqlite_file.clone()
    }

    /// PostgreSQL's connection options, when that is the engine.
    pub fn postgres_options(&self) -> Option<&PostgresOptions> {
        self.postgres.as_ref()
    }

    /// Starts a write transaction, which joins the current group-commit batch.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(self.group.begin().await?)
    }

    /// How many write transactions are waiting for the writer (what a test holding
    /// the writer waits on to know a request reached it).
    pub fn writers_queued(&self) -> usize {
        self.group.queued()
    }

    /// Why the last batch failed to commit, while no later one has succeeded.
    pub fn write_failure(&self) -> Option<String> {
        self.group.last_failure()
    }

    /// Runs a whole write and commits it: on SQLite with a file by the direct writer
    /// (see [`direct`]), elsewhere in a transaction of the group commit. Either way it
    /// is durable when this returns `Ok`.
    pub async fn write<W: direct::Write>(&self, write: W) -> Result<W::Output, StoreError> {
        match &self.direct_writer {
            Some(writer) => {
                self.group
                    .direct(writer, move |db, right_edge| write.direct(db, right_edge))
                    .await
            }
            None => {
                let mut tx = self.begin().await?;
                let output = write.in_transaction(&mut tx).await;
                match output {
                    Ok(output) => {
                        tx.commit().await?;
                        Ok(output)
                    }
                    Err(error) => {
                        tx.rollback().await.ok();
                        Err(error)
                    }
                }
            }
        }
    }

    /// The pool for reads outside a transaction.
    pub fn reader(&self) -> &AnyPool {
        &self.reader
    }

    /// Runs a point read on the SQLite file on this thread (see [`direct`]); `None`
    /// when there is no file to read so (PostgreSQL, an in-memory database) or no
    /// connection is free, and the caller reads through [`Self::reader`].
    pub(crate) fn read_direct<T>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError>,
    ) -> Option<Result<T, StoreError>> {
        self.direct.as_ref()?.read(read)
    }

    /// Runs a read that may read many rows on the SQLite file, on a blocking thread
    /// (see [`direct::reads::DirectReads::read_apart`]); `Err(job)` when there is no
    /// file to read so or no connection is free, and the caller reads through
    /// [`Self::reader`]. Used through `direct::read_apart!`.
    pub(crate) async fn read_apart<J, T, E>(
        &self,
        job: J,
        read: fn(&J, &rusqlite::Connection) -> Result<T, E>,
    ) -> Result<Result<T, E>, J>
    where
        J: Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        match &self.direct {
            Some(reads) => reads.read_apart(job, read).await,
            None => Err(job),
        }
    }

    /// Checks that both pools reach the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.reader.execute("SELECT 1").await?;
        self.writer.execute("SELECT 1").await?;
        Ok(())
    }

    /// Closes the pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// SQLite connections: WAL so readers never block the writer, `synchronous=FULL` so
/// that an acknowledged write survives a power cut, and a busy timeout so a reader
/// briefly waiting on a checkpoint does not fail. Savepoints keep the pages they would
/// restore in memory (`temp_store`), not in a temporary file: each caller of a group
/// commit is a savepoint, and writing those pages out to a file took a quarter of the
/// writer's time appending a batch of uses' entries. A connection checkpoints the log
/// in its own commits only past `autocheckpoint_pages`: a thread of the store does it
/// beside them (see [`checkpoint`]).
///
/// No pool pings a connection before handing it out: on the hot paths that ping was
/// one more round trip per request. A connection that broke fails its statement, and
/// the pool closes it when it is returned (sqlx pings every returned connection).
fn sqlite_pool(size: u32, autocheckpoint_pages: i64) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = FULL").await?;
                conn.execute("PRAGMA busy_timeout = 5000").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute("PRAGMA temp_store = MEMORY").await?;
                let checkpoint = format!("PRAGMA wal_autocheckpoint = {autocheckpoint_pages}");
                conn.execute(checkpoint.as_str()).await?;
                Ok(())
            })
        })
}

/// A time as stored: Unix milliseconds.
pub fn to_millis(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The file of a `sqlite:` URL (`sqlite://PATH?…` or `sqlite:PATH`), or `None` for an
/// in-memory database.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    (!path.is_empty() && !path.contains(":memory:")).then(|| path.into())
}

/// A stored time back as a date-time.
pub fn from_millis(ms: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|_| StoreError::Corrupt(format!("time {ms} out of range")))
}

/// A query parameter of a statement built clause by clause.
pub enum Param {
    /// A text value.
    Text(String),
    /// An integer value.
    Int(i64),
    /// A byte string.
    Bytes(Vec<u8>),
    /// No text.
    NullText,
    /// No integer.
    NullInt,
    /// No byte string.
    NullBytes,
}

impl Param {
    /// A text that may be absent.
    pub fn text(value: Option<String>) -> Self {
        value.map_or(Self::NullText, Self::Text)
    }

    /// An integer that may be absent.
    pub fn int(value: Option<i64>) -> Self {
        value.map_or(Self::NullInt, Self::Int)
    }

    /// A byte string that may be absent.
    pub fn bytes(value: Option<Vec<u8>>) -> Self {
        value.map_or(Self::NullBytes, Self::Bytes)
    }
}

/// How a statement's parameters are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholders {
    /// `$1, $2`: what PostgreSQL needs.
    Numbered,
    /// `?, ?`: bound in order. SQLite finds a numbered parameter's number by scanning
    /// the statement's list of named parameters, for every parameter bound, so a
    /// statement of hundreds of them binds in quadratic time; anonymous ones are not
    /// in that list.
    Anonymous,
}

impl Placeholders {
    /// The style for the engine behind `conn`.
    pub fn of(conn: &Conn) -> Self {
        match conn.backend_name() {
            "SQLite" => Self::Anonymous,
            _ => Self::Numbered,
        }
    }
}

/// The `VALUES` list of a multi-row insert with nothing else to bind: `rows` groups
/// of `columns` placeholders (`($1, $2), ($3, $4)` or `(?, ?), (?, ?)`), for binding
/// row after row.
pub(crate) fn values_rows(style: Placeholders, rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 6);
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for column in 1..=columns {
            if column > 1 {
                out.push_str(", ");
            }
            match style {
                Placeholders::Numbered => {
                    out.push('$');
                    out.push_str(&(row * columns + column).to_string());
                }
                Placeholders::Anonymous => out.push('?'),
            }
        }
        out.push(')');
    }
    out
}

/// Adds a parameter and returns its placeholder (`$n`).
pub(crate) fn arg(params: &mut Vec<Param>, param: Param) -> String {
    params.push(param);
    format!("${}", params.len())
}

/// Pushes each of `values` as a text parameter and answers their placeholders joined
/// for an `IN (…)` list, numbered after those already in `params`.
pub(crate) fn text_list(params: &mut Vec<Param>, values: &[&str]) -> String {
    text_args(params, values.iter().copied())
}

/// Each value bound as a text parameter, their placeholders comma-separated.
fn text_args<'a>(params: &mut Vec<Param>, values: impl Iterator<Item = &'a str>) -> String {
    values
        .map(|value| arg(params, Param::Text(value.to_string())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `values`, then its last repeated up to the next power of two (at least 4): the
/// members of an `IN (…)` list on a hot path, where a repeated value matches nothing
/// more. A list of any length then takes one of a few statement shapes: each pooled
/// connection prepares each shape once, and PostgreSQL settles on a generic plan for
/// it after a few runs instead of planning every list afresh (1.3 ms for a release
/// batch's guarded update of 27 tokens, half its execution). `values` must not be
/// empty.
pub(crate) fn padded<T>(values: &[T]) -> impl Iterator<Item = &T> {
    let shape = values.len().next_power_of_two().max(4);
    values.iter().chain(std::iter::repeat_n(
        &values[values.len() - 1],
        shape - values.len(),
    ))
}

/// [`text_list`] over [`padded`] `values`.
pub(crate) fn padded_text_list(params: &mut Vec<Param>, values: &[&str]) -> String {
    text_args(params, padded(values).copied())
}

/// The statement with its parameters bound in order.
pub(crate) fn bind_all(
    sql: &str,
    params: Vec<Param>,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    let mut query = sqlx::query(sql);
    for param in params {
        query = match param {
            Param::Text(t) => query.bind(t),
            Param::Int(n) => query.bind(n),
            Param::Bytes(b) => query.bind(b),
            // PostgreSQL takes a NULL only of the column's type.
            Param::NullText => query.bind(None::<String>),
            Param::NullInt => query.bind(None::<i64>),
            Param::NullBytes => query.bind(None::<Vec<u8>>),
        };
    }
    query
}

#[cfg(test)]
mod tests {
    use super::{padded_text_list, values_rows, Param, Placeholders};

    #[test]
    fn a_hot_list_is_padded_with_its_last_value_to_a_power_of_two() {
        let texts = |params: &[Param]| -> Vec<String> {
            params
                .iter()
                .map(|p| match p {
                    Param::Text(t) => t.clone(),
                    _ => panic!("a list binds text"),
                })
                .collect()
        };
        let mut params = vec![Param::Int(7)];
        assert_eq!(
            padded_text_list(&mut params, &["a", "b", "c", "d", "e"]),
            "$2, $3, $4, $5, $6, $7, $8, $9"
        );
        assert_eq!(
            texts(&params[1..]),
            ["a", "b", "c", "d", "e", "e", "e", "e"]
        );
        let mut params = Vec::new();
        assert_eq!(padded_text_list(&mut params, &["a"]), "$1, $2, $3, $4");
        let mut params = Vec::new();
        assert_eq!(
            padded_text_list(&mut params, &["a", "b", "c", "d"]),
            "$1, $2, $3, $4"
        );
        assert_eq!(texts(&params), ["a", "b", "c", "d"]);
    }

    #[test]
    fn a_multi_row_values_list_numbers_placeholders_row_after_row() {
        let numbered = Placeholders::Numbered;
        assert_eq!(values_rows(numbered, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(values_rows(numbered, 1, 1), "($1)");
        assert_eq!(values_rows(Placeholders::Anonymous, 2, 2), "(?, ?), (?, ?)");
    }

    #[test]
    fn postgresql_options_are_printed_without_the_password() {
        use std::str::FromStr;
        let options =
            sqlx::postgres::PgConnectOptions::from_str("postgres://broker:s3cret@db.example/p")
                .unwrap();
        let printed = format!("{:?}", super::PostgresOptions(options));
        assert!(!printed.contains("s3cret"), "{printed}");
    }
}
