//! Agencies' signing keys: the Ed25519 public keys their statements verify against,
//! live or revoked (a statement signed before a revocation still verifies).

use super::{to_millis, Conn, StoreError};
use sqlx::Row;
use time::OffsetDateTime;
use tracing::instrument;

/// Registers an agency's Ed25519 public key under a key id.
#[instrument(skip_all)]
pub async fn insert_agency_key(
    conn: &mut Conn,
    agency_id: &str,
    kid: &str,
    public_key: &[u8],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO agency_keys (party_id, kid, public_key, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(agency_id)
    .bind(kid)
    .bind(public_key)
    .bind(to_millis(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// The public key an agency registered under `kid`, if it has one and it is live.
#[instrument(skip_all)]
pub async fn agency_key(
    conn: &mut Conn,
    agency_id: &str,
    kid: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let row = sqlx::query("SELECT public_key FROM agency_keys WHERE party_id = $1 AND kid = $2 AND revoked_at IS NULL")
        .bind(agency_id)
        .bind(kid)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| r.get("public_key")))
}

/// An agency key whatever its state: for checking records it signed before it was
/// revoked.
#[derive(Debug, Clone)]
pub struct AgencyKey {
    /// The Ed25519 public key.
    pub public_key: Vec<u8>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// The key an agency registered under `kid`, live or revoked.
#[instrument(skip_all)]
pub async fn agency_key_any_state(
    conn: &mut Conn,
    agency_id: &str,
    kid: &str,
) -> Result<Option<AgencyKey>, StoreError> {
    let row = sqlx::query(
        "SELECT public_key, revoked_at FROM agency_keys WHERE party_id = $1 AND kid = $2",
    )
    .bind(agency_id)
    .bind(kid)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| AgencyKey {
        public_key: r.get("public_key"),
        revoked_at: r.get("revoked_at"),
    }))
}

/// Revokes an agency key: it signs nothing new from now on. Returns false if the
/// agency has no live key with that id.
#[instrument(skip_all)]
pub async fn revoke_agency_key(
    conn: &mut Conn,
    agency_id: &str,
    kid: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE agency_keys SET revoked_at = $1 WHERE party_id = $2 AND kid = $3 AND revoked_at IS NULL",
    )
    .bind(to_millis(now))
    .bind(agency_id)
    .bind(kid)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
