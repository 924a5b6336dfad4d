//! Requests sent with an `Idempotency-Key`: the first answer, kept to replay.

use super::{to_millis, Conn, StoreError};
use sqlx::Row;
use time::OffsetDateTime;
use tracing::instrument;

/// How long an answer is kept for replay.
pub const KEEP: time::Duration = time::Duration::hours(24);
/// After this long without an answer, a claimed key is taken to belong to a request
/// that died with its process, and may be claimed again.
pub const ABANDONED: time::Duration = time::Duration::minutes(5);

/// What the key already holds.
#[derive(Debug)]
pub enum Claim {
    /// Nothing (or only something expired or abandoned): the caller now holds the key.
    New,
    /// Another request with this key is still running.
    InFlight,
    /// The answer to an earlier request: its fingerprint, status and sealed body.
    Done {
        /// SHA-256 of the earlier request.
        request_sha256: Vec<u8>,
        /// Its status.
        status: u16,
        /// Its answer, sealed.
        sealed_response: Vec<u8>,
    },
}

/// Claims the key for a new request, unless it holds a live one.
#[instrument(skip_all)]
pub async fn claim(
    conn: &mut Conn,
    party_id: &str,
    key: &str,
    now: OffsetDateTime,
) -> Result<Claim, StoreError> {
    let now_ms = to_millis(now);
    let expired = to_millis(now - KEEP);
    let abandoned = to_millis(now - ABANDONED);
    sqlx::query(
        "DELETE FROM idempotent_requests WHERE party_id = $1 AND idempotency_key = $2 AND \
         (created_at < $3 OR (request_sha256 IS NULL AND created_at < $4))",
    )
    .bind(party_id)
    .bind(key)
    .bind(expired)
    .bind(abandoned)
    .execute(&mut *conn)
    .await?;
    let inserted = sqlx::query(
        "INSERT INTO idempotent_requests (party_id, idempotency_key, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (party_id, idempotency_key) DO NOTHING",
    )
    .bind(party_id)
    .bind(key)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::New);
    }
    let row = sqlx::query(
        "SELECT request_sha256, status, sealed_response FROM idempotent_requests \
         WHERE party_id = $1 AND idempotency_key = $2",
    )
    .bind(party_id)
    .bind(key)
    .fetch_one(conn)
    .await?;
    let hash: Option<Vec<u8>> = row.get("request_sha256");
    let status: Option<i64> = row.get("status");
    let sealed: Option<Vec<u8>> = row.get("sealed_response");
    Ok(match (hash, status, sealed) {
        (Some(request_sha256), Some(status), Some(sealed_response)) => Claim::Done {
            request_sha256,
            status: u16::try_from(status).unwrap_or(500),
            sealed_response,
        },
        _ => Claim::InFlight,
    })
}

/// Stores the answer to the request that claimed the key.
#[instrument(skip_all)]
pub async fn complete(
    conn: &mut Conn,
    party_id: &str,
    key: &str,
    request_sha256: &[u8],
    status: u16,
    sealed_response: &[u8],
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE idempotent_requests SET request_sha256 = $1, status = $2, sealed_response = $3 \
         WHERE party_id = $4 AND idempotency_key = $5",
    )
    .bind(request_sha256)
    .bind(i64::from(status))
    .bind(sealed_response)
    .bind(party_id)
    .bind(key)
    .execute(conn)
    .await?;
    Ok(())
}

/// Lets go of a key whose request gave no answer worth replaying.
#[instrument(skip_all)]
pub async fn release(conn: &mut Conn, party_id: &str, key: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM idempotent_requests WHERE party_id = $1 AND idempotency_key = $2")
        .bind(party_id)
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets answers older than [`KEEP`]. Returns how many went.
#[instrument(skip_all)]
pub async fn expire(conn: &mut Conn, now: OffsetDateTime) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM idempotent_requests WHERE created_at < $1")
        .bind(to_millis(now - KEEP))
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
