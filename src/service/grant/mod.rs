//! Granting release tokens: an airline asks for one traveller or for a whole flight at
//! once (the API's `POST /v1/release-tokens` and `POST /v1/flights/release-tokens`).
//!
//! Every question goes to the Cedar policies (`policy::engine`): first whether this
//! airline may ask about this flight for this purpose at all, then, for each traveller,
//! whether it may have their token. Each traveller's grant or refusal is its own audit
//! entry naming the policies that decided it. A token records the airline, purpose,
//! event, traveller, channels, expiry and uses left; it never outlives its consent.

mod decide;
mod flight;
mod single;

pub use decide::traveller_facts;
use decide::{context, decide_and_issue, grant_question};
pub(crate) use flight::{grant_flight, prepare_flight, FlightGrant};
pub use single::request;

use crate::audit::{Action, NewEntry, Outcome};
use crate::crypto::seal::TRAVELLER_NAME_INDEX;
use crate::crypto::secret;
use crate::domain::booking::{Flight, RecordLocator};
use crate::domain::delivery::{Channel, Delivery};
use crate::domain::disruption::{Disruption, DisruptionId};
use crate::domain::party::Party;
use crate::domain::purpose::Purpose;
use crate::domain::time::format_time;
use crate::domain::traveller::TravellerName;
use crate::policy::facts::{
    AirlineFacts, ReleaseContext, TravellerAction, TravellerFacts, Verdict,
};
use crate::policy::Refusal;
use crate::service::budgets;
use crate::service::ratelimit::Budget as RateBudget;
use crate::service::refusal::{refusal_problem, rule_name};
use crate::service::AppState;
use crate::service::{Error, ErrorKind};
use crate::store::budgets::{Budget, Charged};
use crate::store::consents;
use crate::store::db::Db;
use crate::store::disruptions::{self, Seen};
use crate::store::release::{self, ReleaseFacts};
use crate::store::tokens::{self, TokenRecord};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use std::time::Instant;
use time::OffsetDateTime;

/// The prefix of release tokens.
pub const TOKEN_PREFIX: &str = "pas_token_";

/// What the airline asks for one traveller.
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
    /// The disruption the airline declared that carries the flight.
    pub disruption_id: DisruptionId,
    /// The channels wanted (default: every channel the traveller gave).
    #[serde(default)]
    pub channels: Option<Vec<Channel>>,
}

/// What the airline asks for a whole flight.
#[derive(Deserialize, Serialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct FlightTokenRequest {
    /// The flight, one of the airline's.
    pub flight: Flight,
    /// The notification the airline will send.
    pub purpose: Purpose,
    /// The disruption the airline declared that carries the flight.
    pub disruption_id: DisruptionId,
    /// The channels wanted (default: every channel each traveller gave).
    #[serde(default)]
    pub channels: Option<Vec<Channel>>,
}

/// A granted token.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct TokenGranted {
    /// The token: opaque, shown once.
    pub token: String,
    /// Its public id, as audit entries name it.
    pub token_id: String,
    /// The traveller it reaches (pseudonymous id).
    pub traveller_id: String,
    /// The booking's record locator.
    pub record_locator: String,
    /// The channels it covers.
    pub channels: Vec<Channel>,
    /// `reveal`: redeem it at `/v1/releases` for the contact; `relay`: send messages
    /// through `/v1/messages`, the contact is never revealed.
    pub delivery: Delivery,
    /// Uses it has: one reveal, or this many relayed messages.
    pub uses: i64,
    /// When it stops working (never later than the consent's end).
    pub expires_at: String,
    /// The purpose it is bound to.
    pub purpose: Purpose,
    /// Index of the audit entry that records the grant.
    pub audit_index: i64,
}

/// A traveller of the flight who gets no token, and why.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct TokenRefused {
    /// The traveller (pseudonymous id).
    pub traveller_id: String,
    /// The booking's record locator.
    pub record_locator: String,
    /// The stable reason code.
    pub reason: String,
    /// The problem type a single request would have been answered with.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// The rule (policy `@id`) that decided.
    pub rule: String,
    /// Index of the audit entry that records the refusal.
    pub audit_index: i64,
}

/// Counts of a flight's answer.
#[derive(Serialize, Deserialize, Debug, Clone, Copy)]
pub struct FlightCounts {
    /// Travellers of the flight in the broker.
    pub travellers: usize,
    /// Tokens granted.
    pub granted: usize,
    /// Travellers refused.
    pub refused: usize,
}

/// The answer for a whole flight.
#[derive(Serialize, Deserialize, Debug)]
pub struct FlightTokens {
    /// The flight.
    pub flight: String,
    /// The purpose asked.
    pub purpose: Purpose,
    /// One token per traveller whose consent allows it.
    pub granted: Vec<TokenGranted>,
    /// Every other traveller of the flight, with the reason.
    pub refused: Vec<TokenRefused>,
    /// Totals.
    pub counts: FlightCounts,
}

/// What a grant asks, owned, so that it can be decided on other threads and written
/// by the writer.
struct Asked {
    flight: Flight,
    purpose: Purpose,
    disruption: Disruption,
    channels: Option<Vec<Channel>>,
}

impl Asked {
    fn ask(&self) -> Ask<'_> {
        Ask {
            flight: &self.flight,
            purpose: self.purpose,
            disruption: &self.disruption,
            channels: self.channels.as_deref(),
        }
    }
}

/// What one request asks, whichever route.
struct Ask<'a> {
    flight: &'a Flight,
    purpose: Purpose,
    disruption: &'a Disruption,
    channels: Option<&'a [Channel]>,
}

/// Tokens for every consenting traveller of a flight, and the reason for each other
/// traveller, in one request and one transaction.
///
/// The travellers are read and decided on what the readers see, before the request
/// joins the writer: a flight's Cedar decisions and token issuing take tens of
/// milliseconds, which every other write would otherwise wait for. In the writer, one
/// statement checks that every record a token is granted under is still current
/// (neither withdrawn, superseded nor purged: a withdrawal revokes only the tokens
/// already stored); if one changed, the flight is read and decided again there, where
/// it is exact. A refusal decided on the read stands: it is the answer as of the read.
pub async fn request_for_flight(
    state: &AppState,
    request_id: &str,
    airline: &Party,
    request: FlightTokenRequest,
) -> Result<FlightTokens, Error> {
    Ok(grant_flight(state, request_id, airline, request)
        .await?
        .tokens)
}

/// Takes what a request asks for from the airline's budget (the travellers it
/// covers), before anything is decided; a refusal is a 429 with Retry-After.
async fn charge(state: &AppState, airline: &Party, travellers: i64) -> Result<(), Error> {
    let limit = &state.settings.policies.tunables.rate_limit;
    state
        .limiter
        .check(&airline.id, RateBudget::Asks, limit, Instant::now())?;
    state
        .limiter
        .take(
            &state.store,
            &airline.id,
            RateBudget::Asks,
            travellers as f64,
            limit,
        )
        .await
}

/// The airline's disruption a grant names, if it declared it and it carries the
/// flight; otherwise the refusal (another airline's disruption reads as unknown).
async fn declared(
    db: &mut impl Db,
    airline: &Party,
    id: &DisruptionId,
    flight: &Flight,
) -> Result<Result<Disruption, Refusal>, StoreError> {
    let found = disruptions::by_id(db, Seen::Airline(&airline.id), id.as_str()).await?;
    Ok(match found {
        None => Err(Refusal::DisruptionNotFound),
        Some(d) if !d.carries(flight) => Err(Refusal::FlightNotInDisruption),
        Some(d) => Ok(d),
    })
}

/// The disruption as the writer sees it, if it changed (an update, a closing) since
/// the grant read it; `None` when it did not.
async fn still_current(
    db: &mut impl Db,
    airline: &Party,
    read: &Disruption,
) -> Result<Option<Disruption>, StoreError> {
    match disruptions::state_of(db, &read.id).await? {
        Some((_, revision)) if revision == read.revision => Ok(None),
        _ => disruptions::by_id(db, Seen::Airline(&airline.id), &read.id).await,
    }
}

impl Asked {
    /// In a grant's write: whether the disruption moved on since the grant read it,
    /// taking it as the writer sees it if it did.
    async fn moved_on(&mut self, db: &mut impl Db, airline: &Party) -> Result<bool, StoreError> {
        let changed = still_current(db, airline, &self.disruption).await?;
        let moved_on = changed.is_some();
        if let Some(disruption) = changed {
            self.disruption = disruption;
        }
        Ok(moved_on)
    }
}

/// Whether the airline's reveal budget for the day, as the readers see it, still holds
/// `reveals` more (none always fits); if not, the refusal's problem, with the day's use.
async fn reveals_left_on_read(
    state: &AppState,
    airline: &Party,
    reveals: i64,
    now: OffsetDateTime,
) -> Result<Result<(), Error>, Error> {
    if reveals == 0 {
        return Ok(Ok(()));
    }
    let used = crate::store::direct::read_now!(&state.store, |db| budgets::used_today(
        db,
        airline,
        Budget::Reveals,
        now
    ))?;
    let limit = budgets::reveals_limit(state);
    if used.saturating_add(reveals) > limit {
        let refusal = Refusal::RevealBudgetSpent;
        return Ok(Err(budgets::spent(refusal, used, limit, now)));
    }
    Ok(Ok(()))
}

/// Takes `reveals` from the airline's budget for the day, in the write, only while it
/// holds them all: what the charge did (`None` for no reveal), or the refusal's problem
/// when a grant that raced this one since the read took the last of them.
async fn take_reveals(
    db: &mut impl Db,
    state: &AppState,
    airline: &Party,
    reveals: i64,
    now: OffsetDateTime,
) -> Result<Result<Option<Charged>, Error>, StoreError> {
    if reveals == 0 {
        return Ok(Ok(None));
    }
    let limit = budgets::reveals_limit(state);
    let budget = Budget::Reveals;
    match budgets::take_within(db, state, &airline.id, budget, reveals, limit, now).await? {
        Some(charged) => Ok(Ok(Some(charged))),
        None => {
            let used = budgets::used_today(db, airline, budget, now).await?;
            let refusal = Refusal::RevealBudgetSpent;
            Ok(Err(budgets::spent(refusal, used, limit, now)))
        }
    }
}

/// Audits a refusal decided before the request began its transaction.
async fn refuse_unbegun(state: &AppState, entry: NewEntry, refusal: Refusal) -> Error {
    let entry = entry.refused(refusal.reason());
    state
        .record_refusal(entry, refusal_problem(refusal, &[]))
        .await
}

/// What a request named: its entry, before (or without) the disruption's facts.
struct Named<'a> {
    purpose: Purpose,
    /// The disruption id named, checked to be an id (never free text).
    disruption_id: &'a str,
    flight: &'a Flight,
}

impl Named<'_> {
    /// The request's entry: the purpose, the disruption named and the flight.
    fn entry(
        &self,
        state: &AppState,
        request_id: &str,
        airline: &Party,
        now: OffsetDateTime,
    ) -> NewEntry {
        NewEntry::new(
            now,
            request_id,
            airline,
            Action::TokenRequest,
            Outcome::Granted,
        )
        .airline(airline.id.clone())
        .purpose(self.purpose.as_str().to_string())
        .event_reference(self.disruption_id.to_string())
        .flight(self.flight.label())
        .policy_digest(state.settings.policies.digest().to_string())
    }
}

/// An empty channel list asks for nothing.
fn check_channels(channels: Option<&[Channel]>) -> Result<(), Error> {
    if channels.is_some_and(<[Channel]>::is_empty) {
        return Err(Error::field(
            ErrorKind::InvalidField,
            "channels",
            "must name at least one channel (`sms`, `email`), or be left out for all",
        ));
    }
    Ok(())
}

/// The audit entry every decision of this request starts from.
fn base_entry(
    state: &AppState,
    request_id: &str,
    airline: &Party,
    ask: &Ask<'_>,
    now: OffsetDateTime,
) -> NewEntry {
    let named = Named {
        purpose: ask.purpose,
        disruption_id: &ask.disruption.id,
        flight: ask.flight,
    };
    named
        .entry(state, request_id, airline, now)
        .event_category(ask.disruption.category.as_str().to_string())
}

/// What the policies say of the flight-level question.
fn flight_verdict(
    state: &AppState,
    airline: &Party,
    ask: &Ask<'_>,
    now: OffsetDateTime,
) -> Verdict {
    state.settings.policies.decide_flight(
        &AirlineFacts::of(airline),
        ask.flight.carrier.as_str(),
        &format!(
            "{}{}",
            ask.flight.carrier.as_str(),
            ask.flight.flight_number.as_str()
        ),
        &ask.flight.date.as_string(),
        &context(ask, now),
    )
}

/// A token granted: the answer for the airline and the record to store.
type Grant = (TokenGranted, TokenRecord);
