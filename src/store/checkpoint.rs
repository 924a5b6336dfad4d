//! WAL checkpoints beside the writer, not inside its commits.
//!
//! SQLite copies the write-ahead log back into the database file (a checkpoint) when
//! the log passes a size, and by default it does so inside the commit that passed it:
//! that commit, and every caller of its group commit, then waits for pages to be
//! copied and the database file synced. Measured during a disruption, those commits
//! took up to 40 ms where the others took about 1 ms, and every use queued behind
//! them waited as long. Here a thread of its own runs passive checkpoints, which never
//! wait for the writer nor make it wait: the writer keeps appending to the log while
//! committed frames are copied, and the log starts over from its beginning once all of
//! it is copied and no reader still needs it.
//!
//! The writer's own automatic checkpoint stays as a backstop, at
//! [`WRITER_BACKSTOP_PAGES`]: should this thread fall behind or stop, the log is still
//! bounded.

use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The log size (pages) past which the writer checkpoints in its commit, should this
/// thread fall behind: ten times SQLite's default.
pub(crate) const WRITER_BACKSTOP_PAGES: i64 = 10_000;

/// How often committed frames are copied: at a disruption's pace, a few thousand
/// pages a time.
const EVERY: Duration = Duration::from_millis(200);

/// Keeps the checkpoint thread running while it is held (by the [`super::Store`] and
/// its clones); the thread ends at the next look after the last one is dropped.
#[derive(Debug)]
pub(crate) struct Running(#[allow(dead_code)] Arc<()>);

/// Starts the checkpoint thread of the SQLite file at `path`.
pub(crate) fn start(path: PathBuf) -> Running {
    let running = Arc::new(());
    let alive = Arc::downgrade(&running);
    let started = std::thread::Builder::new()
        .name("wal-checkpoint".into())
        .spawn(move || run(&path, &alive));
    if let Err(error) = started {
        tracing::warn!(%error, "the checkpoint thread did not start; the writer checkpoints");
    }
    Running(running)
}

fn run(path: &PathBuf, alive: &Weak<()>) {
    let mut connection: Option<Connection> = None;
    while alive.strong_count() > 0 {
        std::thread::sleep(EVERY);
        if connection.is_none() {
            connection = open(path)
                .map_err(|error| tracing::warn!(%error, "the checkpoint connection did not open"))
                .ok();
        }
        let Some(conn) = &connection else { continue };
        if let Err(error) = checkpoint_if_due(conn) {
            tracing::warn!(%error, "a WAL checkpoint failed; it is tried again");
            connection = None;
        }
    }
}

fn open(path: &PathBuf) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_millis(100))?;
    Ok(conn)
}

/// Copies what the log holds that the database file does not yet. When nothing new
/// was committed since the last look, SQLite copies and syncs nothing.
fn checkpoint_if_due(conn: &Connection) -> rusqlite::Result<()> {
    // (busy, frames in the log, frames copied).
    let (_busy, frames, copied): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
    if frames - copied > WRITER_BACKSTOP_PAGES / 2 {
        tracing::debug!(frames, copied, "the WAL checkpoint is behind");
    }
    Ok(())
}
