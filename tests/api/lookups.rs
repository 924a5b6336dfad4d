//! How an upload looks up, on PostgreSQL, what its agency already stored: the records
//! it would duplicate (by statement hash) and the latest version of each record id it
//! names. Each value probes the key of both columns, so a chunk of an upload reads
//! about as many rows as it asks about, however many records the agency stored and
//! whatever the planner knew of the table (a table loaded in bulk has no statistics
//! until autovacuum reaches it: without them PostgreSQL once read every record of the
//! agency at every chunk of every upload, and ingest grew quadratic).
//!
//! These are about the statements' plans, which no HTTP answer shows: they ask
//! PostgreSQL how it runs the very statements the broker sends.

use crate::helpers;
use passerelle::store::consents::{duplicates_sql, versions_sql};
use serde_json::Value;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor, Row};

/// Records the agency has stored.
const STORED: i64 = 20_000;

/// Values one look-up asks about: half of them stored, half new.
const ASKED: i64 = 256;

/// The agency whose records are looked up.
const AGENCY: &str = "agy_lookups";

#[tokio::test]
async fn an_uploads_look_up_of_duplicates_reads_only_the_hashes_it_asks_about() {
    let Some(mut conn) = helpers::migrated_postgres_schema().await else {
        return;
    };
    store_records(&mut conn, STORED).await;
    let hashes: Vec<Vec<u8>> = asked().map(|i| statement_hash(i).to_vec()).collect();
    assert_look_up_reads_what_it_asks(&mut conn, &duplicates_sql(hashes.len()), hashes).await;
}

#[tokio::test]
async fn an_uploads_look_up_of_versions_reads_only_the_record_ids_it_asks_about() {
    let Some(mut conn) = helpers::migrated_postgres_schema().await else {
        return;
    };
    store_records(&mut conn, STORED).await;
    let ids: Vec<String> = asked().map(record_id).collect();
    assert_look_up_reads_what_it_asks(&mut conn, &versions_sql(ids.len()), ids).await;
}

/// Runs the look-up `sql` of [`AGENCY`]'s `values` under `EXPLAIN ANALYZE`, first on the
/// table as loaded and then after `ANALYZE`, and holds each time that it reads about
/// what it asks (see [`assert_reads_about_what_it_asks`]) and answers a row per value.
async fn assert_look_up_reads_what_it_asks<T>(conn: &mut PgConnection, sql: &str, values: Vec<T>)
where
    T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Clone + Send,
{
    let sql = explained(sql);
    for statistics in [Statistics::NotGathered, Statistics::Gathered] {
        statistics.apply(conn).await;
        let mut query = sqlx::query(&sql).bind(AGENCY);
        for value in &values {
            query = query.bind(value.clone());
        }
        let plan = plan_of(query.fetch_one(&mut *conn).await.unwrap());
        assert_reads_about_what_it_asks(&plan, statistics);
        assert_eq!(plan["Plan"]["Actual Rows"].as_f64(), Some(ASKED as f64));
    }
}

/// What the planner knows of the table when the look-up is planned.
#[derive(Debug, Clone, Copy)]
enum Statistics {
    /// Nothing: the table was just loaded and never analysed.
    NotGathered,
    /// What `ANALYZE` gathered.
    Gathered,
}

impl Statistics {
    async fn apply(self, conn: &mut PgConnection) {
        if let Statistics::Gathered = self {
            conn.execute("ANALYZE consents").await.unwrap();
        }
    }
}

/// The values asked: every other one is stored, the rest are not (the stored records
/// are numbered from 0 to `STORED - 1`).
fn asked() -> impl Iterator<Item = i64> {
    (0..ASKED).map(|i| if i % 2 == 0 { i * 7 } else { STORED + i })
}

/// The statement hash of record `i`: its number, big-endian, in 32 bytes.
fn statement_hash(i: i64) -> [u8; 32] {
    let mut hash = [0u8; 32];
    hash[24..].copy_from_slice(&i.to_be_bytes());
    hash
}

/// The agency's id for record `i`.
fn record_id(i: i64) -> String {
    format!("rec-{i}")
}

/// `sql` run under `EXPLAIN (ANALYZE, FORMAT JSON)`.
fn explained(sql: &str) -> String {
    format!("EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
}

/// The plan in the row `EXPLAIN (FORMAT JSON)` answered.
fn plan_of(row: sqlx::postgres::PgRow) -> Value {
    let plans: sqlx::types::Json<Value> = row.try_get(0).unwrap();
    plans.0[0].clone()
}

/// Holds that no node of the plan reads more than twice the rows asked about, counting
/// the rows its filters removed, over all its loops: the look-up probes the key, it
/// does not read the agency's records.
fn assert_reads_about_what_it_asks(plan: &Value, statistics: Statistics) {
    helpers::visit_plan(plan, &mut |node| {
        let read = helpers::rows_read(node);
        assert!(
            read <= 2.0 * ASKED as f64,
            "a look-up of {ASKED} values read {read} rows in a {} with statistics {statistics:?}: {plan:#}",
            node["Node Type"]
        );
        assert_ne!(
            node["Node Type"].as_str(),
            Some("Seq Scan"),
            "with statistics {statistics:?}: {plan:#}"
        );
    });
}

/// Stores `n` given consent records of [`AGENCY`], numbered from 0, straight into the
/// table: the tests are about how the look-ups read it, so the rows name no real
/// traveller or agency (the references are not checked while they are written).
async fn store_records(conn: &mut PgConnection, n: i64) {
    let mut tx = conn.begin().await.unwrap();
    tx.execute("SET LOCAL session_replication_role = replica")
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO consents (id, traveller_id, agency_id, purposes, carriers, collected_at, \
         notice_version, collection_method, key_id, created_at, agency_record_id, version, \
         statement_sha256, schema_version, decision, recipients, data_categories, jurisdiction, \
         notice_language, notice_sha256, purge_after) \
         SELECT 'cns_' || i, 'trv_' || i, $1, 'operational_notification', 'AF', 0, \
         'v1', 'web_form', 'key', 0, 'rec-' || i, 1, \
         decode(lpad(to_hex(i), 64, '0'), 'hex'), '1', 'given', 'itinerary', 'contact', 'FR', \
         'fr', '', 0 \
         FROM generate_series(0, $2 - 1) AS i",
    )
    .bind(AGENCY)
    .bind(n)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}
