//! SQLite without sqlx's worker thread, for what a disruption does by the thousand.
//!
//! Through sqlx, every SQLite statement is sent to the connection's worker thread and
//! its rows sent back: two thread switches, and under load the wait for the worker to
//! be scheduled, for statements SQLite itself runs in microseconds. Profiled during a
//! disruption, those hand-offs were most of what a release cost, and the writer spent
//! more time handing statements over than running them. So, on SQLite with a file:
//!
//! - the hottest point reads run on the calling thread ([`reads`]);
//! - the hottest writes ([`Write`]) run whole on one connection of the file, on a
//!   blocking thread they are handed to once ([`writer`]): every statement of the
//!   write runs there, one after the other; the writes that queued meanwhile run in the
//!   same transaction, each in a savepoint of its own, and one commit makes them all
//!   durable (see `super::group`).
//!
//! rusqlite links the same `libsqlite3-sys` as sqlx, so both drive one SQLite. The
//! direct writer and sqlx's writer never write at once: the direct writer writes only
//! while holding the group commit's lock, after committing any batch sqlx had open
//! (see `super::group`). On PostgreSQL, and for an in-memory database, there is none
//! of this: the same writes run in a group-commit transaction of the pool.

pub(crate) mod reads;
pub(crate) mod writer;

use super::db::Direct;
use super::{StoreError, Tx};
use crate::audit::merkle::Frontier;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;

/// A write that runs whole: on SQLite by the direct writer, elsewhere in a group-commit
/// transaction. Both ways usually call one function over [`super::db::Db`].
pub trait Write: Send + 'static {
    /// What the write answers.
    type Output: Send + 'static;

    /// Runs in the caller's group-commit transaction, which the store then commits.
    fn in_transaction(self, tx: &mut Tx) -> BoxFuture<'_, Result<Self::Output, StoreError>>;

    /// Runs inside the direct writer's transaction, with the audit tree's right edge as
    /// the writer keeps it (see `super::audit::append_many`).
    fn direct(
        self,
        db: &mut Direct<'_>,
        right_edge: &mut Option<Frontier>,
    ) -> Result<Self::Output, StoreError>;
}

/// Implements [`Write`] for a write whose body runs the same over any [`Db`](crate::store::db::Db):
/// `$method(self, db, right_edge)`, awaited in a group-commit transaction and driven
/// at once by the direct writer. One adapter for every whole write.
macro_rules! write_over_db {
    ($write:ty, $output:ty, $method:ident) => {
        impl $crate::store::direct::Write for $write {
            type Output = $output;

            fn in_transaction(
                self,
                tx: &mut $crate::store::Tx,
            ) -> futures_util::future::BoxFuture<'_, Result<Self::Output, $crate::store::StoreError>>
            {
                Box::pin(async move {
                    let (connection, right_edge) = tx.connection_and_right_edge();
                    self.$method(connection, right_edge).await
                })
            }

            fn direct(
                self,
                db: &mut $crate::store::db::Direct<'_>,
                right_edge: &mut Option<$crate::audit::merkle::Frontier>,
            ) -> Result<Self::Output, $crate::store::StoreError> {
                $crate::store::direct::run_now(self.$method(db, right_edge))
            }
        }
    };
}

pub(crate) use write_over_db;

/// Drives a write or a read over [`Direct`] to its end: its statements never wait, so
/// its future is ready at the first poll.
pub fn run_now<T, E: From<StoreError>>(
    write: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    write.now_or_never().unwrap_or_else(|| {
        Err(
            StoreError::File("a direct statement waited on something other than SQLite".into())
                .into(),
        )
    })
}

/// Runs a read over [`super::db::Db`] as the readers see it: on the SQLite file on
/// this thread when it can (see [`reads`]), else on a connection of the pool.
/// `read_now!(store, |db| store::release::on_flight(db, flight))` is the read's
/// result either way; the caller's error type takes a `StoreError`.
macro_rules! read_now {
    ($store:expr, |$db:ident| $read:expr) => {{
        let store: &$crate::store::Store = $store;
        let direct = store.read_direct(|connection| {
            let $db = &mut $crate::store::db::Direct(connection);
            $crate::store::direct::run_now($read)
        });
        match direct {
            Some(read) => read,
            None => {
                let mut pooled = store
                    .reader()
                    .acquire()
                    .await
                    .map_err($crate::store::StoreError::from)?;
                let $db = &mut *pooled;
                $read.await
            }
        }
    }};
}

pub(crate) use read_now;

/// Runs a read that may read many rows (a search, a page of receipts, a traveller's
/// uses) as the readers see it: whole on a blocking thread with a connection of the
/// SQLite file when it can (see [`reads`]), else on a connection of the pool.
/// `read_apart!(store, search, |search, db| search.run(db))`: `search` is moved to
/// the thread and lent back to the read as `&search`; the read's error type takes a
/// `StoreError`.
macro_rules! read_apart {
    ($store:expr, $job:expr, |$j:ident, $db:ident| $read:expr) => {{
        let store: &$crate::store::Store = $store;
        let apart = store
            .read_apart($job, |$j, connection| {
                let $db = &mut $crate::store::db::Direct(connection);
                $crate::store::direct::run_now($read)
            })
            .await;
        match apart {
            Ok(read) => read,
            Err(job) => {
                let mut pooled = store
                    .reader()
                    .acquire()
                    .await
                    .map_err($crate::store::StoreError::from)?;
                let $j = &job;
                let $db = &mut *pooled;
                $read.await
            }
        }
    }};
}

pub(crate) use read_apart;
