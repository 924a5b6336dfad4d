//! Sealed personal data: a record's sealed contacts and statement with its wrapped
//! key, their purge at the end of retention (crypto-shredding), and their re-wrapping
//! under a new master key.

use super::consents::{scope_from_row, SCOPE_COLUMNS};
use super::db::Db;
use super::row::Columns;
use super::{to_millis, Conn, Param, StoreError};
use crate::crypto::keyring::WrappedKey;
use crate::domain::scope::ConsentScope;
use sqlx::Row;
use std::sync::LazyLock;
use time::OffsetDateTime;
use tracing::instrument;

/// A record's sealed personal data and the key that opens it (`Default`: nothing, as a
/// relay decides without opening anything).
#[derive(Debug, Default)]
pub struct SealedRecord {
    /// The record key, wrapped; `None` once purged, or for records sealed directly
    /// under the root key before record keys existed.
    pub wrapped_key: Option<WrappedKey>,
    /// When it was purged, if it was.
    pub purged_at: Option<i64>,
    /// The canonical statement, sealed for (`consents`, `statement`, id).
    pub statement: Option<Vec<u8>>,
    /// The mobile number, sealed for (`consents`, `mobile`, id).
    pub mobile: Option<Vec<u8>>,
    /// The email address, sealed for (`consents`, `email`, id).
    pub email: Option<Vec<u8>>,
}

/// Reads a record's sealed data.
#[instrument(skip_all)]
pub async fn sealed(conn: &mut Conn, consent_id: &str) -> Result<SealedRecord, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {CONTACT_COLUMNS}, d.sealed_statement FROM consents c \
         JOIN consent_documents d ON d.consent_id = c.id WHERE c.id = $1"
    ))
    .bind(consent_id)
    .fetch_one(conn)
    .await?;
    Ok(sealed_from_row(&row, true))
}

/// A record as a relayed message is sent under it: what it allows now, and its sealed
/// contacts.
#[derive(Debug)]
pub struct ForSending {
    /// What the record allows at this moment (withdrawn, superseded, expired…).
    pub scope: ConsentScope,
    /// Its sealed contacts, without its statement: sending opens only the contacts.
    pub sealed: SealedRecord,
}

/// The statement, written once: the relay worker reads it for every message it sends.
static FOR_SENDING: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {SCOPE_COLUMNS}, {CONTACT_COLUMNS} FROM consents c WHERE c.id = $1")
});

/// What sending a message under record `consent_id` is decided on and opens, in one
/// statement over any [`Db`]: a point read by key, so the relay worker runs it on the
/// SQLite file directly (see [`super::direct`]) rather than through the pool, and it
/// leaves out the signed statement (the largest column of all, and never sent).
/// `None` when no such record is stored.
#[instrument(skip_all)]
pub async fn for_sending(
    db: &mut impl Db,
    consent_id: &str,
) -> Result<Option<ForSending>, StoreError> {
    db.optional(
        &FOR_SENDING,
        vec![Param::Text(consent_id.to_string())],
        |row| {
            Ok(ForSending {
                scope: scope_from_row(row)?,
                sealed: sealed_from_row(row, false),
            })
        },
    )
    .await
}

/// The columns of `consents c` that [`sealed_from_row`] reads a record's key and sealed
/// contacts from (the statement, when wanted, is `d.sealed_statement` beside them).
pub(crate) const CONTACT_COLUMNS: &str =
    "c.key_master, c.wrapped_key, c.purged_at, c.sealed_mobile, c.sealed_email";

/// A record's sealed data from a row holding `key_master`, `wrapped_key`,
/// `purged_at`, `sealed_mobile`, `sealed_email` and, if `with_statement`,
/// `sealed_statement` (what only opens contacts leaves the statement out).
pub(crate) fn sealed_from_row(row: &impl Columns, with_statement: bool) -> SealedRecord {
    let master: Option<String> = row.value("key_master");
    let wrapped: Option<Vec<u8>> = row.value("wrapped_key");
    SealedRecord {
        wrapped_key: master
            .zip(wrapped)
            .map(|(master, wrapped)| WrappedKey { master, wrapped }),
        purged_at: row.value("purged_at"),
        statement: if with_statement {
            row.value("sealed_statement")
        } else {
            None
        },
        mobile: row.value("sealed_mobile"),
        email: row.value("sealed_email"),
    }
}

/// Ids of records whose purge time has come, oldest first.
#[instrument(skip_all)]
pub async fn due_for_purge(
    conn: &mut Conn,
    now: OffsetDateTime,
    limit: i64,
) -> Result<Vec<(String, String, String)>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT id, agency_id, traveller_id FROM consents WHERE purged_at IS NULL AND purge_after <= $1 \
         ORDER BY purge_after LIMIT {limit}"
    ))
    .bind(to_millis(now))
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get("id"), r.get("agency_id"), r.get("traveller_id")))
        .collect())
}

/// Destroys a record's key and sealed data (crypto-shredding), keeping its metadata.
/// A name sealed before record keys existed goes too once none of the traveller's
/// records is unpurged, and so does what the broker learnt of their contacts (whether
/// a channel reaches them, kept by the contact's keyed digest). The record's contact
/// verifications go with it: each holds a digest of the contact and its sealed code.
#[instrument(skip_all)]
pub async fn purge(
    conn: &mut Conn,
    consent_id: &str,
    traveller_id: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE consents SET purged_at = $1, key_master = NULL, wrapped_key = NULL, \
         sealed_mobile = NULL, sealed_email = NULL, mobile_digest = NULL, email_digest = NULL \
         WHERE id = $2 AND purged_at IS NULL",
    )
    .bind(to_millis(now))
    .bind(consent_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE consent_documents SET sealed_statement = NULL WHERE consent_id = $1")
        .bind(consent_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM contact_verifications WHERE consent_id = $1")
        .bind(consent_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE travellers SET sealed_name = $2 WHERE id = $1 AND NOT EXISTS \
         (SELECT 1 FROM consents WHERE traveller_id = $1 AND purged_at IS NULL)",
    )
    .bind(traveller_id)
    .bind(Vec::<u8>::new())
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM channel_reachability WHERE traveller_id = $1 AND NOT EXISTS \
         (SELECT 1 FROM consents WHERE traveller_id = $1 AND purged_at IS NULL)",
    )
    .bind(traveller_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A batch of records whose key is wrapped under a master other than `current`.
#[instrument(skip_all)]
pub async fn wrapped_elsewhere(
    conn: &mut Conn,
    current: &str,
    limit: i64,
) -> Result<Vec<(String, WrappedKey)>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT id, key_master, wrapped_key FROM consents WHERE key_master IS NOT NULL AND key_master <> $1 \
         ORDER BY id LIMIT {limit}"
    ))
    .bind(current)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get("id"),
                WrappedKey {
                    master: r.get("key_master"),
                    wrapped: r.get("wrapped_key"),
                },
            )
        })
        .collect())
}

/// Replaces a record's wrapped key if it is still wrapped under `old_master`
/// (a purge in between wins). Returns whether it changed.
#[instrument(skip_all)]
pub async fn rewrap(
    conn: &mut Conn,
    consent_id: &str,
    old_master: &str,
    new: &WrappedKey,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE consents SET key_master = $1, wrapped_key = $2 WHERE id = $3 AND key_master = $4",
    )
    .bind(&new.master)
    .bind(new.wrapped.as_slice())
    .bind(consent_id)
    .bind(old_master)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
