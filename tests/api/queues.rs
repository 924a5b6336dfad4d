//! How the delivery workers read their queues on PostgreSQL: a claim reads as many rows
//! as it leases, however long the queue has grown and whatever the planner knew of the
//! table when it first planned the statement (during a storm the messages' queue
//! grows from nothing to tens of thousands within minutes, and a connection keeps the
//! plan it made at the start).
//!
//! These are about the statement's plan, which no HTTP answer shows: they ask
//! PostgreSQL how it runs the very statement and planner settings the broker uses.

use crate::helpers;
use passerelle::store::outbox::{claim_sql, Queue, POSTGRES_CLAIM_PLANNING};
use passerelle::store::Engine;
use serde_json::Value;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor, Row};

/// Rows a worker claims at a time.
const ROUND: i64 = 32;

/// Messages queued in the long queue.
const QUEUED: i64 = 20_000;

#[tokio::test]
async fn a_claim_planned_on_an_empty_queue_reads_it_by_its_indexes() {
    let Some(mut conn) = helpers::migrated_postgres_schema().await else {
        return;
    };
    for queue in [Queue::Messages, Queue::Webhooks, Queue::Verifications] {
        prepare(&mut conn, queue).await;
        let plan = explain(&mut conn, queue, Planned::Generic, false).await;
        assert_reads_by_index(queue, &plan);
    }
}

#[tokio::test]
async fn a_claim_on_a_queue_of_twenty_thousand_reads_only_the_rows_it_leases() {
    let Some(mut conn) = helpers::migrated_postgres_schema().await else {
        return;
    };
    // Prepared, and planned for any parameters, on the empty queue: as a broker's
    // connection keeps the statement from a quiet start.
    prepare(&mut conn, Queue::Messages).await;
    let quiet = explain(&mut conn, Queue::Messages, Planned::Generic, false).await;
    assert_reads_by_index(Queue::Messages, &quiet);
    queue_messages(&mut conn, QUEUED).await;
    // That plan, kept, and one made for the queue as it is now.
    for planned in [Planned::Generic, Planned::Custom] {
        let plan = explain(&mut conn, Queue::Messages, planned, true).await;
        assert_reads_by_index(Queue::Messages, &plan);
        let mut most = 0.0f64;
        helpers::visit_plan(&plan, &mut |node| {
            let rows = node["Actual Rows"].as_f64().unwrap_or(0.0)
                * node["Actual Loops"].as_f64().unwrap_or(1.0);
            most = most.max(rows);
        });
        assert!(
            most <= 2.0 * ROUND as f64,
            "a claim of {ROUND} read {most} rows of a node ({planned:?}): {plan:#}"
        );
        assert_eq!(plan["Plan"]["Actual Rows"].as_f64(), Some(ROUND as f64));
    }
}

/// How the plan explained was made.
#[derive(Debug, Clone, Copy)]
enum Planned {
    /// Once for any parameters, as a connection keeps it after a few executions.
    Generic,
    /// For these parameters, on the table as it is now.
    Custom,
}

/// Prepares the broker's claim of `queue` on this connection, as the broker's
/// connections do, under the name [`statement`] gives it.
async fn prepare(conn: &mut PgConnection, queue: Queue) {
    let sql = claim_sql(Engine::Postgres, queue, "id");
    conn.execute(
        format!(
            "PREPARE {} (BIGINT, BIGINT, BIGINT) AS {sql}",
            statement(queue)
        )
        .as_str(),
    )
    .await
    .unwrap();
}

/// The name the claim of `queue` is prepared under.
fn statement(queue: Queue) -> String {
    format!("claim_{}", queue.table())
}

/// PostgreSQL's plan (`EXPLAIN (FORMAT JSON)`, with `ANALYZE` when `analyze`) of the
/// claim of `queue` prepared on this connection, under the broker's planner settings;
/// what it changed rolled back.
async fn explain(conn: &mut PgConnection, queue: Queue, planned: Planned, analyze: bool) -> Value {
    let mut tx = conn.begin().await.unwrap();
    tx.execute(POSTGRES_CLAIM_PLANNING).await.unwrap();
    let mode = match planned {
        Planned::Generic => "force_generic_plan",
        Planned::Custom => "force_custom_plan",
    };
    tx.execute(format!("SET LOCAL plan_cache_mode = {mode}").as_str())
        .await
        .unwrap();
    let options = if analyze {
        "ANALYZE, FORMAT JSON"
    } else {
        "FORMAT JSON"
    };
    // Due now (the rows queued are due an hour ago), leased for two minutes.
    let now = "CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT)";
    let row = sqlx::query(&format!(
        "EXPLAIN ({options}) EXECUTE {} ({now} + 120000, {now}, {ROUND})",
        statement(queue)
    ))
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let plans: sqlx::types::Json<Value> = row.try_get(0).unwrap();
    tx.rollback().await.unwrap();
    plans.0[0].clone()
}

/// Holds that the plan reads `queue`'s table only through its indexes, never the
/// whole of it, never sorting it, never once per row of another read.
fn assert_reads_by_index(queue: Queue, plan: &Value) {
    helpers::visit_plan(plan, &mut |node| {
        let kind = node["Node Type"].as_str().unwrap_or_default();
        assert!(
            !matches!(
                kind,
                "Seq Scan" | "Bitmap Heap Scan" | "Sort" | "Nested Loop" | "Hash Join"
            ),
            "the claim of {} plans a {kind}: {plan:#}",
            queue.table()
        );
        if kind.ends_with("Scan") {
            assert_eq!(node["Relation Name"].as_str(), Some(queue.table()));
        }
    });
}

/// Queues `n` messages due an hour ago, straight into the table: the test is about
/// how a claim reads the table, so the rows do not name real tokens (the reference to
/// `release_tokens` is not checked while they are written).
async fn queue_messages(conn: &mut PgConnection, n: i64) {
    let mut tx = conn.begin().await.unwrap();
    tx.execute("SET LOCAL session_replication_role = replica")
        .await
        .unwrap();
    tx.execute(
        format!(
            "INSERT INTO messages (id, token_id, airline_id, agency_id, consent_id, traveller_id, \
             channel, category, sealed_body, status, attempts, next_attempt_at, created_at) \
             SELECT 'msg_' || i, 'tok_' || i, 'air', 'agy', 'cns_' || i, 'trv_' || i, 'sms', \
             'cancellation', '\\x00', 'queued', 0, \
             CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT) - 3600000 + i, \
             CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT) - 3600000 \
             FROM generate_series(1, {n}) AS i"
        )
        .as_str(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}
