//! Erasure requests: the airlines asked to erase a contact they were shown, and
//! whether they acknowledged it (see `service::erasures`).

use super::db::Db;
use super::row::Columns;
use super::{arg, from_millis, to_millis, Conn, Param, StoreError};
use sqlx::Row;
use time::OffsetDateTime;

/// A contact an airline was shown and has not yet been asked to erase: a reveal token
/// used, with no request yet.
#[derive(Debug, Clone)]
pub struct Owed {
    /// The token the contact was revealed under.
    pub token_id: String,
    /// The airline shown it.
    pub airline_id: String,
    /// The agency whose client it is.
    pub agency_id: String,
    /// The traveller (pseudonymous id).
    pub traveller_id: String,
    /// The record the token was granted under.
    pub consent_id: String,
}

/// An erasure request as stored.
#[derive(Debug, Clone)]
pub struct ErasureRow {
    /// `era_…`.
    pub id: String,
    /// The airline asked.
    pub airline_id: String,
    /// The agency whose client it is.
    pub agency_id: String,
    /// The token the contact was revealed under.
    pub token_id: String,
    /// The traveller (pseudonymous id).
    pub traveller_id: String,
    /// The record the token was granted under.
    pub consent_id: String,
    /// `consent_withdrawn`, `contact_changed` or `record_purged`.
    pub reason: String,
    /// When the broker asked.
    pub requested_at: OffsetDateTime,
    /// By when the airline must acknowledge.
    pub deadline_at: OffsetDateTime,
    /// When it did.
    pub acknowledged_at: Option<OffsetDateTime>,
    /// The audit entry of the request.
    pub audit_index: i64,
}

const OWED: &str =
    "SELECT rt.id AS token_id, rt.airline_id, c.agency_id, rt.traveller_id, rt.consent_id \
     FROM release_tokens rt JOIN consents c ON c.id = rt.consent_id \
     WHERE rt.delivery = 'reveal' AND rt.used_at IS NOT NULL \
     AND NOT EXISTS (SELECT 1 FROM erasure_requests e WHERE e.token_id = rt.id)";

/// The contacts of a traveller (under any version of their record) that airlines were
/// shown and have not been asked to erase.
pub async fn owed_for_traveller(
    conn: &mut Conn,
    traveller_id: &str,
) -> Result<Vec<Owed>, StoreError> {
    let sql = format!("{OWED} AND rt.traveller_id = $1 ORDER BY rt.id");
    let rows = sqlx::query(&sql).bind(traveller_id).fetch_all(conn).await?;
    Ok(rows.iter().map(owed_of).collect())
}

/// The same, for the contacts of the given records.
pub async fn owed_for_consents(
    conn: &mut Conn,
    consent_ids: &[&str],
) -> Result<Vec<Owed>, StoreError> {
    owed_among(conn, OWED, "rt.consent_id", consent_ids).await
}

/// The contacts airlines were shown under a record since replaced by one with another
/// contact (no current record of the traveller holds the same mobile and email, by
/// their digests): of these travellers, or of all (`None`, the sweeper's catch-up).
pub async fn owed_for_changed_contacts(
    conn: &mut Conn,
    traveller_ids: Option<&[&str]>,
) -> Result<Vec<Owed>, StoreError> {
    let changed = format!(
        "{OWED} AND c.superseded_by IS NOT NULL \
         AND (c.mobile_digest IS NOT NULL OR c.email_digest IS NOT NULL) \
         AND NOT EXISTS (SELECT 1 FROM consents cur WHERE cur.traveller_id = rt.traveller_id \
         AND cur.superseded_by IS NULL \
         AND (cur.mobile_digest = c.mobile_digest OR (cur.mobile_digest IS NULL AND c.mobile_digest IS NULL)) \
         AND (cur.email_digest = c.email_digest OR (cur.email_digest IS NULL AND c.email_digest IS NULL)))"
    );
    let Some(travellers) = traveller_ids else {
        let sql = format!("{changed} ORDER BY rt.id");
        let rows = sqlx::query(&sql).fetch_all(conn).await?;
        return Ok(rows.iter().map(owed_of).collect());
    };
    owed_among(conn, &changed, "rt.traveller_id", travellers).await
}

/// The rows of `owed` (a query over [`OWED`]) whose `column` is one of `ids`, a few
/// hundred ids per statement.
async fn owed_among(
    conn: &mut Conn,
    owed: &str,
    column: &str,
    ids: &[&str],
) -> Result<Vec<Owed>, StoreError> {
    let mut found = Vec::new();
    for chunk in ids.chunks(500) {
        let mut params = Vec::with_capacity(chunk.len());
        let list = super::text_list(&mut params, chunk);
        let sql = format!("{owed} AND {column} IN ({list}) ORDER BY rt.id");
        let rows = super::bind_all(&sql, params).fetch_all(&mut *conn).await?;
        found.extend(rows.iter().map(owed_of));
    }
    Ok(found)
}

fn owed_of(row: &sqlx::any::AnyRow) -> Owed {
    Owed {
        token_id: row.get("token_id"),
        airline_id: row.get("airline_id"),
        agency_id: row.get("agency_id"),
        traveller_id: row.get("traveller_id"),
        consent_id: row.get("consent_id"),
    }
}

/// Stores a request; `false` when its token was already asked about (by a broker
/// beside this one), and nothing is stored.
pub async fn insert(conn: &mut Conn, row: &ErasureRow) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO erasure_requests (id, airline_id, agency_id, token_id, traveller_id, consent_id, \
         reason, requested_at, deadline_at, audit_index) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (token_id) DO NOTHING",
    )
    .bind(&row.id)
    .bind(&row.airline_id)
    .bind(&row.agency_id)
    .bind(&row.token_id)
    .bind(&row.traveller_id)
    .bind(&row.consent_id)
    .bind(&row.reason)
    .bind(to_millis(row.requested_at))
    .bind(to_millis(row.deadline_at))
    .bind(row.audit_index)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

const COLUMNS: &str = "id, airline_id, agency_id, token_id, traveller_id, consent_id, reason, \
     requested_at, deadline_at, acknowledged_at, audit_index";

/// One of the airline's requests.
pub async fn get(
    conn: &mut Conn,
    airline_id: &str,
    id: &str,
) -> Result<Option<ErasureRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM erasure_requests WHERE id = $1 AND airline_id = $2");
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(airline_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(row_of).transpose()
}

/// Marks the airline's request acknowledged; `false` when it already was (or is not
/// the airline's).
pub async fn acknowledge(
    conn: &mut Conn,
    airline_id: &str,
    id: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE erasure_requests SET acknowledged_at = $1 \
         WHERE id = $2 AND airline_id = $3 AND acknowledged_at IS NULL",
    )
    .bind(to_millis(now))
    .bind(id)
    .bind(airline_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whose requests to list.
#[derive(Debug, Clone, Copy)]
pub enum Whose<'a> {
    /// The airline's own.
    Airline(&'a str),
    /// Those about the agency's clients.
    Agency(&'a str),
    /// Every one (officers).
    All,
}

/// Requests, newest first, at most `limit`: all of them, or only those still
/// unacknowledged past their deadline at `overdue_at`.
pub async fn list(
    db: &mut impl Db,
    whose: Whose<'_>,
    overdue_at: Option<OffsetDateTime>,
    limit: i64,
) -> Result<Vec<ErasureRow>, StoreError> {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    match whose {
        Whose::Airline(id) => {
            conditions.push(format!(
                "airline_id = {}",
                arg(&mut params, Param::Text(id.into()))
            ));
        }
        Whose::Agency(id) => {
            conditions.push(format!(
                "agency_id = {}",
                arg(&mut params, Param::Text(id.into()))
            ));
        }
        Whose::All => {}
    }
    if let Some(at) = overdue_at {
        let at = arg(&mut params, Param::Int(to_millis(at)));
        conditions.push(format!("acknowledged_at IS NULL AND deadline_at < {at}"));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let limit = arg(&mut params, Param::Int(limit));
    let sql = format!(
        "SELECT {COLUMNS} FROM erasure_requests {filter} \
         ORDER BY requested_at DESC, id DESC LIMIT {limit}"
    );
    db.all(&sql, params, |row| row_of(row)).await
}

fn row_of(row: &impl Columns) -> Result<ErasureRow, StoreError> {
    let acknowledged: Option<i64> = row.value("acknowledged_at");
    Ok(ErasureRow {
        id: row.value("id"),
        airline_id: row.value("airline_id"),
        agency_id: row.value("agency_id"),
        token_id: row.value("token_id"),
        traveller_id: row.value("traveller_id"),
        consent_id: row.value("consent_id"),
        reason: row.value("reason"),
        requested_at: from_millis(row.value("requested_at"))?,
        deadline_at: from_millis(row.value("deadline_at"))?,
        acknowledged_at: acknowledged.map(from_millis).transpose()?,
        audit_index: row.value("audit_index"),
    })
}
