//! How an officer's search of the audit trail reads the log: a page of entries by
//! action, in log order, reads about a page, however many entries match. With only an
//! index on (action, outcome, idx), both engines could not read the matches of every
//! outcome in log order: SQLite read and sorted all of them before answering the first
//! page, so each search cost more as the log grew (the load test's went from 27 to
//! 211 ms p50 in five minutes).
//!
//! These are about the statements' plans, which no HTTP answer shows: they ask each
//! engine how it runs the very statement the broker sends.

use crate::helpers;
use passerelle::store::audit::{list_sql, EntryFilter};
use passerelle::store::Param;
use serde_json::Value;
use sqlx::{Connection, Executor, Row};

/// Entries in the log.
const STORED: i64 = 20_000;

/// The page asked for.
const PAGE: i64 = 51;

/// The actions and outcomes the stored entries cycle through.
const ACTIONS: [&str; 4] = [
    "token_request",
    "token_redemption",
    "message_relay",
    "consent_upload",
];
const OUTCOMES: [&str; 3] = ["granted", "released", "refused"];

/// The action of one entry in [`RARELY`], instead of the cycle's.
const RARE: &str = "settings_change";
const RARELY: i64 = 200;

/// The searches whose pages are read in order: by one action, by an action and an
/// outcome, by one action after a cursor.
fn searches() -> Vec<(&'static str, EntryFilter, Option<i64>)> {
    let by_action = EntryFilter {
        actions: vec!["token_redemption"],
        ..EntryFilter::default()
    };
    let by_action_and_outcome = EntryFilter {
        actions: vec!["token_redemption"],
        outcomes: vec!["refused"],
        ..EntryFilter::default()
    };
    let by_rare_action = EntryFilter {
        actions: vec![RARE],
        ..EntryFilter::default()
    };
    vec![
        ("by action", by_action.clone(), None),
        ("by a rare action", by_rare_action, None),
        ("by action and outcome", by_action_and_outcome, None),
        ("by action, after a cursor", by_action, Some(STORED / 2)),
    ]
}

#[tokio::test]
async fn on_sqlite_a_search_by_action_reads_its_page_in_log_order_without_sorting_the_matches() {
    let database = helpers::migrated_database(helpers::Engine::Sqlite)
        .await
        .expect("SQLite needs no server");
    let mut conn = sqlx::sqlite::SqliteConnection::connect(&database.url)
        .await
        .unwrap();
    store_entries(&mut conn, "x''").await;
    for statistics in ["as loaded", "after ANALYZE"] {
        if statistics == "after ANALYZE" {
            conn.execute("ANALYZE").await.unwrap();
        }
        for (what, filter, after) in searches() {
            let (sql, params) = list_sql(&filter, after, PAGE);
            let explained = format!("EXPLAIN QUERY PLAN {sql}");
            let steps: Vec<String> = bound::<sqlx::Sqlite>(&explained, params)
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<String, _>("detail"))
                .collect();
            assert!(
                steps.iter().all(|s| !s.contains("TEMP B-TREE")),
                "a search {what} ({statistics}) sorts its matches: {steps:?}"
            );
        }
    }
}

/// On PostgreSQL, once the table has statistics: the log grows an entry at a time, and
/// autovacuum's analyze (on by default) follows it. Without any (as this machine's
/// server runs, autovacuum off), PostgreSQL guesses a few dozen matches and sorts all
/// of them; that is left to the operator's autovacuum, not forced with planner
/// settings, which would also force an ordered read where a sort is the cheap plan (a
/// search by time over a long log).
#[tokio::test]
async fn on_postgresql_a_search_by_action_reads_about_its_page_once_the_log_is_analysed() {
    let Some(mut conn) = helpers::migrated_postgres_schema().await else {
        return;
    };
    store_entries(&mut conn, "''::bytea").await;
    conn.execute("ANALYZE audit_entries").await.unwrap();
    for (what, filter, after) in searches() {
        let (sql, params) = list_sql(&filter, after, PAGE);
        let explained = format!("EXPLAIN (ANALYZE, FORMAT JSON) {sql}");
        let row = bound::<sqlx::Postgres>(&explained, params)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let plans: sqlx::types::Json<Value> = row.try_get(0).unwrap();
        let plan = &plans.0[0];
        assert_eq!(plan["Plan"]["Actual Rows"].as_f64(), Some(PAGE as f64));
        helpers::visit_plan(plan, &mut |node| {
            let read = helpers::rows_read(node);
            // One entry in four is a redemption, one in twelve a refused one: a
            // page read in log order passes over the others. One in 200 is the rare
            // action: only its own index reads a page of it without passing over
            // thousands or sorting.
            assert!(
                read <= (PAGE * 16) as f64,
                "a search {what} read {read} rows in a {}: {plan:#}",
                node["Node Type"]
            );
            assert_ne!(node["Node Type"].as_str(), Some("Sort"), "{plan:#}");
        });
    }
}

/// Stores [`STORED`] entries, cycling through [`ACTIONS`] and [`OUTCOMES`], straight
/// into the table (what the search reads; their hashes are not what is tested), with
/// `no_bytes` (the engine's literal for an empty byte string) as each leaf hash.
async fn store_entries<C>(conn: &mut C, no_bytes: &str)
where
    for<'c> &'c mut C: Executor<'c>,
{
    let mut i = 0;
    while i < STORED {
        let rows: Vec<String> = (i..(i + 500).min(STORED))
            .map(|n| {
                format!(
                    "({n}, {n}, 'req-{n}', 'airline', 'air_1', '{}', '{}', {no_bytes}, 'agy_1')",
                    if n % RARELY == 0 {
                        RARE
                    } else {
                        ACTIONS[(n % 4) as usize]
                    },
                    OUTCOMES[(n % 3) as usize]
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO audit_entries (idx, at, request_id, actor_kind, actor_id, action, \
             outcome, leaf_hash, agency_id) VALUES {}",
            rows.join(", ")
        );
        conn.execute(sql.as_str()).await.unwrap();
        i += 500;
    }
}

/// `sql` with the search's `params` bound, for engine `DB`.
fn bound<'q, DB: sqlx::Database>(
    sql: &'q str,
    params: Vec<Param>,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    params
        .into_iter()
        .fold(sqlx::query(sql), |query, param| match param {
            Param::Text(t) => query.bind(t),
            Param::Int(n) => query.bind(n),
            _ => panic!("a search binds only texts and integers"),
        })
}
