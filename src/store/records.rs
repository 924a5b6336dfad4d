//! Reading consent records as their agency sees them: one by id, or a page of them,
//! filtered, in the order they were stored.

use super::consents::{scope_from_row, split};
use super::db::Db;
use super::row::Columns;
use super::{arg, bind_all, from_millis, to_millis, Conn, Param, StoreError};
use crate::domain::consent::DataCategory;
use crate::domain::scope::{ConsentScope, ConsentState};
use time::OffsetDateTime;
use tracing::instrument;

/// A stored record as its agency reads it: metadata only, no contact.
#[derive(Debug, Clone)]
pub struct RecordRow {
    /// Broker id.
    pub id: String,
    /// Agency's id and version.
    pub agency_record_id: String,
    /// Version among records sharing the agency id.
    pub version: i64,
    /// The agency.
    pub agency_id: String,
    /// The traveller and booking.
    pub traveller_id: String,
    /// The booking.
    pub booking_id: String,
    /// The booking's locator.
    pub record_locator: String,
    /// Statement schema.
    pub schema_version: String,
    /// What the release rules read.
    pub scope: ConsentScope,
    /// `named` or `itinerary`.
    pub recipients: String,
    /// Data categories.
    pub data_categories: Vec<DataCategory>,
    /// Jurisdiction.
    pub jurisdiction: String,
    /// Times.
    pub collected_at: OffsetDateTime,
    /// Notice version, language, digest.
    pub notice: (String, String, String),
    /// Collection method.
    pub collection_method: String,
    /// Signing key id and JWS.
    pub key_id: String,
    /// The agency's detached JWS.
    pub signature: String,
    /// SHA-256 of the canonical statement.
    pub statement_sha256: Vec<u8>,
    /// The countersigned receipt, if the record has one.
    pub receipt: Option<String>,
    /// When stored.
    pub created_at: OffsetDateTime,
    /// The newer record that replaced it.
    pub superseded_by: Option<String>,
    /// Withdrawal time and by whom.
    pub withdrawn: Option<(OffsetDateTime, String)>,
    /// When the contact will be (or was) destroyed.
    pub purge_after: OffsetDateTime,
    /// When it was destroyed.
    pub purged_at: Option<OffsetDateTime>,
}

const RECORD_SELECT: &str = "SELECT c.id, c.agency_record_id, c.version, c.agency_id, c.traveller_id, \
     t.booking_id, b.record_locator, c.schema_version, c.decision, c.superseded_by, c.withdrawn_at, c.withdrawn_by, \
     c.purposes, c.carriers, c.valid_until, c.recipients, c.data_categories, c.jurisdiction, c.collected_at, \
     c.notice_version, c.notice_language, c.notice_sha256, c.collection_method, c.key_id, d.signature, \
     c.statement_sha256, d.receipt, c.created_at, c.purge_after, c.purged_at \
     FROM consents c JOIN consent_documents d ON d.consent_id = c.id \
     JOIN travellers t ON t.id = c.traveller_id JOIN bookings b ON b.id = t.booking_id";

fn record_from_row(row: &impl Columns) -> Result<RecordRow, StoreError> {
    let categories: String = row.value("data_categories");
    let withdrawn_at: Option<i64> = row.value("withdrawn_at");
    let withdrawn_by: Option<String> = row.value("withdrawn_by");
    Ok(RecordRow {
        id: row.value("id"),
        agency_record_id: row.value("agency_record_id"),
        version: row.value("version"),
        agency_id: row.value("agency_id"),
        traveller_id: row.value("traveller_id"),
        booking_id: row.value("booking_id"),
        record_locator: row.value("record_locator"),
        schema_version: row.value("schema_version"),
        scope: scope_from_row(row)?,
        recipients: row.value("recipients"),
        data_categories: split(&categories)
            .map(|w| {
                DataCategory::from_word(w)
                    .ok_or_else(|| StoreError::Corrupt(format!("data category {w}")))
            })
            .collect::<Result<_, _>>()?,
        jurisdiction: row.value("jurisdiction"),
        collected_at: from_millis(row.value("collected_at"))?,
        notice: (
            row.value("notice_version"),
            row.value("notice_language"),
            row.value("notice_sha256"),
        ),
        collection_method: row.value("collection_method"),
        key_id: row.value("key_id"),
        signature: row.value("signature"),
        statement_sha256: row.value("statement_sha256"),
        receipt: row.value("receipt"),
        created_at: from_millis(row.value("created_at"))?,
        superseded_by: row.value("superseded_by"),
        withdrawn: match (withdrawn_at, withdrawn_by) {
            (Some(at), Some(by)) => Some((from_millis(at)?, by)),
            _ => None,
        },
        purge_after: from_millis(row.value("purge_after"))?,
        purged_at: row
            .value::<Option<i64>>("purged_at")
            .map(from_millis)
            .transpose()?,
    })
}

/// One of the agency's own records.
#[instrument(skip_all)]
pub async fn get(
    db: &mut impl Db,
    agency_id: &str,
    consent_id: &str,
) -> Result<Option<RecordRow>, StoreError> {
    db.optional(
        &format!("{RECORD_SELECT} WHERE c.agency_id = $1 AND c.id = $2"),
        vec![
            Param::Text(agency_id.to_string()),
            Param::Text(consent_id.to_string()),
        ],
        |row| record_from_row(row),
    )
    .await
}

/// Filters of the agency's record listing. The state filter is applied in SQL for
/// the facts it depends on and against `now` for expiry.
#[derive(Debug, Default, Clone)]
pub struct RecordFilter {
    /// Only this booking (record locator).
    pub record_locator: Option<String>,
    /// Only this traveller.
    pub traveller_id: Option<String>,
    /// Only this agency record id (all its versions).
    pub agency_record_id: Option<String>,
    /// Only records in this state.
    pub state: Option<ConsentState>,
    /// Stored at or after.
    pub since: Option<OffsetDateTime>,
    /// Stored before.
    pub until: Option<OffsetDateTime>,
}

/// The agency's records, oldest first, after the cursor `(created_at, id)`.
#[instrument(skip_all)]
pub async fn list(
    conn: &mut Conn,
    agency_id: &str,
    filter: &RecordFilter,
    after: Option<(i64, String)>,
    limit: i64,
    now: OffsetDateTime,
) -> Result<Vec<RecordRow>, StoreError> {
    let mut params = vec![Param::Text(agency_id.to_string())];
    let mut sql = format!("{RECORD_SELECT} WHERE c.agency_id = $1");
    if let Some(locator) = &filter.record_locator {
        let p = arg(&mut params, Param::Text(locator.clone()));
        sql.push_str(&format!(" AND b.record_locator = {p}"));
    }
    if let Some(traveller) = &filter.traveller_id {
        let p = arg(&mut params, Param::Text(traveller.clone()));
        sql.push_str(&format!(" AND c.traveller_id = {p}"));
    }
    if let Some(record_id) = &filter.agency_record_id {
        let p = arg(&mut params, Param::Text(record_id.clone()));
        sql.push_str(&format!(" AND c.agency_record_id = {p}"));
    }
    const LIVE_GIVEN: &str =
        " AND c.decision = 'given' AND c.withdrawn_at IS NULL AND c.superseded_by IS NULL";
    match filter.state {
        None => {}
        Some(ConsentState::Refused) => sql.push_str(" AND c.decision = 'refused'"),
        Some(ConsentState::Withdrawn) => {
            sql.push_str(" AND c.decision = 'given' AND c.withdrawn_at IS NOT NULL")
        }
        Some(ConsentState::Superseded) => sql.push_str(
            " AND c.decision = 'given' AND c.withdrawn_at IS NULL AND c.superseded_by IS NOT NULL",
        ),
        Some(ConsentState::Expired) => {
            let p = arg(&mut params, Param::Int(to_millis(now)));
            sql.push_str(&format!(
                "{LIVE_GIVEN} AND c.valid_until IS NOT NULL AND c.valid_until <= {p}"
            ));
        }
        Some(ConsentState::Given) => {
            let p = arg(&mut params, Param::Int(to_millis(now)));
            sql.push_str(&format!(
                "{LIVE_GIVEN} AND (c.valid_until IS NULL OR c.valid_until > {p})"
            ));
        }
    }
    if let Some(since) = filter.since {
        let p = arg(&mut params, Param::Int(to_millis(since)));
        sql.push_str(&format!(" AND c.created_at >= {p}"));
    }
    if let Some(until) = filter.until {
        let p = arg(&mut params, Param::Int(to_millis(until)));
        sql.push_str(&format!(" AND c.created_at < {p}"));
    }
    if let Some((at, id)) = after {
        let at = arg(&mut params, Param::Int(at));
        let id = arg(&mut params, Param::Text(id));
        sql.push_str(&format!(
            " AND (c.created_at > {at} OR (c.created_at = {at} AND c.id > {id}))"
        ));
    }
    sql.push_str(&format!(" ORDER BY c.created_at, c.id LIMIT {limit}"));
    let rows = bind_all(&sql, params).fetch_all(conn).await?;
    rows.iter().map(record_from_row).collect()
}

impl RecordRow {
    /// The state shown at `now`.
    pub fn state(&self, now: OffsetDateTime) -> ConsentState {
        self.scope.state(now)
    }
}
