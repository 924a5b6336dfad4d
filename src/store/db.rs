//! One statement API over both drivers, for the writes a disruption makes by the
//! thousand (taking token uses, appending their entries, queueing their messages and
//! pushes, storing a flight's tokens).
//!
//! Those writes are written once, as functions over [`Db`], and run either on a
//! connection of the pools (sqlx: PostgreSQL, or SQLite where no file is open
//! directly) or, on SQLite, by the direct writer (see [`super::direct`]): there every
//! statement runs where it is asked, on the thread the whole write was handed to,
//! instead of each statement going to sqlx's worker thread and back. The statements
//! and the mappings of their rows ([`Columns`]) are the same text and code for both.

use super::row::{Columns, DirectRow};
use super::{Conn, Param, Placeholders, StoreError};
use sqlx::any::AnyRow;

/// A connection statements can run on, inside the caller's transaction.
///
/// The direct connection's futures never wait: each statement has run when its future
/// is first polled, so a write over it is driven to its end in one poll.
#[allow(async_fn_in_trait)]
pub trait Db {
    /// A row of an answer.
    type Row<'r>: Columns;

    /// How this engine writes parameters (`$1` or `?`).
    fn placeholders(&self) -> Placeholders;

    /// Runs a statement; returns the rows it changed.
    async fn execute(&mut self, sql: &str, params: Vec<Param>) -> Result<u64, StoreError>;

    /// Runs a statement and hands each row of its answer to `each`, in order.
    async fn for_each<F>(
        &mut self,
        sql: &str,
        params: Vec<Param>,
        each: F,
    ) -> Result<(), StoreError>
    where
        F: for<'r> FnMut(&Self::Row<'r>) -> Result<(), StoreError>;

    /// Runs a statement of at most one row and reads it with `read`; `None` when it
    /// answers none.
    async fn optional<T, F>(
        &mut self,
        sql: &str,
        params: Vec<Param>,
        mut read: F,
    ) -> Result<Option<T>, StoreError>
    where
        F: for<'r> FnMut(&Self::Row<'r>) -> Result<T, StoreError>,
    {
        let mut found = None;
        self.for_each(sql, params, |row| {
            found = Some(read(row)?);
            Ok(())
        })
        .await?;
        Ok(found)
    }

    /// Runs a statement and reads every row of its answer with `read`, in order.
    async fn all<T, F>(
        &mut self,
        sql: &str,
        params: Vec<Param>,
        mut read: F,
    ) -> Result<Vec<T>, StoreError>
    where
        F: for<'r> FnMut(&Self::Row<'r>) -> Result<T, StoreError>,
    {
        let mut found = Vec::new();
        self.for_each(sql, params, |row| {
            found.push(read(row)?);
            Ok(())
        })
        .await?;
        Ok(found)
    }
}

impl Db for Conn {
    type Row<'r> = AnyRow;

    fn placeholders(&self) -> Placeholders {
        Placeholders::of(self)
    }

    async fn execute(&mut self, sql: &str, params: Vec<Param>) -> Result<u64, StoreError> {
        Ok(super::bind_all(sql, params)
            .execute(&mut *self)
            .await?
            .rows_affected())
    }

    async fn for_each<F>(
        &mut self,
        sql: &str,
        params: Vec<Param>,
        mut each: F,
    ) -> Result<(), StoreError>
    where
        F: for<'r> FnMut(&AnyRow) -> Result<(), StoreError>,
    {
        for row in super::bind_all(sql, params).fetch_all(&mut *self).await? {
            each(&row)?;
        }
        Ok(())
    }
}

/// A SQLite connection used on the calling thread (the direct writer's, inside its
/// transaction): a write over it runs to its end on the one thread it was handed to.
pub struct Direct<'c>(pub(crate) &'c rusqlite::Connection);

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Param::Text(text) => ValueRef::Text(text.as_bytes()),
            Param::Int(n) => ValueRef::Integer(*n),
            Param::Bytes(bytes) => ValueRef::Blob(bytes),
            Param::NullText | Param::NullInt | Param::NullBytes => ValueRef::Null,
        }))
    }
}

impl Db for Direct<'_> {
    type Row<'r> = DirectRow<'r>;

    fn placeholders(&self) -> Placeholders {
        Placeholders::Anonymous
    }

    async fn execute(&mut self, sql: &str, params: Vec<Param>) -> Result<u64, StoreError> {
        let mut statement = self.0.prepare_cached(sql)?;
        Ok(statement.execute(rusqlite::params_from_iter(params.iter()))? as u64)
    }

    async fn for_each<F>(
        &mut self,
        sql: &str,
        params: Vec<Param>,
        mut each: F,
    ) -> Result<(), StoreError>
    where
        F: for<'r> FnMut(&DirectRow<'r>) -> Result<(), StoreError>,
    {
        let mut statement = self.0.prepare_cached(sql)?;
        let mut rows = statement.query(rusqlite::params_from_iter(params.iter()))?;
        // The column names, read at the first row (a statement answering none never
        // needs them) and kept for the others.
        let mut names: Option<Vec<String>> = None;
        while let Some(row) = rows.next()? {
            let names = names.get_or_insert_with(|| {
                let statement: &rusqlite::Statement<'_> = row.as_ref();
                statement
                    .column_names()
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            });
            each(&DirectRow::new(row, names))?;
        }
        Ok(())
    }
}

/// The pool's connections and a write transaction run statements on the connection
/// they hold.
macro_rules! holds_a_connection {
    ($($holder:ty),*) => {$(
        impl Db for $holder {
            type Row<'r> = AnyRow;

            fn placeholders(&self) -> Placeholders {
                Placeholders::of(self)
            }

            async fn execute(&mut self, sql: &str, params: Vec<Param>) -> Result<u64, StoreError> {
                Db::execute(&mut **self, sql, params).await
            }

            async fn for_each<F>(
                &mut self,
                sql: &str,
                params: Vec<Param>,
                each: F,
            ) -> Result<(), StoreError>
            where
                F: for<'r> FnMut(&AnyRow) -> Result<(), StoreError>,
            {
                Db::for_each(&mut **self, sql, params, each).await
            }
        }
    )*};
}

holds_a_connection!(super::Tx, sqlx::pool::PoolConnection<sqlx::Any>);
