//! An agency's consent records: upload one, list and read its own, fetch a record's
//! countersigned receipt, and render its contact as PNR SSR lines (the API's
//! `/v1/consents` and the agency's pages).
//!
//! Every read is scoped to the calling agency: another agency's record id reads as
//! unknown (404), exactly like an id that does not exist.

use crate::crypto::countersign::Countersigned;
use crate::crypto::jws;
use crate::domain::consent::ConsentState;
use crate::domain::contact::{EmailAddress, MobileNumber};
use crate::domain::ids::hex;
use crate::domain::language::Language;
use crate::domain::party::Party;
use crate::domain::ssr::{self, ContactElement, ContactValue, Gds};
use crate::domain::time::format_time;
use crate::service::ingest::{self, RecordOutcome, Submission, Uploader};
use crate::service::input::page_limit;
use crate::service::sealed::{open_contacts, open_statement};
use crate::service::AppState;
use crate::service::{Error, ErrorKind};
use crate::store::consents::{self, RecordFilter, RecordRow};
use crate::store::{parties, Conn};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The request body: the statement and the agency's detached JWS over its canonical
/// (RFC 8785) form.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedStatement {
    /// The consent statement, as signed.
    pub statement: serde_json::Value,
    /// Detached compact JWS: `header..signature`.
    pub signature: String,
}

/// What became of one uploaded record.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Recorded {
    /// Stored now.
    Stored,
    /// The same statement was stored before; nothing changed.
    Duplicate,
}

/// What the agency gets back for one upload.
#[derive(Serialize, Deserialize, Debug)]
pub struct ConsentRecorded {
    /// `stored`, or `duplicate` when the same statement was stored before.
    pub outcome: Recorded,
    /// The record.
    pub consent_id: String,
    /// The agency's record id.
    pub record_id: String,
    /// Its version among records with that agency record id.
    pub version: i64,
    /// `given` or `refused`.
    pub decision: String,
    /// The booking it belongs to.
    pub booking_id: String,
    /// The traveller it concerns (stable across uploads for the same traveller).
    pub traveller_id: String,
    /// Earlier records for this traveller that this one replaced.
    pub supersedes: Vec<String>,
    /// The key id that signed it.
    pub key_id: String,
    /// Index of the audit entry that records the upload (absent for a duplicate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_index: Option<i64>,
    /// The code the traveller withdraws with: shown once, only when stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawal_code: Option<String>,
    /// The traveller's page, opened by the code: the short link to print for them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traveller_page: Option<String>,
    /// The broker's countersigned receipt.
    pub receipt: Countersigned,
}

/// Checks one statement and its signature, seals the personal data and stores it with
/// its audit entry and receipt. Re-sending a stored statement answers 200 with the
/// record already stored.
pub async fn upload(
    state: &AppState,
    request_id: &str,
    agency: &Party,
    body: SignedStatement,
) -> Result<ConsentRecorded, Error> {
    let uploader = Uploader::new(state, agency, request_id).await?;
    let submission = Submission {
        statement: body.statement,
        signature: Some(body.signature),
    };
    let verified = ingest::verify(state, &uploader, vec![submission]).await?;
    let mut tx = state.store.begin().await?;
    let mut batch = ingest::process(state, &uploader, &mut tx, verified).await?;
    let result = batch.results.pop().expect("one submission, one result");
    match result.outcome {
        RecordOutcome::Rejected(problem) => {
            let Some(refusal) = batch.refusals.pop() else {
                return Err(problem);
            };
            Err(state.refuse(tx, refusal, problem).await)
        }
        RecordOutcome::Duplicate { consent_id } => {
            tx.rollback().await.ok();
            let mut conn = state.store.reader().acquire().await?;
            let row = consents::get(&mut conn, &agency.id, &consent_id)
                .await?
                .ok_or_else(|| Error::internal("duplicate vanished"))?;
            let recorded = ConsentRecorded {
                outcome: Recorded::Duplicate,
                consent_id: row.id.clone(),
                record_id: row.agency_record_id.clone(),
                version: row.version,
                decision: row.scope.decision.as_str().into(),
                booking_id: row.booking_id.clone(),
                traveller_id: row.traveller_id.clone(),
                supersedes: Vec::new(),
                key_id: row.key_id.clone(),
                audit_index: None,
                withdrawal_code: None,
                traveller_page: None,
                receipt: stored_receipt(&row)?,
            };
            Ok(recorded)
        }
        RecordOutcome::Stored(stored) => {
            state.commit_audited(tx).await?;
            for (action, outcome, reason) in batch.appended {
                state.metrics.observe_decision(action, outcome, reason);
            }
            let recorded = ConsentRecorded {
                outcome: Recorded::Stored,
                consent_id: stored.consent_id,
                record_id: result.record_id.unwrap_or_default(),
                version: stored.version,
                decision: stored.decision.as_str().into(),
                booking_id: stored.booking_id,
                traveller_id: stored.traveller_id,
                supersedes: stored.supersedes,
                key_id: stored.key_id,
                audit_index: Some(stored.audit_index),
                traveller_page: stored
                    .withdrawal_code
                    .as_ref()
                    .map(|_| crate::service::settings::page_link(&state.settings.public_url)),
                withdrawal_code: stored.withdrawal_code,
                receipt: stored.receipt,
            };
            Ok(recorded)
        }
    }
}

fn stored_receipt(row: &RecordRow) -> Result<Countersigned, Error> {
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
    let rows = consents::list(&mut conn, &agency.id, &filter, after, limit + 1, now).await?;
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

fn encode_cursor(at: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{at}.{id}"))
}

fn decode_cursor(cursor: &str) -> Result<(i64, String), Error> {
    let bad = || {
        Error::field(
            ErrorKind::InvalidField,
            "after",
            "is not a cursor this broker gave out (use the previous page's next_after)",
        )
    };
    let text = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(text).map_err(|_| bad())?;
    let (at, id) = text.split_once('.').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.to_string()))
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
    let key = parties::agency_key_any_state(&mut conn, &agency.id, &row.key_id).await?;
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

/// Query of the SSR rendering.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsrQuery {
    /// amadeus, sabre, travelport or travelsky.
    pub gds: Gds,
    /// The passenger association in that GDS's form (`P1`, `1.1`).
    pub passenger: Option<String>,
    /// The preferred language to append (`fr`).
    pub language: Option<Language>,
}

/// Renders the record's contact (or refusal) as the SSR lines of a GDS, so that the
/// agency can key into its PNR exactly what the traveller agreed to.
pub async fn export_ssr(
    state: &AppState,
    agency: &Party,
    id: String,
    query: SsrQuery,
) -> Result<String, Error> {
    if let Some(p) = &query.passenger {
        let ok =
            (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.');
        if !ok {
            return Err(Error::field(
                ErrorKind::InvalidField,
                "passenger",
                "must be a passenger association such as P1 or 1.1",
            ));
        }
    }
    let mut conn = state.store.reader().acquire().await?;
    let row = own_record(&mut conn, &agency.id, &id).await?;
    let now = state.clock.now();
    let state_now = row.state(now);
    let values = match state_now {
        ConsentState::Refused => vec![ContactValue::Refused],
        ConsentState::Given => {
            let sealed = crate::store::sealed::sealed(&mut conn, &row.id).await?;
            let contacts = open_contacts(state, &row.id, &sealed)?
                .ok_or_else(|| Error::of(ErrorKind::ContactPurged))?;
            let mut values = Vec::new();
            if let Some(m) = contacts.mobile {
                values.push(ContactValue::Mobile(
                    MobileNumber::parse(&m).map_err(Error::internal)?,
                ));
            }
            if let Some(e) = contacts.email {
                values.push(ContactValue::Email(
                    EmailAddress::parse(&e).map_err(Error::internal)?,
                ));
            }
            values
        }
        other => {
            return Err(Error::new(
                ErrorKind::ConsentInactive,
                format!(
                    "The record is {}; only a current consent or refusal renders as SSR.",
                    other.as_str()
                ),
            ))
        }
    };
    let mut lines = String::new();
    for value in values {
        let element = ContactElement {
            value,
            language: query.language.clone(),
            passenger: query.passenger.clone(),
            carrier: None,
        };
        let line = ssr::render(query.gds, &element).map_err(|reason| {
            Error::new(
                ErrorKind::InvalidField,
                format!("The contact cannot be written as SSR: {reason}."),
            )
        })?;
        lines.push_str(&line);
        lines.push('\n');
    }
    Ok(lines)
}

/// The agency's own record, or 404.
async fn own_record(conn: &mut Conn, agency_id: &str, id: &str) -> Result<RecordRow, Error> {
    consents::get(conn, agency_id, id)
        .await?
        .ok_or_else(|| Error::of(ErrorKind::ConsentNotFound))
}
