//! `POST /v1/release-tokens`: an airline asks for a token to reach one traveller.

use super::extract::{AirlineCaller, ApiJson, RequestId};
use super::problem::{Problem, ProblemKind};
use super::AppState;
use crate::audit::{format_time, Action, NewEntry, Outcome};
use crate::crypto::seal::TRAVELLER_NAME_INDEX;
use crate::crypto::secret;
use crate::domain::booking::{CarrierCode, Flight, RecordLocator};
use crate::domain::party::Party;
use crate::domain::purpose::{Event, Purpose};
use crate::domain::traveller::TravellerName;
use crate::policy::{self, Refusal};
use crate::store::consents::{self, FlightTraveller};
use crate::store::tokens::{self, TokenRecord};
use crate::store::Tx;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The prefix of release tokens.
pub const TOKEN_PREFIX: &str = "pas_token_";

/// What the airline asks for.
#[derive(Deserialize, Serialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The booking's record locator.
    pub record_locator: RecordLocator,
    /// The traveller, by name as in the PNR.
    pub traveller: TravellerName,
    /// The airline's flight the traveller is booked on.
    pub flight: Flight,
    /// The notification the airline will send.
    pub purpose: Purpose,
    /// The event behind it.
    pub event: Event,
}

/// A granted token.
#[derive(Serialize, Deserialize, Debug)]
pub struct TokenGranted {
    /// The token: opaque, single use, shown once.
    pub token: String,
    /// Its public id, as audit entries name it.
    pub token_id: String,
    /// When it stops working.
    pub expires_at: String,
    /// The purpose it is bound to.
    pub purpose: Purpose,
    /// Index of the audit entry that records the grant.
    pub audit_index: i64,
}

/// Decides on the request and, if allowed, issues a token; either way it is audited.
pub async fn request(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AirlineCaller(airline): AirlineCaller,
    ApiJson(request): ApiJson<TokenRequest>,
) -> Result<(StatusCode, Json<TokenGranted>), Problem> {
    let now = state.clock.now();
    let mut entry = NewEntry::new(
        now,
        &request_id,
        &airline,
        Action::TokenRequest,
        Outcome::Granted,
    );
    entry.entry.airline_id = Some(airline.id.clone());
    entry.entry.purpose = Some(request.purpose.as_str().to_string());
    entry.entry.event_category = Some(request.event.category.as_str().to_string());
    entry.entry.event_reference = Some(request.event.reference.as_str().to_string());
    entry.entry.flight = Some(request.flight.label());

    let mut tx = state.store.begin().await?;
    let traveller = match decide(&state, &mut tx, &airline, &request, now).await? {
        Decision::Grant(traveller) => traveller,
        Decision::Refuse(refusal, found) => {
            if let Some(found) = found {
                name_subjects(&mut entry, &found);
            }
            return Err(state
                .refuse(
                    tx,
                    entry.refused(refusal.reason()),
                    refusal_problem(refusal),
                )
                .await);
        }
    };
    name_subjects(&mut entry, &traveller);
    let (consent_id, _) = traveller
        .consent
        .as_ref()
        .expect("a granted request has a consent");
    let issued = secret::issue(TOKEN_PREFIX);
    let expires_at = now + state.settings.token_ttl;
    let record = TokenRecord {
        id: issued.id.clone(),
        secret_hash: issued.hash.to_vec(),
        airline_id: airline.id.clone(),
        agency_id: traveller.agency_id.clone(),
        consent_id: consent_id.clone(),
        traveller_id: traveller.traveller_id.clone(),
        booking_id: traveller.booking_id.clone(),
        purpose: request.purpose.as_str().to_string(),
        event_category: request.event.category.as_str().to_string(),
        event_reference: request.event.reference.as_str().to_string(),
        flight: request.flight.label(),
        issued_at: now,
        expires_at,
        used_at: None,
    };
    tokens::insert(&mut tx, &record).await?;
    entry.entry.token_id = Some(issued.id.clone());
    let audit_index = state.commit_with_audit(tx, entry).await?;
    let granted = TokenGranted {
        token: issued.plaintext,
        token_id: issued.id,
        expires_at: format_time(expires_at),
        purpose: request.purpose,
        audit_index,
    };
    Ok((StatusCode::CREATED, Json(granted)))
}

/// The outcome of the release rules.
enum Decision {
    /// Grant a token for this traveller.
    Grant(FlightTraveller),
    /// Refuse; the traveller, when one was found, so the refusal is audited against
    /// the agency's client.
    Refuse(Refusal, Option<FlightTraveller>),
}

/// Applies the release rules in order (see `policy`).
async fn decide(
    state: &AppState,
    tx: &mut Tx,
    airline: &Party,
    request: &TokenRequest,
    now: OffsetDateTime,
) -> Result<Decision, Problem> {
    if let Err(refusal) = policy::purpose_is_operational(request.purpose) {
        return Ok(Decision::Refuse(refusal, None));
    }
    let designator = airline
        .code
        .as_deref()
        .and_then(|c| CarrierCode::parse(c).ok());
    let Some(designator) = designator.filter(|d| *d == request.flight.carrier) else {
        return Ok(Decision::Refuse(Refusal::BookingNotFound, None));
    };
    let name_index = state
        .keys
        .keys()
        .root()
        .blind_index(TRAVELLER_NAME_INDEX, &request.traveller.pnr_form());
    let mut found =
        consents::find_on_flight(tx, &request.record_locator, &name_index, &request.flight).await?;
    if found.len() > 1 {
        return Ok(Decision::Refuse(Refusal::AmbiguousTraveller, None));
    }
    let Some(traveller) = found.pop() else {
        return Ok(Decision::Refuse(Refusal::BookingNotFound, None));
    };
    let scope = traveller.consent.as_ref().map(|(_, scope)| scope);
    Ok(
        match policy::consent_allows(scope, &designator, request.purpose, now) {
            Ok(()) => Decision::Grant(traveller),
            Err(refusal) => Decision::Refuse(refusal, Some(traveller)),
        },
    )
}

fn name_subjects(entry: &mut NewEntry, traveller: &FlightTraveller) {
    entry.entry.agency_id = Some(traveller.agency_id.clone());
    entry.entry.booking_id = Some(traveller.booking_id.clone());
    entry.entry.traveller_id = Some(traveller.traveller_id.clone());
    entry.entry.consent_id = traveller.consent.as_ref().map(|(id, _)| id.clone());
}

/// The problem an airline gets for a refusal. Not carrying the booking and the booking
/// not existing read the same, so an airline learns nothing of bookings it does not fly.
pub fn refusal_problem(refusal: Refusal) -> Problem {
    let (kind, detail) = match refusal {
        Refusal::PurposeNotOperational => (ProblemKind::PurposeNotOperational, "Contacts are released only for operational notifications (IATA Resolution 830d), never for marketing."),
        Refusal::BookingNotFound => (ProblemKind::BookingNotFound, "No traveller of that name on a booking with that locator holds that flight of yours."),
        Refusal::AmbiguousTraveller => (ProblemKind::AmbiguousTraveller, "More than one booking matches; ask the agency."),
        Refusal::NoConsent => (ProblemKind::NoConsent, "The agency holds no consent for this traveller."),
        Refusal::CarrierNotCovered => (ProblemKind::ConsentDoesNotCover, "The traveller's consent does not name your airline."),
        Refusal::PurposeNotCovered => (ProblemKind::ConsentDoesNotCover, "The traveller's consent does not include this purpose."),
        Refusal::ConsentRefused => (ProblemKind::ConsentRefused, "The traveller declined to give a contact (CTCR); the agency recorded the refusal."),
        Refusal::ConsentWithdrawn => (ProblemKind::ConsentInactive, "The traveller's consent was withdrawn."),
        Refusal::ConsentExpired => (ProblemKind::ConsentInactive, "The traveller's consent has expired."),
        Refusal::ConsentSuperseded => (ProblemKind::ConsentInactive, "The consent this token was granted under has been replaced."),
        Refusal::TokenNotFound => (ProblemKind::TokenNotFound, "No such release token was issued to your airline."),
        Refusal::TokenUsed => (ProblemKind::TokenUsed, "This release token was used already; ask for a new one."),
        Refusal::TokenExpired => (ProblemKind::TokenExpired, "This release token expired; ask for a new one."),
    };
    Problem::new(kind, detail).with_rule(refusal.rule())
}
