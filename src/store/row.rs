//! A row as the mappings read it, whichever driver read it: sqlx's `Any` row (the
//! pools, both engines) or a rusqlite row with its statement's column names
//! ([`DirectRow`]: SQLite read on the calling thread, see [`super::direct`]). One
//! mapping per stored type then serves both, so a column added to a table is read the
//! same way on every path.

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

/// A row of the direct connection (see [`super::db::Direct`]) with its statement's
/// column names, read once for all its rows.
///
/// rusqlite finds a column by name by asking SQLite for each column's name in turn
/// (a call across the C boundary and a `strlen` each) until one matches. A use's row
/// has some forty columns, each read by name: about eight hundred such calls for one
/// row, paid on every release. Here a name is found in the list read once, by
/// comparing lengths first.
pub struct DirectRow<'r> {
    row: &'r rusqlite::Row<'r>,
    names: &'r [String],
}

impl<'r> DirectRow<'r> {
    /// `row`, whose statement's columns are `names`, in order.
    pub(crate) fn new(row: &'r rusqlite::Row<'r>, names: &'r [String]) -> Self {
        Self { row, names }
    }

    /// The column's position: the first of that name, ignoring ASCII case as SQLite and
    /// rusqlite do.
    fn index(&self, column: &str) -> Option<usize> {
        self.names
            .iter()
            .position(|name| name.len() == column.len() && name.eq_ignore_ascii_case(column))
    }

    fn get<T: rusqlite::types::FromSql>(&self, column: &str) -> rusqlite::Result<T> {
        match self.index(column) {
            Some(index) => self.row.get(index),
            None => Err(rusqlite::Error::InvalidColumnName(column.to_string())),
        }
    }
}

impl Columns for DirectRow<'_> {
    fn value<T: Column>(&self, column: &str) -> T {
        match self.get(column) {
            Ok(value) => value,
            Err(error) => panic!("column {column}: {error}"),
        }
    }

    fn flag(&self, column: &str) -> bool {
        self.get::<Option<i64>>(column)
            .ok()
            .flatten()
            .is_some_and(|n| n != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::{Db, Direct};
    use crate::store::direct::run_now;

    /// Reads the one row of `sql` on an in-memory connection through the direct
    /// connection's rows, as the store's mappings do.
    fn read_row<T>(sql: &str, read: impl Fn(&DirectRow<'_>) -> T) -> T {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        let mut db = Direct(&connection);
        run_now(db.optional(sql, Vec::new(), |row| Ok(read(row))))
            .unwrap()
            .expect("one row")
    }

    #[test]
    fn a_column_is_found_by_its_name_whatever_its_case_and_the_first_of_a_name_wins() {
        let (first, upper, text) =
            read_row("SELECT 1 AS a, 2 AS Total, 'x' AS name, 3 AS a", |row| {
                (
                    row.value::<i64>("a"),
                    row.value::<i64>("total"),
                    row.value::<String>("NAME"),
                )
            });
        assert_eq!((first, upper, text.as_str()), (1, 2, "x"));
    }

    #[test]
    fn a_flag_is_set_by_a_non_zero_integer_and_unset_by_zero_null_or_no_such_column() {
        let flags = read_row("SELECT 1 AS yes, 0 AS no, NULL AS unknown", |row| {
            [
                row.flag("yes"),
                row.flag("no"),
                row.flag("unknown"),
                row.flag("missing"),
            ]
        });
        assert_eq!(flags, [true, false, false, false]);
    }

    #[test]
    #[should_panic(expected = "column missing")]
    fn a_column_the_statement_does_not_answer_is_a_bug_and_panics() {
        read_row("SELECT 1 AS present", |row| row.value::<i64>("missing"));
    }

    #[test]
    fn every_row_of_an_answer_is_read_with_the_same_names() {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        let mut db = Direct(&connection);
        let mut seen = Vec::new();
        run_now(db.for_each(
            "SELECT value AS n, value * 10 AS tens FROM (SELECT 1 AS value UNION ALL SELECT 2 UNION ALL SELECT 3)",
            Vec::new(),
            |row| {
                seen.push((row.value::<i64>("n"), row.value::<i64>("tens")));
                Ok(())
            },
        ))
        .unwrap();
        assert_eq!(seen, [(1, 10), (2, 20), (3, 30)]);
    }
}
