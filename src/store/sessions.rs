//! Sign-in sessions of the console and the agency view. The row holds the SHA-256 of
//! the session secret (the cookie holds the secret), the API key it was opened with,
//! and the session's CSRF token.

use super::parties::party_from_row;
use super::{from_millis, to_millis, Conn, StoreError};
use crate::domain::party::Party;
use sqlx::Row;
use time::OffsetDateTime;
use tracing::instrument;

/// A live session: whose, and the token its forms must carry.
#[derive(Debug, Clone)]
pub struct Session {
    /// The party signed in.
    pub party: Party,
    /// The party's name, shown in the page header.
    pub name: String,
    /// The CSRF token of the session's forms.
    pub csrf_token: String,
    /// When it was last marked seen.
    pub last_seen: OffsetDateTime,
}

/// Opens a session.
#[instrument(skip_all)]
pub async fn open(
    conn: &mut Conn,
    id_sha256: &[u8],
    api_key_id: &str,
    csrf_token: &str,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO web_sessions (id_sha256, api_key_id, csrf_token, created_at, last_seen, expires_at) \
         VALUES ($1, $2, $3, $4, $4, $5)",
    )
    .bind(id_sha256)
    .bind(api_key_id)
    .bind(csrf_token)
    .bind(to_millis(now))
    .bind(to_millis(expires_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// The session with this hash, if it has not expired, has been used within `idle`,
/// and its API key is not revoked.
#[instrument(skip_all)]
pub async fn find(
    conn: &mut Conn,
    id_sha256: &[u8],
    now: OffsetDateTime,
    idle: time::Duration,
) -> Result<Option<Session>, StoreError> {
    let row = sqlx::query(
        "SELECT s.csrf_token, s.last_seen, p.id, p.kind, p.code, p.name FROM web_sessions s \
         JOIN api_keys k ON k.id = s.api_key_id JOIN parties p ON p.id = k.party_id \
         WHERE s.id_sha256 = $1 AND s.expires_at > $2 AND s.last_seen > $3 AND k.revoked_at IS NULL \
         AND (k.expires_at IS NULL OR k.expires_at > $2)",
    )
    .bind(id_sha256)
    .bind(to_millis(now))
    .bind(to_millis(now - idle))
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Session {
        party: party_from_row(&row)?,
        name: row.get("name"),
        csrf_token: row.get("csrf_token"),
        last_seen: from_millis(row.get("last_seen"))?,
    }))
}

/// Marks a session seen now (it stays open `idle` longer).
#[instrument(skip_all)]
pub async fn touch(
    conn: &mut Conn,
    id_sha256: &[u8],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE web_sessions SET last_seen = $2 WHERE id_sha256 = $1")
        .bind(id_sha256)
        .bind(to_millis(now))
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends a session.
#[instrument(skip_all)]
pub async fn close(conn: &mut Conn, id_sha256: &[u8]) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM web_sessions WHERE id_sha256 = $1")
        .bind(id_sha256)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes expired sessions; returns how many.
#[instrument(skip_all)]
pub async fn sweep(conn: &mut Conn, now: OffsetDateTime) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
        .bind(to_millis(now))
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
