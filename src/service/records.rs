//! An agency's consent records: upload one, list and read its own, fetch a record's
//! countersigned receipt, and render its contact as PNR SSR lines (the API's
//! `/v1/consents` and the agency's pages).
//!
//! Every read is scoped to the calling agency: another agency's record id reads as
//! unknown (404), exactly like an id that does not exist.

use crate::crypto::countersign::Countersigned;
use crate::crypto::jws;
use crate::domain::ids::hex;
use crate::domain::party::Party;
use crate::domain::scope::ConsentState;
use crate::domain::time::format_time;
use crate::service::input::{decode_cursor, encode_cursor, page_limit};
use crate::service::sealed::open_statement;
use crate::service::AppState;
use crate::service::{Error, ErrorKind};
use crate::store::records::{RecordFilter, RecordRow};
use crate::store::Conn;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub(crate) fn stored_receipt(row: &RecordRow) -> Result<Countersigned, Error> {
    let text = row.receipt.as_deref().ok_or_else(|| {
        Error::new(
            ErrorKind::ConsentNotFound,
            "This record was stored before the broker issued receipts; it has none.",
        )
    })?;
    serde_json::from_str(text).map_err(|e| Error::internal(format!("stored receipt: {e}")))
}

/// A record as its agency reads it. No contact value: those are in `statement`,
/// which only the single-record read carries.
#[derive(Serialize, Deserialize, Debug)]
pub struct RecordView {
    /// The broker's id.
    pub consent_id: String,
    /// The agency's id, and the version among records sharing it.
    pub record_id: String,
    /// Version.
    pub version: i64,
    /// given, refused, withdrawn, expired or superseded.
    pub state: ConsentState,
    /// given or refused.
    pub decision: String,
    /// The booking and its locator.
    pub booking_id: String,
    /// The record locator.
    pub record_locator: String,
    /// The traveller's pseudonymous id.
    pub traveller_id: String,
    /// Statement schema.
    pub schema_version: String,
    /// Purposes.
    pub purposes: Vec<String>,
    /// mobile, email.
    pub data_categories: Vec<String>,
    /// `named` or `itinerary`.
    pub recipients: String,
    /// The carriers that may receive the contact.
    pub carriers: Vec<String>,
    /// Jurisdiction.
    pub jurisdiction: String,
    /// When the traveller decided.
    pub collected_at: String,
    /// End of validity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    /// The notice shown.
    pub notice: serde_json::Value,
    /// How it was collected.
    pub collection_method: String,
    /// The agency key that signed it.
    pub key_id: String,
    /// SHA-256 of the canonical statement, hex.
    pub statement_sha256: String,
    /// When the broker stored it.
    pub recorded_at: String,
    /// The record that replaced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    /// When it was withdrawn, and by whom (agency or traveller).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawn_at: Option<String>,
    /// Who withdrew it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawn_by: Option<String>,
    /// When its contact is (or was) destroyed.
    pub purge_after: String,
    /// When it was destroyed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purged_at: Option<String>,
}

impl RecordView {
    fn of(row: &RecordRow, now: OffsetDateTime) -> Self {
        Self {
            consent_id: row.id.clone(),
            record_id: row.agency_record_id.clone(),
            version: row.version,
            state: row.state(now),
            decision: row.scope.decision.as_str().into(),
            booking_id: row.booking_id.clone(),
            record_locator: row.record_locator.clone(),
            traveller_id: row.traveller_id.clone(),
            schema_version: row.schema_version.clone(),
            purposes: row
                .scope
                .purposes
                .iter()
                .map(|p| p.as_str().into())
                .collect(),
            data_categories: row
                .data_categories
                .iter()
                .map(|c| c.as_str().into())
                .collect(),
            recipients: row.recipients.clone(),
            carriers: row
                .scope
                .carriers
                .iter()
                .map(|c| c.as_str().into())
                .collect(),
            jurisdiction: row.jurisdiction.clone(),
            collected_at: format_time(row.collected_at),
            valid_until: row.scope.valid_until.map(format_time),
            notice: serde_json::json!({
                "version": row.notice.0, "language": row.notice.1, "sha256": row.notice.2,
            }),
            collection_method: row.collection_method.clone(),
            key_id: row.key_id.clone(),
            statement_sha256: hex(&row.statement_sha256),
            recorded_at: format_time(row.created_at),
            superseded_by: row.superseded_by.clone(),
            withdrawn_at: row.withdrawn.as_ref().map(|(at, _)| format_time(*at)),
            withdrawn_by: row.withdrawn.as_ref().map(|(_, by)| by.clone()),
            purge_after: format_time(row.purge_after),
            purged_at: row.purged_at.map(format_time),
        }
    }
}

/// Query parameters of the listing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this booking.
    pub record_locator: Option<String>,
    /// Only this traveller.
    pub traveller_id: Option<String>,
    /// Only the versions of this agency record id.
    pub record_id: Option<String>,
    /// Only records in this state.
    pub state: Option<ConsentState>,
    /// Stored at or after (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    /// Stored before (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    /// The previous page's `next_after`.
    pub after: Option<String>,
    /// 1 to 1000, default 100.
    pub limit: Option<i64>,
}

/// A page of records.
#[derive(Serialize, Deserialize, Debug)]
pub struct RecordPage {
    /// Records, oldest first.
    pub records: Vec<RecordView>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// Most records in one page.
pub const MAX_PAGE: i64 = 1000;

/// Lists the calling agency's records, filtered, a page at a time.
pub async fn list(state: &AppState, agency: &Party, query: ListQuery) -> Result<RecordPage, Error> {
    let limit = page_limit(query.limit, 100, MAX_PAGE)?;
    let after = query.after.as_deref().map(decode_cursor).transpose()?;
    let filter = RecordFilter {
        record_locator: query.record_locator.map(|l| l.to_ascii_uppercase()),
        traveller_id: query.traveller_id,
        agency_record_id: query.record_id,
        state: query.state,
        since: query.since,
        until: query.until,
    };
    let now = state.clock.now();
    let mut conn = state.store.reader().acquire().await?;
    let rows =
        crate::store::records::list(&mut conn, &agency.id, &filter, after, limit + 1, now).await?;
    let more = rows.len() as i64 > limit;
    let rows = &rows[..rows.len().min(limit as usize)];
    let next_after = rows
        .last()
        .filter(|_| more)
        .map(|r| encode_cursor(crate::store::to_millis(r.created_at), &r.id));
    Ok(RecordPage {
        records: rows.iter().map(|r| RecordView::of(r, now)).collect(),
        next_after,
    })
}

/// One record with its signed statement (while not purged) and a fresh check of the
/// agency's signature, which still verifies after the key that made it is revoked.
#[derive(Serialize, Deserialize, Debug)]
pub struct RecordDetail {
    /// The record.
    #[serde(flatten)]
    pub record: RecordView,
    /// The signed statement (with the traveller's name and contacts); absent once
    /// purged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<serde_json::Value>,
    /// The agency's detached JWS.
    pub signature: String,
    /// Whether the signature verifies now, and the state of the key that made it.
    pub signature_check: serde_json::Value,
}

/// Reads one of the agency's records.
pub async fn read(state: &AppState, agency: &Party, id: String) -> Result<RecordDetail, Error> {
    let mut conn = state.store.reader().acquire().await?;
    let row = own_record(&mut conn, &agency.id, &id).await?;
    let sealed = crate::store::sealed::sealed(&mut conn, &row.id).await?;
    let statement = open_statement(state, &row.id, &sealed)?;
    let key =
        crate::store::agency_keys::agency_key_any_state(&mut conn, &agency.id, &row.key_id).await?;
    let verified = match (&statement, &key) {
        (Some(bytes), Some(key)) => {
            let jws = jws::parse(&row.signature)
                .map_err(|e| Error::internal(format!("stored signature: {e}")))?;
            Some(jws.verify(&key.public_key, bytes).is_ok())
        }
        _ => None,
    };
    let signature_check = serde_json::json!({
        "key_id": row.key_id,
        "key_state": match &key {
            Some(k) if k.revoked_at.is_some() => "revoked",
            Some(_) => "live",
            None => "unknown",
        },
        "verified": verified,
    });
    let statement = statement
        .map(|bytes| serde_json::from_slice(&bytes))
        .transpose()
        .map_err(|e| Error::internal(format!("stored statement: {e}")))?;
    Ok(RecordDetail {
        record: RecordView::of(&row, state.clock.now()),
        statement,
        signature: row.signature.clone(),
        signature_check,
    })
}

/// The countersigned receipt of one of the agency's records.
pub async fn receipt(state: &AppState, agency: &Party, id: String) -> Result<Countersigned, Error> {
    let mut conn = state.store.reader().acquire().await?;
    let row = own_record(&mut conn, &agency.id, &id).await?;
    stored_receipt(&row)
}

/// The agency's own record, or 404.
pub(crate) async fn own_record(
    conn: &mut Conn,
    agency_id: &str,
    id: &str,
) -> Result<RecordRow, Error> {
    crate::store::records::get(conn, agency_id, id)
        .await?
        .ok_or_else(|| Error::of(ErrorKind::ConsentNotFound))
}
