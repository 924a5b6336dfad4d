//! What the database remembers of the broker's keys, never the keys: the check value
//! of each data key its data was sealed under, and the public half of every signing
//! key the broker has used.

use super::{to_millis, Conn, StoreError};
use crate::crypto::keyring::WrappedKey;
use sqlx::Row;
use std::collections::HashMap;
use time::OffsetDateTime;
use tracing::instrument;

/// The stored check values, by key id.
#[instrument(skip_all)]
pub async fn checks(conn: &mut Conn) -> Result<HashMap<String, Vec<u8>>, StoreError> {
    let rows = sqlx::query("SELECT kid, check_value FROM key_checks")
        .fetch_all(conn)
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get("kid"), r.get("check_value")))
        .collect())
}

/// Records a key's check value, unless one is recorded for that id already.
#[instrument(skip_all)]
pub async fn record_check(
    conn: &mut Conn,
    kid: &str,
    check_value: &[u8],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO key_checks (kid, check_value, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (kid) DO NOTHING",
    )
    .bind(kid)
    .bind(check_value)
    .bind(to_millis(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// One record key wrapped under `master`, if any: what a database sealed before check
/// values existed is checked against.
#[instrument(skip_all)]
pub async fn one_wrapped_under(
    conn: &mut Conn,
    master: &str,
) -> Result<Option<(String, WrappedKey)>, StoreError> {
    let row = sqlx::query(
        "SELECT id, wrapped_key FROM consents WHERE key_master = $1 AND wrapped_key IS NOT NULL LIMIT 1",
    )
    .bind(master)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| {
        (
            r.get("id"),
            WrappedKey {
                master: master.to_string(),
                wrapped: r.get("wrapped_key"),
            },
        )
    }))
}

/// Whether anything sealed under the root key is stored (a traveller's name).
#[instrument(skip_all)]
pub async fn holds_sealed_data(conn: &mut Conn) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT id FROM travellers LIMIT 1")
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some())
}

/// The public JWK stored under a broker key id, if any.
#[instrument(skip_all)]
pub async fn broker_key(conn: &mut Conn, kid: &str) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT public_jwk FROM broker_keys WHERE kid = $1")
        .bind(kid)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| r.get("public_jwk")))
}

/// Records the public half of a broker signing key, first seen now.
#[instrument(skip_all)]
pub async fn record_broker_key(
    conn: &mut Conn,
    kid: &str,
    public_jwk: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO broker_keys (kid, public_jwk, first_used) VALUES ($1, $2, $3) \
         ON CONFLICT (kid) DO NOTHING",
    )
    .bind(kid)
    .bind(public_jwk)
    .bind(to_millis(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// Every broker signing key's public JWK, oldest first.
#[instrument(skip_all)]
pub async fn broker_keys(conn: &mut Conn) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query("SELECT public_jwk FROM broker_keys ORDER BY first_used, kid")
        .fetch_all(conn)
        .await?;
    Ok(rows.iter().map(|r| r.get("public_jwk")).collect())
}
