//! `POST /v1/consents`: an agency uploads a signed consent with the traveller's contacts.

use super::extract::{parse_value, AgencyCaller, ApiJson, RequestId};
use super::problem::{Problem, ProblemKind};
use super::AppState;
use crate::audit::{Action, NewEntry, Outcome};
use crate::crypto::seal::{Slot, TRAVELLER_NAME_INDEX};
use crate::crypto::{canonical, jws};
use crate::domain::consent::ConsentStatement;
use crate::domain::ids::{new_id, CONSENT};
use crate::domain::party::{IataAgencyNumber, Party};
use crate::store::{consents, parties, Tx};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
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

/// What the agency gets back.
#[derive(Serialize, Deserialize, Debug)]
pub struct ConsentRecorded {
    /// The new consent record.
    pub consent_id: String,
    /// The booking it belongs to.
    pub booking_id: String,
    /// The traveller it concerns (stable across uploads for the same traveller).
    pub traveller_id: String,
    /// Earlier records for this traveller that this one replaces.
    pub supersedes: Vec<String>,
    /// The key id that signed it.
    pub key_id: String,
    /// Index of the audit entry that records the upload.
    pub audit_index: i64,
}

/// Checks the statement and its signature, seals the personal data and stores it
/// with its audit entry.
pub async fn upload(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AgencyCaller(agency): AgencyCaller,
    ApiJson(body): ApiJson<SignedStatement>,
) -> Result<(StatusCode, Json<ConsentRecorded>), Problem> {
    let statement: ConsentStatement = parse_value(&body.statement, "statement")?;
    let now = state.clock.now();
    statement
        .check(&agency_number(&agency)?, now)
        .map_err(|e| {
            let kind = if e.non_operational_purpose {
                ProblemKind::PurposeNotOperational
            } else {
                ProblemKind::InvalidField
            };
            Problem::field(kind, format!("statement.{}", e.field), e.reason)
        })?;
    let signature = jws::parse(&body.signature)
        .map_err(|e| Problem::field(ProblemKind::MalformedSignature, "signature", e.to_string()))?;

    let mut tx = state.store.begin().await?;
    let entry = NewEntry::new(
        now,
        &request_id,
        &agency,
        Action::ConsentUpload,
        Outcome::Recorded,
    );
    let Some(public_key) = parties::agency_key(&mut tx, &agency.id, &signature.kid).await? else {
        let problem = Problem::field(
            ProblemKind::UnknownKeyId,
            "signature",
            format!(
                "no live key `{}` is registered to your agency",
                signature.kid
            ),
        );
        return Err(state
            .refuse(tx, entry.refused("unknown_key_id"), problem)
            .await);
    };
    if signature
        .verify(&public_key, &canonical::to_vec(&body.statement))
        .is_err()
    {
        let problem = Problem::field(
            ProblemKind::BadSignature,
            "signature",
            format!(
                "does not verify under key `{}` over the canonical (RFC 8785) statement",
                signature.kid
            ),
        );
        return Err(state
            .refuse(tx, entry.refused("bad_signature"), problem)
            .await);
    }

    let stored = store_consent(&state, &mut tx, &agency, &statement, &body, &signature.kid).await?;
    let mut entry = entry;
    entry.entry.agency_id = Some(agency.id.clone());
    entry.entry.booking_id = Some(stored.booking_id.clone());
    entry.entry.traveller_id = Some(stored.traveller_id.clone());
    entry.entry.consent_id = Some(stored.consent_id.clone());
    let audit_index = state.commit_with_audit(tx, entry).await?;
    let recorded = ConsentRecorded {
        consent_id: stored.consent_id,
        booking_id: stored.booking_id,
        traveller_id: stored.traveller_id,
        supersedes: stored.supersedes,
        key_id: signature.kid,
        audit_index,
    };
    Ok((StatusCode::CREATED, Json(recorded)))
}

fn agency_number(agency: &Party) -> Result<IataAgencyNumber, Problem> {
    let code = agency.code.as_deref().unwrap_or_default();
    IataAgencyNumber::parse(code)
        .map_err(|_| Problem::internal(format!("agency {} has no valid IATA number", agency.id)))
}

/// The ids of what `store_consent` wrote.
struct StoredConsent {
    consent_id: String,
    booking_id: String,
    traveller_id: String,
    supersedes: Vec<String>,
}

/// Stores booking, segments, traveller and consent, sealing the name, the contacts and
/// the signed statement for their rows.
async fn store_consent(
    state: &AppState,
    tx: &mut Tx,
    agency: &Party,
    statement: &ConsentStatement,
    body: &SignedStatement,
    kid: &str,
) -> Result<StoredConsent, Problem> {
    let now = state.clock.now();
    let key = &state.data_key;
    let booking_id =
        consents::upsert_booking(tx, &agency.id, &statement.booking.record_locator, now).await?;
    consents::add_segments(tx, &booking_id, &statement.booking.segments).await?;
    let name = statement.traveller.name();
    let name_index = key.blind_index(TRAVELLER_NAME_INDEX, &name.pnr_form());
    let full_name = format!("{}/{}", name.surname.as_str(), name.given_name.as_str());
    let seal_name = |row_id: &str| {
        key.seal(
            Slot {
                table: "travellers",
                column: "name",
                row_id,
            },
            full_name.as_bytes(),
        )
    };
    let traveller_id =
        consents::upsert_traveller(tx, &booking_id, &name_index, seal_name, now).await?;

    let consent_id = new_id(CONSENT);
    let slot = |column| Slot {
        table: "consents",
        column,
        row_id: &consent_id,
    };
    let terms = &statement.consent;
    let supersedes = consents::insert(
        tx,
        consents::NewConsent {
            id: &consent_id,
            traveller_id: &traveller_id,
            agency_id: &agency.id,
            purposes: &terms.purposes,
            carriers: &terms.carriers,
            collected_at: terms.collected_at,
            valid_until: terms.valid_until,
            notice_version: terms.notice_version.as_str(),
            collection_method: terms.collection_method.as_str(),
            key_id: kid,
            signature: &body.signature,
            sealed_statement: key.seal(slot("statement"), &canonical::to_vec(&body.statement)),
            sealed_mobile: statement
                .traveller
                .mobile
                .as_ref()
                .map(|m| key.seal(slot("mobile"), m.as_str().as_bytes())),
            sealed_email: statement
                .traveller
                .email
                .as_ref()
                .map(|e| key.seal(slot("email"), e.as_str().as_bytes())),
            now,
        },
    )
    .await?;
    Ok(StoredConsent {
        consent_id,
        booking_id,
        traveller_id,
        supersedes,
    })
}
