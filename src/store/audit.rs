//! The audit log's storage: dense appends and ordered reads.

use super::{from_millis, to_millis, Conn, StoreError};
use crate::audit::{format_time, AuditEntry, NewEntry};
use sqlx::Row;
use tracing::instrument;

/// Appends an entry in the caller's transaction and returns its index.
///
/// The index comes from the one-row `audit_head` table, incremented in the same
/// transaction: concurrent appends wait on that row, and a rolled-back transaction
/// gives its index back, so the log never has a gap.
#[instrument(skip_all)]
pub async fn append(conn: &mut Conn, new: NewEntry) -> Result<i64, StoreError> {
    let row = sqlx::query("UPDATE audit_head SET size = size + 1 WHERE id = 1 RETURNING size")
        .fetch_one(&mut *conn)
        .await?;
    let size: i64 = row.get("size");
    let at = to_millis(new.at);
    let shown_at = format_time(new.at);
    let entry = new.complete(size - 1, shown_at);
    let leaf = entry.leaf_hash();
    sqlx::query(
        "INSERT INTO audit_entries (idx, at, request_id, actor_kind, actor_id, action, outcome, reason, agency_id, \
         airline_id, booking_id, traveller_id, consent_id, token_id, purpose, event_category, event_reference, flight, \
         leaf_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
    )
    .bind(entry.index)
    .bind(at)
    .bind(&entry.request_id)
    .bind(&entry.actor_kind)
    .bind(&entry.actor_id)
    .bind(&entry.action)
    .bind(&entry.outcome)
    .bind(&entry.reason)
    .bind(&entry.agency_id)
    .bind(&entry.airline_id)
    .bind(&entry.booking_id)
    .bind(&entry.traveller_id)
    .bind(&entry.consent_id)
    .bind(&entry.token_id)
    .bind(&entry.purpose)
    .bind(&entry.event_category)
    .bind(&entry.event_reference)
    .bind(&entry.flight)
    .bind(leaf.as_slice())
    .execute(conn)
    .await?;
    Ok(entry.index)
}

/// Up to `limit` entries after index `after` (or from the start), in log order, each
/// with its stored leaf hash.
#[instrument(skip_all)]
pub async fn list(
    conn: &mut Conn,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<(AuditEntry, Vec<u8>)>, StoreError> {
    let rows = sqlx::query(
        "SELECT idx, at, request_id, actor_kind, actor_id, action, outcome, reason, agency_id, airline_id, booking_id, \
         traveller_id, consent_id, token_id, purpose, event_category, event_reference, flight, leaf_hash \
         FROM audit_entries WHERE idx > $1 ORDER BY idx LIMIT $2",
    )
    .bind(after.unwrap_or(-1))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let entry = AuditEntry {
                index: r.get("idx"),
                at: format_time(from_millis(r.get("at"))?),
                request_id: r.get("request_id"),
                actor_kind: r.get("actor_kind"),
                actor_id: r.get("actor_id"),
                action: r.get("action"),
                outcome: r.get("outcome"),
                reason: r.get("reason"),
                agency_id: r.get("agency_id"),
                airline_id: r.get("airline_id"),
                booking_id: r.get("booking_id"),
                traveller_id: r.get("traveller_id"),
                consent_id: r.get("consent_id"),
                token_id: r.get("token_id"),
                purpose: r.get("purpose"),
                event_category: r.get("event_category"),
                event_reference: r.get("event_reference"),
                flight: r.get("flight"),
            };
            Ok((entry, r.get("leaf_hash")))
        })
        .collect()
}

/// Number of entries in the log.
#[instrument(skip_all)]
pub async fn size(conn: &mut Conn) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT size FROM audit_head WHERE id = 1")
        .fetch_one(conn)
        .await?;
    Ok(row.get("size"))
}
