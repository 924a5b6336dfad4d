//! A whole flight's grant: every traveller of the flight decided, a token for each
//! whom the policies allow, an audit entry for each, in one write.
//!
//! The travellers are read and decided on what the readers see, before the grant
//! takes the writer: a flight's Cedar decisions and token issuing take milliseconds
//! per hundred travellers, which every other write would otherwise wait for, and they
//! are shared among the cores (a flight of 400 is the day's largest question). The
//! write ([`GrantFlight`]) then checks, in one statement, that every record a token is
//! granted under is still current (neither withdrawn, superseded nor purged: a
//! withdrawal revokes only the tokens already stored) and that the disruption has not
//! moved on; if either changed, the flight is read and decided again inside the write,
//! where it is exact. A refusal decided on the read stands: it is the answer as of the
//! read.

use super::*;
use crate::audit::merkle::Frontier;
use crate::service::audit_log::{append_with_pushes, Audited};
use crate::service::budgets;
use crate::store::budgets::Charged;
use crate::store::sealed::SealedRecord;
use crate::store::use_facts::UseFacts;
use std::collections::HashMap;

/// Travellers decided on one thread at least; a smaller flight is decided where it is
/// asked.
const PER_THREAD: usize = 64;

/// A flight's grant as the broker itself uses it when it tells a disruption's
/// travellers: the airline's answer, and what the answer does not show.
pub(crate) struct FlightGrant {
    /// The answer the airline gets.
    pub tokens: FlightTokens,
    /// Each granted traveller's language (that of the notice they were shown), beside
    /// `tokens.granted`, for the broker to write to them in it.
    pub languages: Vec<Option<String>>,
    /// The agency of each traveller decided (granted or refused), by traveller id:
    /// whom the disruption's webhook event tells of that traveller.
    pub agencies: HashMap<String, String>,
    /// When the write decided the flight again, what a use of each relay token it
    /// wrote is decided on, by token id (the facts that grant was decided on), so that
    /// the broker's own relays need not read back the tokens it just wrote (the use
    /// batch's guard still checks them); empty otherwise, when
    /// [`FlightPrepared::relay_facts`] already said it.
    pub relay_facts: HashMap<String, UseFacts>,
    /// Whether the write decided the flight again (a record or the disruption changed
    /// since the read): the tokens are then not those [`FlightPrepared`] showed.
    pub decided_again: bool,
}

/// A flight's grant decided on the readers' view, not yet written: what it will grant
/// if nothing changes before the write (see [`FlightPrepared::write`]).
pub(crate) struct FlightPrepared {
    request: FlightTokenRequest,
    grant: GrantFlight,
}

impl FlightPrepared {
    /// The tokens it grants, each with its traveller's language.
    pub fn granted(&self) -> impl Iterator<Item = (&TokenGranted, Option<&str>)> {
        let decided = &self.grant.decided;
        decided
            .granted
            .iter()
            .zip(decided.languages.iter().map(Option::as_deref))
    }

    /// What a use of each relay token it grants is decided on.
    pub fn relay_facts(&self) -> HashMap<String, UseFacts> {
        self.grant.decided.relay_facts()
    }

    /// Writes the grant (deciding it again inside the write if anything changed).
    pub async fn write(self, state: &AppState) -> Result<FlightGrant, Error> {
        write_flight(state, self).await
    }
}

/// A flight's grant, with what the broker needs to tell its travellers and agencies.
pub(crate) async fn grant_flight(
    state: &AppState,
    request_id: &str,
    airline: &Party,
    request: FlightTokenRequest,
) -> Result<FlightGrant, Error> {
    prepare_flight(state, request_id, airline, request)
        .await?
        .write(state)
        .await
}

/// Reads and decides a flight's grant, charging the airline's rate budget and checking
/// its reveal budget, without writing it: a refusal of the whole flight is audited and
/// answered from here.
pub(crate) async fn prepare_flight(
    state: &AppState,
    request_id: &str,
    airline: &Party,
    request: FlightTokenRequest,
) -> Result<FlightPrepared, Error> {
    let now = state.clock.now();
    check_channels(request.channels.as_deref())?;
    let flight = &request.flight;
    let on_board =
        crate::store::direct::read_now!(&state.store, |db| release::count_on_flight(db, flight))?;
    charge(state, airline, on_board.max(1)).await?;
    let id = &request.disruption_id;
    let disruption =
        crate::store::direct::read_now!(&state.store, |db| declared(db, airline, id, flight))?;
    let disruption = match disruption {
        Ok(disruption) => disruption,
        Err(refusal) => {
            let named = Named {
                purpose: request.purpose,
                disruption_id: request.disruption_id.as_str(),
                flight,
            };
            let entry = named.entry(state, request_id, airline, now);
            return Err(refuse_unbegun(state, entry, refusal).await);
        }
    };
    let asked = Asked {
        flight: request.flight.clone(),
        purpose: request.purpose,
        disruption,
        channels: request.channels.clone(),
    };
    let base = base_entry(state, request_id, airline, &asked.ask(), now);
    let verdict = flight_verdict(state, airline, &asked.ask(), now);
    if let Some(refusal) = verdict.refusal {
        let entry = base
            .policies(verdict.policy_list())
            .refused(refusal.reason());
        let problem = refusal_problem(refusal, &verdict.policies);
        return Err(state.record_refusal(entry, problem).await);
    }
    let travellers =
        crate::store::direct::read_now!(&state.store, |db| release::on_flight(db, flight))?;
    let on_flight = travellers.len();
    let decided = decide_all(state, airline, travellers, &asked, &base, now).await?;
    // The day's reveal budget, as the readers see it; the write takes what it grants.
    if let Err(problem) = reveals_left_on_read(state, airline, decided.reveals(), now).await? {
        let entry = base.refused(Refusal::RevealBudgetSpent.reason());
        return Err(state.record_refusal(entry, problem).await);
    }
    let grant = GrantFlight {
        state: state.clone(),
        airline: airline.clone(),
        asked,
        base,
        decided,
        on_flight,
        decided_again: false,
        now,
    };
    Ok(FlightPrepared { request, grant })
}

/// Writes a prepared grant and hands each answer its audit entry's index.
async fn write_flight(state: &AppState, prepared: FlightPrepared) -> Result<FlightGrant, Error> {
    let FlightPrepared { request, grant } = prepared;
    let airline = grant.airline.clone();
    let written = state.write_audited(grant).await?;
    let (decided, on_flight, decided_again) = written.output?;
    if let Some(charged) = decided.reveals_charged {
        budgets::raised(state, &airline, Budget::Reveals, charged);
    }
    let relay_facts = if decided_again {
        decided.relay_facts()
    } else {
        HashMap::new()
    };
    let Decided {
        mut granted,
        languages,
        mut refused,
        was_granted,
        ..
    } = decided;
    let agencies = written
        .entries
        .iter()
        .filter_map(|e| Some((e.traveller_id.clone()?, e.agency_id.clone()?)))
        .collect();
    // Entries were appended in traveller order; hand each answer its index.
    let (mut g, mut r) = (granted.iter_mut(), refused.iter_mut());
    for (granted, entry) in was_granted.into_iter().zip(&written.entries) {
        let slot = if granted {
            g.next().map(|t| &mut t.audit_index)
        } else {
            r.next().map(|t| &mut t.audit_index)
        };
        if let Some(slot) = slot {
            *slot = entry.index;
        }
    }
    let counts = FlightCounts {
        travellers: on_flight,
        granted: granted.len(),
        refused: refused.len(),
    };
    let answer = FlightTokens {
        flight: request.flight.label(),
        purpose: request.purpose,
        granted,
        refused,
        counts,
    };
    Ok(FlightGrant {
        tokens: answer,
        languages,
        agencies,
        relay_facts,
        decided_again,
    })
}

/// Decides every traveller, a share of them on each core for a large flight, each share
/// on a blocking thread once it has one of the cores' turns ([`AppState::deciding`]);
/// the answers keep the travellers' order.
async fn decide_all(
    state: &AppState,
    airline: &Party,
    travellers: Vec<ReleaseFacts>,
    asked: &Asked,
    base: &NewEntry,
    now: OffsetDateTime,
) -> Result<Decided, Error> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shares = (travellers.len() / PER_THREAD).clamp(1, cores);
    if shares == 1 {
        return Ok(Decided::of(
            state,
            airline,
            &travellers,
            &asked.ask(),
            base,
            now,
        ));
    }
    let asked = std::sync::Arc::new(Asked {
        flight: asked.flight.clone(),
        purpose: asked.purpose,
        disruption: asked.disruption.clone(),
        channels: asked.channels.clone(),
    });
    let size = travellers.len().div_ceil(shares);
    let mut travellers = travellers.into_iter();
    let mut deciding = Vec::with_capacity(shares);
    loop {
        let share: Vec<ReleaseFacts> = travellers.by_ref().take(size).collect();
        if share.is_empty() {
            break;
        }
        let turn = state
            .deciding
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::internal(format!("deciding a flight's share: {e}")))?;
        let (state, airline, asked, base) =
            (state.clone(), airline.clone(), asked.clone(), base.clone());
        deciding.push(tokio::task::spawn_blocking(move || {
            let decided = Decided::of(&state, &airline, &share, &asked.ask(), &base, now);
            drop(turn);
            decided
        }));
    }
    let mut decided = Decided::default();
    for share in deciding {
        let share = share
            .await
            .map_err(|e| Error::internal(format!("deciding a flight's share stopped: {e}")))?;
        decided.extend(share);
    }
    Ok(decided)
}

/// A flight's travellers decided: the answers, the tokens to store and the entries to
/// append, in traveller order.
#[derive(Default)]
struct Decided {
    granted: Vec<TokenGranted>,
    /// Each granted traveller's language, beside `granted`.
    languages: Vec<Option<String>>,
    records: Vec<TokenRecord>,
    /// The facts each token in `records` was granted on.
    facts: Vec<ReleaseFacts>,
    refused: Vec<TokenRefused>,
    entries: Vec<NewEntry>,
    /// For each entry, whether it is a grant.
    was_granted: Vec<bool>,
    /// What the write took of the day's reveal budget.
    reveals_charged: Option<Charged>,
}

impl Decided {
    /// Decides every traveller and issues the tokens granted.
    fn of(
        state: &AppState,
        airline: &Party,
        travellers: &[ReleaseFacts],
        ask: &Ask<'_>,
        base: &NewEntry,
        now: OffsetDateTime,
    ) -> Self {
        let mut decided = Self {
            entries: Vec::with_capacity(travellers.len()),
            was_granted: Vec::with_capacity(travellers.len()),
            ..Self::default()
        };
        let question = grant_question(state, airline, ask, now);
        for traveller in travellers {
            let (outcome, entry) =
                decide_and_issue(state, &question, airline, traveller, ask, base.clone(), now);
            decided.was_granted.push(outcome.is_ok());
            match outcome {
                Ok((token, record)) => {
                    decided.granted.push(token);
                    decided
                        .languages
                        .push(traveller.consent.as_ref().and_then(|c| c.language.clone()));
                    decided.records.push(record);
                    decided.facts.push(traveller.clone());
                }
                Err(verdict) => {
                    let refusal = verdict.refusal.unwrap_or(Refusal::NotPermitted);
                    let problem = refusal_problem(refusal, &verdict.policies);
                    decided.refused.push(TokenRefused {
                        traveller_id: traveller.traveller_id.clone(),
                        record_locator: traveller.record_locator.clone(),
                        reason: refusal.reason().to_string(),
                        type_uri: problem.kind().type_uri(),
                        rule: rule_name(refusal, &verdict.policies),
                        audit_index: 0,
                    })
                }
            }
            decided.entries.push(entry);
        }
        decided
    }

    /// Adds the travellers decided after these.
    fn extend(&mut self, next: Decided) {
        self.granted.extend(next.granted);
        self.languages.extend(next.languages);
        self.records.extend(next.records);
        self.facts.extend(next.facts);
        self.refused.extend(next.refused);
        self.entries.extend(next.entries);
        self.was_granted.extend(next.was_granted);
    }

    /// The reveal tokens granted: what the day's reveal budget is charged.
    fn reveals(&self) -> i64 {
        self.records
            .iter()
            .filter(|r| r.delivery == Delivery::Reveal)
            .count() as i64
    }

    /// What a use of each relay token is decided on: the token and the facts it was
    /// granted on, nothing sealed (a relay opens nothing to decide).
    fn relay_facts(&self) -> HashMap<String, UseFacts> {
        self.records
            .iter()
            .zip(&self.facts)
            .filter(|(record, _)| record.delivery == Delivery::Relay)
            .map(|(record, facts)| {
                let use_facts = UseFacts {
                    token: record.clone(),
                    facts: facts.clone(),
                    sealed: SealedRecord::default(),
                };
                (record.id.clone(), use_facts)
            })
            .collect()
    }

    /// The records the tokens are granted under.
    fn granted_under(&self) -> Vec<&str> {
        self.records.iter().map(|r| r.consent_id.as_str()).collect()
    }
}

/// The flight's write: the guard, the tokens, the entries and their pushes. Answers
/// the flight as decided (again, if the guard found a change) with its number of
/// travellers and whether it was decided again.
struct GrantFlight {
    state: AppState,
    airline: Party,
    asked: Asked,
    base: NewEntry,
    decided: Decided,
    on_flight: usize,
    decided_again: bool,
    now: OffsetDateTime,
}

impl GrantFlight {
    async fn write(
        self,
        db: &mut impl Db,
        right_edge: &mut Option<Frontier>,
    ) -> Result<Audited<FlightWritten>, StoreError> {
        let Self {
            state,
            airline,
            mut asked,
            base,
            mut decided,
            mut on_flight,
            mut decided_again,
            now,
        } = self;
        let moved_on = asked.moved_on(db, &airline).await?;
        if moved_on || !consents::all_current(db, &decided.granted_under()).await? {
            let travellers = release::on_flight(db, &asked.flight).await?;
            on_flight = travellers.len();
            decided = Decided::of(&state, &airline, &travellers, &asked.ask(), &base, now);
            decided_again = true;
        }
        // Taken only while the day's budget holds them all: a flight that raced another
        // grant for the last reveals since the read is refused whole.
        match take_reveals(db, &state, &airline, decided.reveals(), now).await? {
            Ok(charged) => decided.reveals_charged = charged,
            Err(problem) => {
                let entry = base.refused(Refusal::RevealBudgetSpent.reason());
                return append_with_pushes(db, right_edge, Err(problem), vec![entry], now).await;
            }
        }
        tokens::insert_many(db, &decided.records).await?;
        let entries = std::mem::take(&mut decided.entries);
        let output = (decided, on_flight, decided_again);
        append_with_pushes(db, right_edge, Ok(output), entries, now).await
    }
}

/// What a flight's write answers: the flight as decided, its number of travellers and
/// whether it was decided again; or the refusal of the whole flight, its entry written.
type FlightWritten = Result<(Decided, usize, bool), Error>;

crate::store::direct::write_over_db!(GrantFlight, Audited<FlightWritten>, write);
