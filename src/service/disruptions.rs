//! Disruptions as records: an airline declares one (`POST /v1/disruptions`), updates
//! it (a new time) or closes it, each audited; airlines, the agencies whose clients it
//! affects and officers read them.
//!
//! Declaring or updating one tells its travellers at once (`service::telling`): the
//! broker relays the airline's template to those whose agency chose relay and answers
//! with the tokens of the others; each agency with clients on its flights gets a
//! signed webhook event in the same second (`service::disruption_events`). Tokens are granted only under an open disruption the
//! airline declared that carries the flight (`service::grant`); closing one revokes
//! the tokens still usable under it.

use crate::audit::{Action, NewEntry, Outcome};
use crate::domain::booking::{CarrierCode, Flight, FlightDate, FlightNumber};
use crate::domain::disruption::{
    self, Change, Closure, Declaration, Disruption, DisruptionId, DisruptionState, Unfit,
};
use crate::domain::ids::new_id;
use crate::domain::party::{Party, PartyKind};
use crate::domain::purpose::EventCategory;
use crate::domain::template::TemplateEvent;
use crate::domain::time::format_time;
use crate::policy::Refusal;
use crate::service::budgets;
use crate::service::disruption_events::{self as events, Change as EventChange};
use crate::service::input::{decode_cursor, encode_cursor, page_limit};
use crate::service::telling::{self, Told};
use crate::service::AppState;
use crate::service::{Error, ErrorKind};
use crate::store::bookings;
use crate::store::budgets::Budget;
use crate::store::disruptions::{self, Seen};
use crate::store::to_millis;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A disruption as the API shows it.
#[derive(Serialize, Deserialize, Debug)]
pub struct DisruptionView {
    /// Its id: what grants name in `disruption_id`.
    pub id: String,
    /// The airline that declared it.
    pub airline_id: String,
    /// What happened.
    pub category: EventCategory,
    /// The airline's own reference.
    pub reference: String,
    /// The flights it carries.
    pub flights: Vec<Flight>,
    /// The airport closure it was declared as, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closure: Option<Closure>,
    /// When it happened.
    pub occurred_at: String,
    /// The new departure time, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_departure: Option<String>,
    /// The airline's note to agencies and officers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// `open`, `updated` or `closed`.
    pub state: DisruptionState,
    /// 1 when declared, one more for each change.
    pub revision: i64,
    /// When it was declared.
    pub declared_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// When it was closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<String>,
    /// Index of the audit entry of its last change (on answers to a change only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_index: Option<i64>,
    /// Tokens its closing revoked (on the answer to a closing only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_revoked: Option<u64>,
    /// What the declaration or update did for the travellers of its flights (on
    /// those answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub told: Option<Told>,
}

impl DisruptionView {
    pub(crate) fn of(d: &Disruption) -> Self {
        Self {
            id: d.id.clone(),
            airline_id: d.airline_id.clone(),
            category: d.category,
            reference: d.reference.clone(),
            flights: d.flights.clone(),
            closure: d.closure.clone(),
            occurred_at: format_time(d.occurred_at),
            new_departure: d.new_departure.map(format_time),
            note: d.note.clone(),
            state: d.state,
            revision: d.revision,
            declared_at: format_time(d.declared_at),
            updated_at: format_time(d.updated_at),
            closed_at: d.closed_at.map(format_time),
            audit_index: None,
            tokens_revoked: None,
            told: None,
        }
    }
}

/// Declares a disruption of the airline's flights.
pub async fn declare(
    state: &AppState,
    request_id: &str,
    airline: &Party,
    body: Declaration,
) -> Result<DisruptionView, Error> {
    let now = state.clock.now();
    let designator = airline.code.as_deref().unwrap_or_default();
    let mut body = body;
    if let Some(closure) = &body.closure {
        if !body.flights.is_empty() {
            return Err(Error::field(
                ErrorKind::InvalidField,
                "closure",
                "name the flights or an airport's closure, not both",
            ));
        }
        closure.check().map_err(unfit)?;
        body.flights = closure_flights(state, designator, closure).await?;
    }
    body.check(designator, now).map_err(unfit)?;
    let tell = body.tell;
    let disruption = Disruption {
        id: new_id(disruption::ID_PREFIX),
        airline_id: airline.id.clone(),
        category: body.category,
        reference: body.reference.as_str().to_string(),
        occurred_at: body.occurred_at,
        new_departure: body.new_departure,
        note: body.note.map(|n| n.as_str().to_string()),
        state: DisruptionState::Open,
        revision: 1,
        declared_at: now,
        updated_at: now,
        closed_at: None,
        flights: body.flights,
        closure: body.closure,
    };
    // The day's budget of disrupted flights, taken in the declaration's transaction.
    let limit = budgets::disrupted_flights_limit(state, airline, now).await?;
    let flights = disruption.flights.len() as i64;
    let mut tx = state.store.begin().await?;
    if !disruptions::insert(&mut tx, &disruption).await? {
        let existing =
            disruptions::id_by_reference(&mut tx, &airline.id, &disruption.reference).await?;
        tx.rollback().await.ok();
        let mut problem = Error::field(
            ErrorKind::DisruptionAlreadyDeclared,
            "reference",
            "is the reference of a disruption your airline declared already: update that one",
        );
        if let Some(id) = existing {
            problem = problem.with_extension("disruption_id", serde_json::Value::from(id));
        }
        return Err(problem);
    }
    let entry = entry(
        state,
        request_id,
        airline,
        &disruption,
        Action::DisruptionDeclaration,
        now,
    );
    // Charged, then checked: the charge holds the day's row until this transaction
    // ends, so declarations at several brokers at once are counted one after another.
    let charged = budgets::take(
        &mut tx,
        state,
        &airline.id,
        Budget::DisruptedFlights,
        flights,
        limit,
        now,
    )
    .await?;
    if charged.used > limit {
        tx.rollback().await.ok();
        let refusal = Refusal::DisruptionBudgetSpent;
        let problem = budgets::spent(refusal, charged.used - flights, limit, now);
        let tx = state.store.begin().await?;
        return Err(state
            .refuse(tx, entry.refused(refusal.reason()), problem)
            .await);
    }
    let index = state.commit_with_audit(tx, entry).await?;
    budgets::raised(state, airline, Budget::DisruptedFlights, charged);
    let told = if tell {
        let event = TemplateEvent::Declared(disruption.category);
        Some(telling::tell(state, request_id, airline, &disruption, event).await?)
    } else {
        None
    };
    let view = DisruptionView {
        audit_index: Some(index),
        told,
        ..DisruptionView::of(&disruption)
    };
    events::queue(state, EventChange::Declared, &view, view.told.as_ref()).await;
    Ok(view)
}

/// The airline's flights an airport's closure carries: those from or to the airport
/// departing in the window, as the agencies' segments name their airports.
async fn closure_flights(
    state: &AppState,
    designator: &str,
    closure: &Closure,
) -> Result<Vec<Flight>, Error> {
    let mut reader = state.store.reader().acquire().await?;
    let found = bookings::flights_at_airport(
        &mut reader,
        designator,
        closure.airport.as_str(),
        &closure.from.as_string(),
        &closure.until.as_string(),
        disruption::MAX_FLIGHTS as i64 + 1,
    )
    .await?;
    if found.is_empty() {
        return Err(Error::field(
            ErrorKind::InvalidField,
            "closure.airport",
            "no flight of yours from or to this airport departs in the window, as the agencies' bookings name their airports; declare the flights themselves",
        ));
    }
    if found.len() > disruption::MAX_FLIGHTS {
        return Err(Error::field(
            ErrorKind::InvalidField,
            "closure",
            format!(
                "carries more than {} of your flights: declare the window in parts",
                disruption::MAX_FLIGHTS
            ),
        ));
    }
    let corrupt = |e: String| Error::internal(format!("a stored segment does not parse: {e}"));
    found
        .iter()
        .map(|(number, date)| {
            Ok(Flight {
                carrier: CarrierCode::parse(designator).map_err(corrupt)?,
                flight_number: FlightNumber::parse(number).map_err(corrupt)?,
                date: FlightDate::parse(date).map_err(corrupt)?,
            })
        })
        .collect()
}

/// Changes an open disruption of the airline: a new category, time or note.
pub async fn update(
    state: &AppState,
    request_id: &str,
    airline: &Party,
    id: &str,
    change: Change,
) -> Result<DisruptionView, Error> {
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let current = open_of(&mut tx, airline, id).await?;
    change.check(current.category).map_err(unfit)?;
    let changed = Disruption {
        category: change.category.unwrap_or(current.category),
        new_departure: change.new_departure.or(current.new_departure),
        note: change
            .note
            .map(|n| n.as_str().to_string())
            .or(current.note.clone()),
        state: DisruptionState::Updated,
        revision: current.revision + 1,
        updated_at: now,
        ..current.clone()
    };
    if !disruptions::save_revision(&mut tx, &changed, current.revision).await? {
        tx.rollback().await.ok();
        return Err(moved_on());
    }
    let mut entry = entry(
        state,
        request_id,
        airline,
        &changed,
        Action::DisruptionUpdate,
        now,
    );
    entry.reason = Some("disruption_updated");
    let index = state.commit_with_audit(tx, entry).await?;
    let told = telling::tell(state, request_id, airline, &changed, TemplateEvent::Update).await?;
    let view = DisruptionView {
        audit_index: Some(index),
        told: Some(told),
        ..DisruptionView::of(&changed)
    };
    events::queue(state, EventChange::Updated, &view, view.told.as_ref()).await;
    Ok(view)
}

/// Closes an open disruption of the airline and revokes the tokens still usable
/// under it, in one transaction with its audit entry.
pub async fn close(
    state: &AppState,
    request_id: &str,
    airline: &Party,
    id: &str,
) -> Result<DisruptionView, Error> {
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let current = open_of(&mut tx, airline, id).await?;
    let closed = Disruption {
        state: DisruptionState::Closed,
        revision: current.revision + 1,
        updated_at: now,
        closed_at: Some(now),
        ..current.clone()
    };
    if !disruptions::save_revision(&mut tx, &closed, current.revision).await? {
        tx.rollback().await.ok();
        return Err(moved_on());
    }
    let revoked = disruptions::revoke_tokens(&mut tx, &closed.id, now).await?;
    let mut entry = entry(
        state,
        request_id,
        airline,
        &closed,
        Action::DisruptionUpdate,
        now,
    );
    entry.reason = Some("disruption_closed");
    let index = state.commit_with_audit(tx, entry).await?;
    let view = DisruptionView {
        audit_index: Some(index),
        tokens_revoked: Some(revoked),
        ..DisruptionView::of(&closed)
    };
    events::queue(state, EventChange::Updated, &view, None).await;
    Ok(view)
}

/// Reads one disruption the caller may see: an airline its own, an agency one that
/// affects a booking of its own, an officer any. Any other reads as unknown.
pub async fn read(state: &AppState, party: &Party, id: &str) -> Result<DisruptionView, Error> {
    let mut conn = state.store.reader().acquire().await?;
    disruptions::by_id(&mut conn, seen_by(party), id)
        .await?
        .map(|d| DisruptionView::of(&d))
        .ok_or_else(not_found)
}

/// Query parameters of the listing.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `open` for the open ones only (open or updated); all when left out.
    pub state: Option<ListedState>,
    /// The previous page's `next_after`.
    pub after: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
}

/// Which disruptions a listing shows.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ListedState {
    /// Open or updated.
    Open,
}

/// A page of disruptions, newest declared first.
#[derive(Serialize, Deserialize, Debug)]
pub struct DisruptionPage {
    /// The disruptions.
    pub disruptions: Vec<DisruptionView>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// Lists the disruptions the caller may see, newest first.
pub async fn list(
    state: &AppState,
    party: &Party,
    query: ListQuery,
) -> Result<DisruptionPage, Error> {
    let limit = page_limit(query.limit, 50, 200)?;
    let after = query.after.as_deref().map(decode_cursor).transpose()?;
    let mut conn = state.store.reader().acquire().await?;
    let found = disruptions::list(
        &mut conn,
        seen_by(party),
        query.state == Some(ListedState::Open),
        after.as_ref().map(|(at, id)| (*at, id.as_str())),
        limit + 1,
    )
    .await?;
    let more = found.len() as i64 > limit;
    let found = &found[..found.len().min(limit as usize)];
    Ok(DisruptionPage {
        disruptions: found.iter().map(DisruptionView::of).collect(),
        next_after: found
            .last()
            .filter(|_| more)
            .map(|d| encode_cursor(to_millis(d.declared_at), &d.id)),
    })
}

/// The airline's disruption `id`, still open, read in the writer.
async fn open_of(
    tx: &mut crate::store::Tx,
    airline: &Party,
    id: &str,
) -> Result<Disruption, Error> {
    let id = DisruptionId::parse(id).map_err(|_| not_found())?;
    let found = disruptions::by_id(tx, Seen::Airline(&airline.id), id.as_str())
        .await?
        .ok_or_else(not_found)?;
    if !found.state.is_open() {
        return Err(Error::new(
            ErrorKind::DisruptionClosed,
            "This disruption is closed; declare a new one for a new event.",
        ));
    }
    Ok(found)
}

fn seen_by(party: &Party) -> Seen<'_> {
    match party.kind {
        PartyKind::Airline => Seen::Airline(&party.id),
        PartyKind::Agency => Seen::Agency(&party.id),
        PartyKind::Officer => Seen::Officer,
    }
}

/// The audit entry of a declaration or change: the disruption's id as the event
/// reference, its category, and its flight when it carries one. Never its note.
fn entry(
    state: &AppState,
    request_id: &str,
    airline: &Party,
    d: &Disruption,
    action: Action,
    now: OffsetDateTime,
) -> NewEntry {
    let outcome = match action {
        Action::DisruptionDeclaration => Outcome::Recorded,
        _ => Outcome::Changed,
    };
    let mut entry = NewEntry::new(now, request_id, airline, action, outcome)
        .airline(airline.id.clone())
        .event_category(d.category.as_str().to_string())
        .event_reference(d.id.clone())
        .policy_digest(state.settings.policies.digest().to_string());
    if let [flight] = d.flights.as_slice() {
        entry = entry.flight(flight.label());
    }
    entry
}

fn unfit(unfit: Unfit) -> Error {
    Error::field(ErrorKind::InvalidField, unfit.field, unfit.reason)
}

fn not_found() -> Error {
    Error::new(
        ErrorKind::DisruptionNotFound,
        "No disruption with this id is yours to see.",
    )
}

fn moved_on() -> Error {
    Error::new(
        ErrorKind::DisruptionChanged,
        "The disruption changed while this request was handled; read it and try again.",
    )
}
