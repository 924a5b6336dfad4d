//! A row as the mappings read it, whichever driver read it: sqlx's `Any` row (the
//! pools, both engines) or a rusqlite row (SQLite read on the calling thread, see
//! [`super::direct`]). One mapping per stored type then serves both, so a column added
//! to a table is read the same way on every path.

use sqlx::any::AnyRow;

/// A value one column holds: what both drivers decode.
pub trait Column:
    Sized + for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any> + rusqlite::types::FromSql
{
}

impl<T> Column for T where
    T: Sized
        + for<'r> sqlx::Decode<'r, sqlx::Any>
        + sqlx::Type<sqlx::Any>
        + rusqlite::types::FromSql
{
}

/// Columns read by name.
///
/// A column missing or of another type is a bug in the statement beside the mapping,
/// not bad data, and panics as sqlx's own `Row::get` does.
pub trait Columns {
    /// The column's value.
    fn value<T: Column>(&self, column: &str) -> T;

    /// A boolean column: SQLite answers integers, PostgreSQL booleans.
    fn flag(&self, column: &str) -> bool;
}

impl Columns for AnyRow {
    fn value<T: Column>(&self, column: &str) -> T {
        sqlx::Row::get(self, column)
    }

    fn flag(&self, column: &str) -> bool {
        sqlx::Row::try_get::<bool, _>(self, column)
            .or_else(|_| sqlx::Row::try_get::<i64, _>(self, column).map(|n| n != 0))
            .unwrap_or(false)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn value<T: Column>(&self, column: &str) -> T {
        match self.get(column) {
            Ok(value) => value,
            Err(error) => panic!("column {column}: {error}"),
        }
    }

    fn flag(&self, column: &str) -> bool {
        self.get::<_, Option<i64>>(column)
            .ok()
            .flatten()
            .is_some_and(|n| n != 0)
    }
}
