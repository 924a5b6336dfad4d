//! The agency's open disruptions and its clients on them, for its page: each open
//! disruption carrying a flight one of its bookings is on, and for each of its
//! travellers on those flights the last thing done under it (a token granted, a
//! message relayed or delivered, a contact released, a refusal and why).
//!
//! The page is bounded whatever the disruption's size: the newest
//! [`DISRUPTIONS_SHOWN`] disruptions, the first [`CLIENTS_SHOWN`] clients of each
//! with the count of all; the receipts page, filtered by the disruption, lists
//! every use.

use super::budgets::{self, BudgetAlert};
use super::disruptions::DisruptionView;
use super::{AppState, Error};
use crate::domain::party::Party;
use crate::domain::time::format_time;
use crate::store::disruptions::{self, Seen};
use crate::store::release;
use std::collections::HashMap;

/// Open disruptions shown, newest declared first.
pub const DISRUPTIONS_SHOWN: i64 = 20;

/// Clients shown per disruption.
pub const CLIENTS_SHOWN: usize = 200;

/// An open disruption with the agency's clients on it.
#[derive(Debug)]
pub struct AgencyDisruption {
    /// The disruption, as the API shows it.
    pub disruption: DisruptionView,
    /// The first [`CLIENTS_SHOWN`] of the agency's travellers on its flights.
    pub clients: Vec<ClientStep>,
    /// How many of the agency's travellers its flights carry.
    pub clients_total: usize,
    /// The declaring airline's daily budgets past their alert level on the day it was
    /// declared: a flag that the airline may be declaring pretexts.
    pub budget_alerts: Vec<BudgetAlert>,
}

/// One client on a disrupted flight and the last step under the disruption.
#[derive(Debug)]
pub struct ClientStep {
    /// The traveller (pseudonymous id).
    pub traveller_id: String,
    /// The booking's record locator.
    pub record_locator: String,
    /// The flight, `AF1234/2026-12-01`.
    pub flight: String,
    /// The last step, if anything was done yet.
    pub last: Option<Step>,
}

/// An audited step, as the page shows it.
#[derive(Debug)]
pub struct Step {
    /// When (RFC 3339).
    pub at: String,
    /// The action (`token_request`, `message_relay`, …).
    pub action: String,
    /// Its outcome.
    pub outcome: String,
    /// Why, for a refusal or a failure.
    pub reason: Option<String>,
}

/// The agency's open disruptions, newest first, each with its clients.
pub async fn open_for(state: &AppState, agency: &Party) -> Result<Vec<AgencyDisruption>, Error> {
    let mut conn = state.store.reader().acquire().await?;
    let open = disruptions::list(
        &mut conn,
        Seen::Agency(&agency.id),
        true,
        None,
        DISRUPTIONS_SHOWN,
    )
    .await?;
    let mut shown = Vec::with_capacity(open.len());
    let mut alerts_of: HashMap<(String, String), Vec<BudgetAlert>> = HashMap::new();
    for disruption in open {
        let (since, until) = budgets::day_span(disruption.declared_at);
        let key = (disruption.airline_id.clone(), budgets::day_of(since));
        let budget_alerts = match alerts_of.get(&key) {
            Some(alerts) => alerts.clone(),
            None => {
                let alerts =
                    budgets::alerts(&mut *conn, Some(&disruption.airline_id), since, until).await?;
                alerts_of.insert(key, alerts.clone());
                alerts
            }
        };
        let mut clients = Vec::new();
        let mut clients_total = 0;
        for flight in &disruption.flights {
            let travellers = release::on_flight(&mut *conn, flight).await?;
            for traveller in travellers.into_iter().filter(|t| t.agency_id == agency.id) {
                clients_total += 1;
                if clients.len() < CLIENTS_SHOWN {
                    clients.push(ClientStep {
                        traveller_id: traveller.traveller_id,
                        record_locator: traveller.record_locator,
                        flight: flight.label(),
                        last: None,
                    });
                }
            }
        }
        let ids: Vec<&str> = clients.iter().map(|c| c.traveller_id.as_str()).collect();
        let mut steps =
            disruptions::last_steps(&mut *conn, &disruption.id, &agency.id, &ids).await?;
        for client in &mut clients {
            client.last = steps.remove(&client.traveller_id).map(|s| Step {
                at: format_time(s.at),
                action: s.action,
                outcome: s.outcome,
                reason: s.reason,
            });
        }
        shown.push(AgencyDisruption {
            disruption: DisruptionView::of(&disruption),
            clients,
            clients_total,
            budget_alerts,
        });
    }
    Ok(shown)
}
