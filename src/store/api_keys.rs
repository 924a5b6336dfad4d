//! API keys: each stored as the hash of its secret, with its party, expiry and
//! revocation; revoking a key ends the pages' sessions opened with it.

use super::db::Db;
use super::parties::party_from_row;
use super::row::Columns;
use super::{from_millis, to_millis, Conn, StoreError};
use super::{Param, Store};
use crate::crypto::secret::IssuedSecret;
use crate::domain::party::Party;
use sqlx::Row;
use time::OffsetDateTime;
use tracing::instrument;

/// Stores a new API key (its hash only) for a party, live until `expires_at` if
/// given.
#[instrument(skip_all)]
pub async fn insert_api_key(
    conn: &mut Conn,
    party_id: &str,
    key: &IssuedSecret,
    now: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_keys (id, party_id, secret_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&key.id)
    .bind(party_id)
    .bind(key.hash.as_slice())
    .bind(to_millis(now))
    .bind(expires_at.map(to_millis))
    .execute(conn)
    .await?;
    Ok(())
}

/// Revokes every API key of a party, and ends the pages' sessions opened with them.
/// Returns how many keys were live.
#[instrument(skip_all)]
pub async fn revoke_api_keys(
    conn: &mut Conn,
    party_id: &str,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    revoke_other_api_keys(conn, party_id, "", now).await
}

/// Revokes every API key of a party but `except`, and ends the sessions opened with
/// them. Returns how many keys were live.
#[instrument(skip_all)]
pub async fn revoke_other_api_keys(
    conn: &mut Conn,
    party_id: &str,
    except: &str,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = $1 WHERE party_id = $2 AND id <> $3 AND revoked_at IS NULL",
    )
    .bind(to_millis(now))
    .bind(party_id)
    .bind(except)
    .execute(&mut *conn)
    .await?;
    end_sessions_of_revoked_keys(conn).await?;
    Ok(done.rows_affected())
}

/// Revokes one API key by its public id, and ends the sessions opened with it.
/// Returns false if no live key has that id.
#[instrument(skip_all)]
pub async fn revoke_api_key(
    conn: &mut Conn,
    key_id: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done =
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(to_millis(now))
            .bind(key_id)
            .execute(&mut *conn)
            .await?;
    end_sessions_of_revoked_keys(conn).await?;
    Ok(done.rows_affected() == 1)
}

/// Makes every live key of a party expire at `at` at the latest (a rotation's grace
/// period). Returns how many.
#[instrument(skip_all)]
pub async fn expire_api_keys(
    conn: &mut Conn,
    party_id: &str,
    except: &str,
    at: OffsetDateTime,
) -> Result<u64, StoreError> {
    let at = to_millis(at);
    let done = sqlx::query(
        "UPDATE api_keys SET expires_at = $1 WHERE party_id = $2 AND id <> $3 AND revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $1)",
    )
    .bind(at)
    .bind(party_id)
    .bind(except)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes the sessions whose API key is revoked (they no longer open anyway).
async fn end_sessions_of_revoked_keys(conn: &mut Conn) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM web_sessions WHERE api_key_id IN (SELECT id FROM api_keys WHERE revoked_at IS NOT NULL)",
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// An API key as an operator lists it: never its secret.
#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    /// Its public id (the part after the prefix, before the dot).
    pub id: String,
    /// Its party.
    pub party_id: String,
    /// The party's kind.
    pub kind: String,
    /// The party's code (IATA number, designator), if any.
    pub code: Option<String>,
    /// The party's name.
    pub name: String,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// When it expires, if it does.
    pub expires_at: Option<OffsetDateTime>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
}

/// Every API key, or one party's, oldest first.
#[instrument(skip_all)]
pub async fn list_api_keys(
    conn: &mut Conn,
    party_id: Option<&str>,
) -> Result<Vec<ApiKeyRow>, StoreError> {
    let columns = "SELECT k.id, k.party_id, p.kind, p.code, p.name, k.created_at, k.expires_at, \
                   k.revoked_at FROM api_keys k JOIN parties p ON p.id = k.party_id";
    let rows = match party_id {
        Some(party_id) => {
            sqlx::query(&format!(
                "{columns} WHERE k.party_id = $1 ORDER BY k.created_at, k.id"
            ))
            .bind(party_id)
            .fetch_all(conn)
            .await?
        }
        None => {
            sqlx::query(&format!("{columns} ORDER BY k.created_at, k.id"))
                .fetch_all(conn)
                .await?
        }
    };
    let at = |r: &sqlx::any::AnyRow, column| {
        r.get::<Option<i64>, _>(column).map(from_millis).transpose()
    };
    rows.iter()
        .map(|r| {
            Ok(ApiKeyRow {
                id: r.get("id"),
                party_id: r.get("party_id"),
                kind: r.get("kind"),
                code: r.get("code"),
                name: r.get("name"),
                created_at: from_millis(r.get("created_at"))?,
                expires_at: at(r, "expires_at")?,
                revoked_at: at(r, "revoked_at")?,
            })
        })
        .collect()
}

/// The stored hash of a live API key (neither revoked nor expired at `now`) and the
/// party that owns it.
///
/// Every request with an API key asks this first, so on SQLite it is read on the file
/// directly when it can be (see [`super::direct`]).
#[instrument(skip_all)]
pub async fn api_key(
    store: &Store,
    key_id: &str,
    now: OffsetDateTime,
) -> Result<Option<(Vec<u8>, Party)>, StoreError> {
    crate::store::direct::read_now!(store, |db| live_key_of(db, key_id, now))
}

async fn live_key_of(
    db: &mut impl Db,
    key_id: &str,
    now: OffsetDateTime,
) -> Result<Option<(Vec<u8>, Party)>, StoreError> {
    db.optional(
        "SELECT k.secret_hash, p.id, p.kind, p.code FROM api_keys k \
         JOIN parties p ON p.id = k.party_id \
         WHERE k.id = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $2)",
        vec![Param::Text(key_id.to_string()), Param::Int(to_millis(now))],
        |row| live_key(row),
    )
    .await
}

/// A live key's hash and party, from a row of `api_key`'s statement.
fn live_key(row: &impl Columns) -> Result<(Vec<u8>, Party), StoreError> {
    Ok((row.value("secret_hash"), party_from_row(row)?))
}
