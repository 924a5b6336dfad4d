//! What an agency is told of a disruption that touches its clients, in the same
//! second: a signed webhook event, `disruption.declared` or `disruption.updated` (a
//! closing included, with its state `closed`), carrying the disruption and, for each
//! of the agency's travellers on its flights, what was done: a message relayed by the
//! broker, a token handed to the airline, or nothing and why.
//!
//! The events are queued in the webhook outbox in one transaction once the change
//! and its telling are durable, and pushed by the webhook worker like every use (same
//! signature, retries and circuit breaker). Each agency reads only its own clients,
//! by pseudonymous id and record locator: never a name or a contact.

use super::budgets;
use super::disruptions::DisruptionView;
use super::telling::{RelayedMessage, Told};
use super::{AppState, Error};
use crate::domain::booking::Flight;
use crate::domain::ids::new_id;
use crate::store::outbox::{self, WebhookDelivery};
use crate::store::{parties, release};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which change an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The airline declared the disruption.
    Declared,
    /// The airline changed it (a new time, category or note) or closed it.
    Updated,
}

impl Change {
    /// The event's `type`.
    pub fn event_type(self) -> &'static str {
        match self {
            Self::Declared => "disruption.declared",
            Self::Updated => "disruption.updated",
        }
    }
}

/// What was done for one client by the change.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Done {
    /// The broker relayed the airline's template (see `messages`).
    Relayed,
    /// The airline got a token for the traveller (the agency reveals).
    TokenGranted,
    /// Nothing could be sent or granted (see `reason`).
    Refused,
    /// Nothing was sent by this change (a declaration without telling, a closing, a
    /// flight the airline's rate limit left ungranted).
    NotTold,
}

/// One of the agency's travellers on the disruption's flights.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Client {
    /// The traveller (pseudonymous id).
    pub traveller_id: String,
    /// The booking's record locator.
    pub record_locator: String,
    /// The flight, `AF1234/2026-12-01`.
    pub flight: String,
    /// What the change did for them.
    pub done: Done,
    /// Why nothing was done, or why a channel was not written to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The messages queued for them (read each at `GET /v1/messages/{id}`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub messages: Vec<RelayedMessage>,
}

/// Queues the event of `change` for every agency with a client on the disruption's
/// flights and a webhook registered: from `told` when the change told them, otherwise
/// from the flights' travellers as stored now.
///
/// The change is durable and its travellers told when this runs: a failure to queue
/// is logged, not turned into a refusal of a change that was made (the airline would
/// retry a declaration that exists). Agencies still read the change on
/// `GET /v1/disruptions` and each use in their receipts.
pub async fn queue(
    state: &AppState,
    change: Change,
    disruption: &DisruptionView,
    told: Option<&Told>,
) {
    if let Err(error) = try_queue(state, change, disruption, told).await {
        tracing::error!(
            disruption_id = %disruption.id,
            event = change.event_type(),
            error = %error.detail(),
            "could not queue the agencies' disruption event"
        );
    }
}

async fn try_queue(
    state: &AppState,
    change: Change,
    disruption: &DisruptionView,
    told: Option<&Told>,
) -> Result<(), Error> {
    let clients = match told {
        Some(told) => {
            let mut clients = clients_told(told);
            // A flight that could not be granted (a rate limit) told nobody: its
            // travellers are listed as such, from the flight as stored.
            let untold: Vec<Flight> = disruption
                .flights
                .iter()
                .zip(&told.flights)
                .filter(|(_, flight)| flight.error.is_some())
                .map(|(flight, _)| flight.clone())
                .collect();
            for (agency, more) in clients_on(state, &untold).await? {
                clients.entry(agency).or_default().extend(more);
            }
            clients
        }
        None => clients_on(state, &disruption.flights).await?,
    };
    if clients.is_empty() {
        return Ok(());
    }
    let mut shown = serde_json::to_value(disruption).map_err(Error::internal)?;
    if let Some(fields) = shown.as_object_mut() {
        // The airline's answer lists every agency's travellers: never pushed.
        fields.remove("told");
    }
    let audit_index = disruption.audit_index.unwrap_or_default();
    let now = state.clock.now();
    // The airline's budgets past their alert level today: each agency is told with
    // the event (no pretext harvesting goes unseen by those whose clients it reaches).
    let alerts = {
        let mut reader = state.store.reader().acquire().await?;
        let (since, until) = budgets::day_span(now);
        budgets::alerts(&mut reader, Some(&disruption.airline_id), since, until).await?
    };
    let mut tx = state.store.begin().await?;
    let agencies: Vec<&str> = clients.keys().map(String::as_str).collect();
    let with = parties::with_webhooks(&mut tx, &agencies).await?;
    let deliveries: Vec<WebhookDelivery> = clients
        .iter()
        .filter(|(agency, _)| with.contains(agency.as_str()))
        .map(|(agency, clients)| WebhookDelivery {
            id: new_id("whd"),
            agency_id: agency.clone(),
            audit_index,
            payload: serde_json::json!({
                "type": change.event_type(),
                "disruption": shown,
                "clients": clients,
                "budget_alerts": alerts,
            })
            .to_string(),
            attempts: 0,
        })
        .collect();
    if deliveries.is_empty() {
        tx.rollback().await.ok();
        return Ok(());
    }
    outbox::enqueue_webhooks(&mut tx, &deliveries, now).await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    state.webhook_wake.notify_one();
    Ok(())
}

/// Each agency's clients as the telling left them.
fn clients_told(told: &Told) -> BTreeMap<String, Vec<Client>> {
    let mut by_agency: BTreeMap<String, Vec<Client>> = BTreeMap::new();
    for flight in &told.flights {
        let mut add = |traveller_id: &str, client: Client| {
            if let Some(agency) = flight.agencies.get(traveller_id) {
                by_agency.entry(agency.clone()).or_default().push(client);
            }
        };
        for granted in &flight.granted {
            let client = Client {
                traveller_id: granted.traveller_id.clone(),
                record_locator: granted.record_locator.clone(),
                flight: flight.flight.clone(),
                done: Done::TokenGranted,
                reason: None,
                messages: Vec::new(),
            };
            add(&granted.traveller_id, client);
        }
        for relayed in &flight.relayed {
            let sent = !relayed.messages.is_empty();
            let client = Client {
                traveller_id: relayed.traveller_id.clone(),
                record_locator: relayed.record_locator.clone(),
                flight: flight.flight.clone(),
                done: if sent { Done::Relayed } else { Done::Refused },
                reason: relayed.not_sent.values().next().cloned(),
                messages: relayed.messages.clone(),
            };
            add(&relayed.traveller_id, client);
        }
        for refused in &flight.refused {
            let client = Client {
                traveller_id: refused.traveller_id.clone(),
                record_locator: refused.record_locator.clone(),
                flight: flight.flight.clone(),
                done: Done::Refused,
                reason: Some(refused.reason.clone()),
                messages: Vec::new(),
            };
            add(&refused.traveller_id, client);
        }
    }
    by_agency
}

/// Each agency's travellers on `flights`, as stored now, for a change that told none.
async fn clients_on(
    state: &AppState,
    flights: &[Flight],
) -> Result<BTreeMap<String, Vec<Client>>, Error> {
    let mut by_agency: BTreeMap<String, Vec<Client>> = BTreeMap::new();
    for flight in flights {
        let travellers =
            crate::store::direct::read_now!(&state.store, |db| release::on_flight(db, flight))?;
        for traveller in travellers {
            by_agency
                .entry(traveller.agency_id)
                .or_default()
                .push(Client {
                    traveller_id: traveller.traveller_id,
                    record_locator: traveller.record_locator,
                    flight: flight.label(),
                    done: Done::NotTold,
                    reason: None,
                    messages: Vec::new(),
                });
        }
    }
    Ok(by_agency)
}
