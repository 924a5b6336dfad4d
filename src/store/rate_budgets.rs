//! The airlines' rate-limit budgets on PostgreSQL, shared by every broker on the
//! database (`migrations/postgres/…_rate_budgets.sql`). Each take is one statement in
//! its own transaction, on a reader connection: it never joins the writer's batch, so
//! it holds no lock that a batch waits on, and no batch holds it.

use super::{Engine, Store, StoreError};
use sqlx::Row;
use tracing::instrument;

/// A bucket's shape: refilled at `rate` a second, up to `burst`.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Tokens added per second.
    pub rate: f64,
    /// Most tokens held.
    pub burst: f64,
}

/// The database's clock in Unix milliseconds.
const NOW_MS: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

/// Takes `cost` tokens from `party`'s `budget` if it holds at least `min(cost, burst)`
/// (so that a cost above the burst passes on a full bucket and leaves it in debt).
/// The tokens it holds after: `Ok(Ok(level))` when taken, `Ok(Err(level))` when not.
#[instrument(skip_all)]
pub async fn take(
    store: &Store,
    party: &str,
    budget: &str,
    cost: f64,
    shape: Shape,
) -> Result<Result<f64, f64>, StoreError> {
    debug_assert_eq!(store.engine(), Engine::Postgres);
    let need = cost.min(shape.burst);
    let refilled = "LEAST(CAST($3 AS DOUBLE PRECISION), b.level + \
                    GREATEST(0, EXCLUDED.at_ms - b.at_ms) * CAST($5 AS DOUBLE PRECISION) / 1000.0)";
    let sql = format!(
        "INSERT INTO rate_budgets AS b (party_id, budget, level, at_ms) \
         VALUES ($1, $2, CAST($3 AS DOUBLE PRECISION) - CAST($4 AS DOUBLE PRECISION), {NOW_MS}) \
         ON CONFLICT (party_id, budget) DO UPDATE SET \
         level = {refilled} - CAST($4 AS DOUBLE PRECISION), \
         at_ms = GREATEST(b.at_ms, EXCLUDED.at_ms) \
         WHERE {refilled} >= CAST($6 AS DOUBLE PRECISION) \
         RETURNING level"
    );
    let taken = sqlx::query(&sql)
        .bind(party)
        .bind(budget)
        .bind(shape.burst)
        .bind(cost)
        .bind(shape.rate)
        .bind(need)
        .fetch_optional(store.reader())
        .await?;
    if let Some(row) = taken {
        return Ok(Ok(row.try_get("level")?));
    }
    let row = sqlx::query(&format!(
        "SELECT LEAST(CAST($3 AS DOUBLE PRECISION), level + GREATEST(0, {NOW_MS} - at_ms) \
         * CAST($4 AS DOUBLE PRECISION) / 1000.0) AS level \
         FROM rate_budgets WHERE party_id = $1 AND budget = $2"
    ))
    .bind(party)
    .bind(budget)
    .bind(shape.burst)
    .bind(shape.rate)
    .fetch_optional(store.reader())
    .await?;
    let level: f64 = match row {
        Some(row) => row.try_get("level")?,
        None => 0.0,
    };
    Ok(Err(level))
}
