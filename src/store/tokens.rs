//! Release tokens.

use super::db::Db;
use super::row::Columns;
use super::{from_millis, to_millis, values_rows, Conn, Param, StoreError};
use crate::domain::delivery::{Channel, Delivery};
use std::collections::HashSet;
use time::OffsetDateTime;
use tracing::instrument;

/// A release token as stored: what it was granted for, never the token itself.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    /// Public lookup id of the token.
    pub id: String,
    /// SHA-256 of the token's secret part.
    pub secret_hash: Vec<u8>,
    /// The airline it was issued to.
    pub airline_id: String,
    /// The agency whose client it concerns.
    pub agency_id: String,
    /// The consent it releases under.
    pub consent_id: String,
    /// The traveller.
    pub traveller_id: String,
    /// The booking.
    pub booking_id: String,
    /// The purpose granted.
    pub purpose: String,
    /// The event category named.
    pub event_category: String,
    /// The airline's disruption reference.
    pub event_reference: String,
    /// The flight (`AF1234/2026-12-01`).
    pub flight: String,
    /// When it was issued.
    pub issued_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
    /// When it was last used, if it was.
    pub used_at: Option<OffsetDateTime>,
    /// The channels it covers.
    pub channels: Vec<Channel>,
    /// Uses left.
    pub uses_left: i64,
    /// Whether redeeming it reveals the contact or only relays.
    pub delivery: Delivery,
    /// When it was revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
}

/// Token rows per multi-row insert: 15 parameters each, about 700 a statement (see
/// the audit log's `ENTRY_ROWS` for why not more).
const TOKEN_ROWS: usize = 48;

/// Stores newly granted tokens, with multi-row statements.
#[instrument(skip_all)]
pub async fn insert_many(db: &mut impl Db, tokens: &[TokenRecord]) -> Result<(), StoreError> {
    const COLUMNS: usize = 15;
    for chunk in tokens.chunks(TOKEN_ROWS) {
        let sql = format!(
            "INSERT INTO release_tokens (id, secret_hash, airline_id, consent_id, traveller_id, booking_id, purpose, \
             event_category, event_reference, flight, issued_at, expires_at, channels, uses_left, delivery) \
             VALUES {}",
            values_rows(db.placeholders(), chunk.len(), COLUMNS)
        );
        let mut params = Vec::with_capacity(chunk.len() * COLUMNS);
        for token in chunk {
            params.extend([
                Param::Text(token.id.clone()),
                Param::Bytes(token.secret_hash.clone()),
                Param::Text(token.airline_id.clone()),
                Param::Text(token.consent_id.clone()),
                Param::Text(token.traveller_id.clone()),
                Param::Text(token.booking_id.clone()),
                Param::Text(token.purpose.clone()),
                Param::Text(token.event_category.clone()),
                Param::Text(token.event_reference.clone()),
                Param::Text(token.flight.clone()),
                Param::Int(to_millis(token.issued_at)),
                Param::Int(to_millis(token.expires_at)),
                Param::Text(Channel::join(&token.channels)),
                Param::Int(token.uses_left),
                Param::Text(token.delivery.as_str().to_string()),
            ]);
        }
        db.execute(&sql, params).await?;
    }
    Ok(())
}

/// A token's columns, from `release_tokens rt` joined to its record `c`. The names
/// a traveller's facts also use are prefixed, so that one row can carry both (see
/// `store::use_facts`).
pub(crate) const TOKEN_COLUMNS: &str =
    "rt.id AS token_id, rt.secret_hash, rt.airline_id, c.agency_id AS token_agency_id, \
     rt.consent_id AS token_consent_id, rt.traveller_id AS token_traveller_id, \
     rt.booking_id AS token_booking_id, rt.purpose, rt.event_category, rt.event_reference, \
     rt.flight, rt.issued_at, rt.expires_at, rt.used_at, rt.channels, rt.uses_left, \
     rt.delivery AS token_delivery, rt.revoked_at";

/// Finds a token by its public id.
#[instrument(skip_all)]
pub async fn find(db: &mut impl Db, id: &str) -> Result<Option<TokenRecord>, StoreError> {
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM release_tokens rt JOIN consents c ON c.id = rt.consent_id \
         WHERE rt.id = $1"
    );
    db.optional(&sql, vec![Param::Text(id.to_string())], |row| {
        token_from_row(row)
    })
    .await
}

/// A token read with [`TOKEN_COLUMNS`].
pub(crate) fn token_from_row(row: &impl Columns) -> Result<TokenRecord, StoreError> {
    let used_at: Option<i64> = row.value("used_at");
    let revoked_at: Option<i64> = row.value("revoked_at");
    let delivery: String = row.value("token_delivery");
    let channels: String = row.value("channels");
    Ok(TokenRecord {
        id: row.value("token_id"),
        secret_hash: row.value("secret_hash"),
        airline_id: row.value("airline_id"),
        agency_id: row.value("token_agency_id"),
        consent_id: row.value("token_consent_id"),
        traveller_id: row.value("token_traveller_id"),
        booking_id: row.value("token_booking_id"),
        purpose: row.value("purpose"),
        event_category: row.value("event_category"),
        event_reference: row.value("event_reference"),
        flight: row.value("flight"),
        issued_at: from_millis(row.value("issued_at"))?,
        expires_at: from_millis(row.value("expires_at"))?,
        used_at: used_at.map(from_millis).transpose()?,
        channels: Channel::split(&channels),
        uses_left: row.value("uses_left"),
        delivery: Delivery::from_word(&delivery)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery {delivery}")))?,
        revoked_at: revoked_at.map(from_millis).transpose()?,
    })
}

/// Takes one use of a token if it has uses left, is not revoked and has not expired.
/// Returns whether this call took it: of concurrent uses of its last use, exactly one
/// gets `true`.
#[instrument(skip_all)]
pub async fn take_use(conn: &mut Conn, id: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE release_tokens SET uses_left = uses_left - 1, used_at = $1 \
         WHERE id = $2 AND uses_left > 0 AND revoked_at IS NULL AND expires_at > $1",
    )
    .bind(to_millis(now))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes one use of each of these tokens, like [`take_use`], but only of those whose
/// consent record is still neither withdrawn, superseded nor purged: the guard for
/// uses decided on an earlier read (see `service::token_use`). Returns the
/// ids of the tokens whose use was taken. Each id must appear once.
///
/// The record is read by a scalar subquery on its primary key, one per token: as an
/// `EXISTS`, PostgreSQL planned it on tables not yet analysed (right after a bulk
/// load, before autovacuum's first look) as a scan of every current record for each
/// token, which held a disruption to 150 uses a second.
///
/// The list is padded (see [`super::padded_text_list`]): a batch's size varies with
/// the load, and each new size was a statement planned afresh.
#[instrument(skip_all)]
pub async fn take_uses_if_unchanged(
    db: &mut impl Db,
    ids: &[&str],
    now: OffsetDateTime,
) -> Result<HashSet<String>, StoreError> {
    let mut taken = HashSet::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let mut params = vec![Param::Int(to_millis(now))];
        let list = super::padded_text_list(&mut params, chunk);
        let sql = format!(
            "UPDATE release_tokens SET uses_left = uses_left - 1, used_at = $1 \
             WHERE id IN ({}) AND uses_left > 0 AND revoked_at IS NULL AND expires_at > $1 \
             AND (SELECT c.withdrawn_at IS NULL AND c.superseded_by IS NULL AND c.purged_at IS NULL \
             FROM consents c WHERE c.id = release_tokens.consent_id) \
             RETURNING id",
            list
        );
        db.for_each(&sql, params, |row| {
            taken.insert(row.value("id"));
            Ok(())
        })
        .await?;
    }
    Ok(taken)
}

/// Revokes every live token granted under the traveller's records, in the caller's
/// transaction (a withdrawal). Returns how many were revoked.
#[instrument(skip_all)]
pub async fn revoke_for_traveller(
    conn: &mut Conn,
    traveller_id: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE release_tokens SET revoked_at = $1, revoked_reason = $2 \
         WHERE traveller_id = $3 AND revoked_at IS NULL AND uses_left > 0 AND expires_at > $1",
    )
    .bind(to_millis(now))
    .bind(reason)
    .bind(traveller_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
