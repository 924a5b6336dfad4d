//! One signed statement uploaded on its own (the API's `POST /v1/consents`): checked,
//! verified and stored with its audit entry and receipt like a batch of one; a
//! refusal is audited, and re-sending a stored statement answers with the record.

use crate::crypto::countersign::Countersigned;
use crate::domain::party::Party;
use crate::service::ingest::{self, RecordOutcome, Submission, Uploader};
use crate::service::records::stored_receipt;
use crate::service::{AppState, Error};
use serde::{Deserialize, Serialize};

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
    let write = ingest::StoreVerified {
        state: state.clone(),
        uploader,
        chunks: vec![verified],
    };
    // A refused signature's entry is appended in the same write.
    let mut written = state.write_audited(write).await?;
    let result = written.output.pop().expect("one submission, one result");
    match result.outcome {
        RecordOutcome::Rejected(problem) => Err(problem),
        RecordOutcome::Duplicate { consent_id } => {
            let mut conn = state.store.reader().acquire().await?;
            let row = crate::store::records::get(&mut conn, &agency.id, &consent_id)
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
            if !stored.supersedes.is_empty() {
                let traveller = [stored.traveller_id.as_str()];
                crate::service::erasures::after_upload(state, request_id, &traveller).await;
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
