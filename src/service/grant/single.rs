//! One traveller's grant (`POST /v1/release-tokens`): found by booking and name,
//! decided on the readers' view, written in one whole write.
//!
//! As for a flight (`super::flight`), the traveller is found and decided, and the
//! day's reveal budget read, before the request takes the writer: during a storm an
//! airline asks traveller by traveller by the hundred a second, and each request's
//! look-ups and Cedar decisions would otherwise hold every other write. A refusal
//! decided on the read is audited and stands: it is the answer as of the read. The
//! write ([`GrantOne`]) checks that the disruption has not moved on and that the record
//! the token is granted under is still current (neither withdrawn, superseded nor
//! purged); if either changed, the traveller is found and decided again inside the
//! write, where it is exact. It takes a reveal from the day's budget only while the
//! budget holds one, in the statement that charges it, so that requests racing for the
//! last reveals are refused exactly at the limit, on whichever broker they arrive.

use super::*;
use crate::audit::merkle::Frontier;
use crate::service::audit_log::{append_with_pushes, Audited};
use crate::store::direct::read_now;

/// One traveller's token, decided and audited.
pub async fn request(
    state: &AppState,
    request_id: &str,
    airline: &Party,
    request: TokenRequest,
) -> Result<TokenGranted, Error> {
    let now = state.clock.now();
    check_channels(request.channels.as_deref())?;
    charge(state, airline, 1).await?;
    let (id, flight) = (&request.disruption_id, &request.flight);
    let disruption = read_now!(&state.store, |db| declared(db, airline, id, flight))?;
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
    let TokenRequest {
        record_locator,
        traveller,
        flight,
        purpose,
        channels,
        ..
    } = request;
    let name_index = state
        .keys
        .keys()
        .root()
        .blind_index(TRAVELLER_NAME_INDEX, &traveller.pnr_form());
    let sought = Sought {
        record_locator,
        name_index,
    };
    let asked = Asked {
        flight,
        purpose,
        disruption,
        channels,
    };
    let base = base_entry(state, request_id, airline, &asked.ask(), now);
    let found = read_now!(&state.store, |db| sought.find(db, &asked.flight))?;
    let issued = match One::decide(state, airline, found, &asked, &base, now) {
        One::Granted(issued) => *issued,
        One::Refused(refused) => {
            return Err(state.record_refusal(refused.entry, refused.problem).await)
        }
    };
    // The day's reveal budget as the readers see it: spent, the request is refused here;
    // the write takes the reveal only while one is left.
    let reveals = issued.reveals();
    if let Err(problem) = reveals_left_on_read(state, airline, reveals, now).await? {
        let entry = budget_spent(issued.entry);
        return Err(state.record_refusal(entry, problem).await);
    }
    let grant = GrantOne {
        state: state.clone(),
        airline: airline.clone(),
        asked,
        sought,
        base,
        issued,
        now,
    };
    let written = state.write_audited(grant).await?;
    let index = written.entries.first().map_or(0, |entry| entry.index);
    match written.output {
        Written::Granted { granted, charged } => {
            if let Some(charged) = charged {
                budgets::raised(state, airline, Budget::Reveals, charged);
            }
            Ok(TokenGranted {
                audit_index: index,
                ..granted
            })
        }
        Written::Refused(problem) => Err(problem),
    }
}

/// The traveller a request names: the booking and the name's blind index (the name
/// itself is never stored).
struct Sought {
    record_locator: RecordLocator,
    name_index: Vec<u8>,
}

impl Sought {
    /// The travellers of the booking on `flight` with this name (more than one is an
    /// ambiguity the airline must resolve).
    async fn find(
        &self,
        db: &mut impl Db,
        flight: &Flight,
    ) -> Result<Vec<ReleaseFacts>, StoreError> {
        release::named(db, &self.record_locator, &self.name_index, flight).await
    }
}

/// A token issued on a decision, not yet stored: the airline's answer, the record to
/// store and the grant's entry.
struct Issued {
    granted: TokenGranted,
    record: TokenRecord,
    entry: NewEntry,
}

impl Issued {
    /// What it takes of the day's reveal budget: one for a reveal, none for a relay.
    fn reveals(&self) -> i64 {
        i64::from(self.record.delivery == Delivery::Reveal)
    }
}

/// A refusal decided: its entry and the problem the airline is answered with.
struct Refused {
    entry: NewEntry,
    problem: Error,
}

/// One traveller decided: the token to grant, or the refusal (each boxed: an entry is
/// large, and a decision is moved into the write).
enum One {
    Granted(Box<Issued>),
    Refused(Box<Refused>),
}

impl One {
    /// Asks the policies about the flight, then about the one traveller `found` holds,
    /// and issues their token if both allow it.
    fn decide(
        state: &AppState,
        airline: &Party,
        mut found: Vec<ReleaseFacts>,
        asked: &Asked,
        base: &NewEntry,
        now: OffsetDateTime,
    ) -> Self {
        let ask = asked.ask();
        let verdict = flight_verdict(state, airline, &ask, now);
        if let Some(refusal) = verdict.refusal {
            let entry = base
                .clone()
                .policies(verdict.policy_list())
                .refused(refusal.reason());
            let problem = refusal_problem(refusal, &verdict.policies);
            return Self::Refused(Box::new(Refused { entry, problem }));
        }
        let traveller = match (found.pop(), found.is_empty()) {
            (Some(traveller), true) => traveller,
            (found_one, _) => {
                let refusal = match found_one {
                    Some(_) => Refusal::AmbiguousTraveller,
                    None => Refusal::BookingNotFound,
                };
                let entry = base.clone().refused(refusal.reason());
                let problem = refusal_problem(refusal, &[]);
                return Self::Refused(Box::new(Refused { entry, problem }));
            }
        };
        let question = grant_question(state, airline, &ask, now);
        match decide_and_issue(
            state,
            &question,
            airline,
            &traveller,
            &ask,
            base.clone(),
            now,
        ) {
            (Ok((granted, record)), entry) => Self::Granted(Box::new(Issued {
                granted,
                record,
                entry,
            })),
            (Err(verdict), entry) => {
                let refusal = verdict.refusal.unwrap_or(Refusal::NotPermitted);
                let problem = refusal_problem(refusal, &verdict.policies);
                Self::Refused(Box::new(Refused { entry, problem }))
            }
        }
    }
}

/// The entry of a grant refused beyond the day's reveal budget. The token was issued
/// on the decision and never stored, so the entry names none.
fn budget_spent(entry: NewEntry) -> NewEntry {
    let mut entry = entry.refused(Refusal::RevealBudgetSpent.reason());
    entry.entry.token_id = None;
    entry
}

/// What the write of one traveller's grant answers.
enum Written {
    /// The token, stored, and what its reveal took of the day's budget.
    Granted {
        granted: TokenGranted,
        charged: Option<Charged>,
    },
    /// Refused in the write: the traveller decided again, or the budget spent since
    /// the read. The refusal is the write's entry.
    Refused(Error),
}

/// One traveller's grant, decided on the read, to write: the guard, the token, the
/// reveal's charge and the entry.
struct GrantOne {
    state: AppState,
    airline: Party,
    asked: Asked,
    sought: Sought,
    base: NewEntry,
    /// The token the read decided to grant.
    issued: Issued,
    now: OffsetDateTime,
}

impl GrantOne {
    async fn write(
        self,
        db: &mut impl Db,
        right_edge: &mut Option<Frontier>,
    ) -> Result<Audited<Written>, StoreError> {
        let Self {
            state,
            airline,
            mut asked,
            sought,
            base,
            issued,
            now,
        } = self;
        let moved_on = asked.moved_on(db, &airline).await?;
        let unchanged =
            !moved_on && consents::all_current(db, &[issued.record.consent_id.as_str()]).await?;
        let issued = if unchanged {
            issued
        } else {
            let found = sought.find(db, &asked.flight).await?;
            match One::decide(&state, &airline, found, &asked, &base, now) {
                One::Granted(issued) => *issued,
                One::Refused(refused) => {
                    let Refused { entry, problem } = *refused;
                    let refused = Written::Refused(problem);
                    return append_with_pushes(db, right_edge, refused, vec![entry], now).await;
                }
            }
        };
        let reveals = issued.reveals();
        let Issued {
            granted,
            record,
            entry,
        } = issued;
        let charged = match take_reveals(db, &state, &airline, reveals, now).await? {
            Ok(charged) => charged,
            Err(problem) => {
                let refused = Written::Refused(problem);
                let entry = budget_spent(entry);
                return append_with_pushes(db, right_edge, refused, vec![entry], now).await;
            }
        };
        tokens::insert_many(db, &[record]).await?;
        let written = Written::Granted { granted, charged };
        append_with_pushes(db, right_edge, written, vec![entry], now).await
    }
}

crate::store::direct::write_over_db!(GrantOne, Audited<Written>, write);
