//! `POST /v1/traveller/uses`: with the withdrawal code from their receipt, a traveller
//! sees what they consented to and which airlines received their contact or sent them
//! messages, when and why (GDPR art. 15(1)(c)); the same code withdraws at
//! `POST /v1/withdrawals`. The code travels in the body, never in a URL that could land
//! in a log.

use crate::domain::scope::ConsentState;
use crate::domain::time::format_time;
use crate::service::uses::{AirlineShown, Airlines, USE_ACTIONS, USE_OUTCOMES};
use crate::service::withdraw::{code_holder, current_version, WithdrawalRequest};
use crate::service::AppState;
use crate::service::Error;
use crate::store::audit::{self, EntryFilter};
use crate::store::consents::CodeHolder;
use crate::store::db::Db;
use crate::store::direct::read_apart;
use crate::store::disruptions::{self, Seen};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Most uses listed.
const MAX_USES: i64 = 1000;

/// One use, as the traveller reads it.
#[derive(Serialize, Deserialize, Debug)]
pub struct TravellerUse {
    /// When.
    pub at: String,
    /// Which airline.
    pub airline: AirlineShown,
    /// `contact_revealed`, `message_relayed`, `message_delivered`, `token_granted`, …
    pub what: String,
    /// For which notification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Why: the disruption.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_category: Option<String>,
    /// The flight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flight: Option<String>,
    /// The channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The audit entry recording it.
    pub audit_index: i64,
}

/// A disruption of the traveller's trip, as they see it.
#[derive(Serialize, Deserialize, Debug)]
pub struct TravellerDisruption {
    /// What happened (`cancellation`, `delay`, …).
    pub category: String,
    /// The flights it carries (`AF1234/2026-12-01`); none listed for an airport's
    /// closure, which may carry hundreds.
    pub flights: Vec<String>,
    /// The airport closed, for a closure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_airport: Option<String>,
    /// The new departure time, if the airline gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_departure: Option<String>,
    /// When the airline declared it.
    pub declared_at: String,
}

/// The most disruptions the traveller's view lists.
const DISRUPTIONS_SHOWN: i64 = 20;

/// What the traveller sees.
#[derive(Serialize, Deserialize, Debug)]
pub struct TravellerView {
    /// Their current record.
    pub consent_id: String,
    /// Its state.
    pub state: ConsentState,
    /// The purposes consented to.
    pub purposes: Vec<String>,
    /// The airlines it names.
    pub carriers: Vec<String>,
    /// When it ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    /// Every use of their contact, oldest first.
    pub uses: Vec<TravellerUse>,
    /// The open disruptions of their booking's flights, newest first: what the
    /// airline declared, never its note for agencies and officers.
    pub disruptions: Vec<TravellerDisruption>,
    /// Where the same code withdraws the consent.
    pub withdraw: String,
}

/// The traveller's view, by code; each address may try only a few codes a minute.
pub async fn uses(state: &AppState, body: WithdrawalRequest) -> Result<TravellerView, Error> {
    let view = UsesRead {
        code: body.code,
        now: state.clock.now(),
    };
    read_apart!(&state.store, view, |view, db| view.run(db))
}

/// The traveller's view, as it is handed to the thread that reads it: up to a
/// thousand uses, each with its airline, must not hold a runtime thread.
struct UsesRead {
    code: String,
    now: OffsetDateTime,
}

impl UsesRead {
    async fn run(&self, db: &mut impl Db) -> Result<TravellerView, Error> {
        let holder = code_holder(db, &self.code).await?;
        let row = current_version(db, &holder.agency_id, &holder.consent_id).await?;
        let uses = uses_of(db, &holder).await?;
        let disruptions = disruptions_of(db, &holder.traveller_id).await?;
        Ok(TravellerView {
            consent_id: row.id.clone(),
            state: row.state(self.now),
            purposes: row
                .scope
                .purposes
                .iter()
                .map(|p| p.as_str().to_string())
                .collect(),
            carriers: row
                .scope
                .carriers
                .iter()
                .map(|c| c.as_str().to_string())
                .collect(),
            valid_until: row.scope.valid_until.map(format_time),
            uses,
            disruptions,
            withdraw: "POST /v1/withdrawals with the same code".into(),
        })
    }
}

/// Every use of the holder's contact, oldest first.
async fn uses_of(db: &mut impl Db, holder: &CodeHolder) -> Result<Vec<TravellerUse>, Error> {
    let filter = EntryFilter {
        traveller_id: Some(holder.traveller_id.clone()),
        agency_id: Some(holder.agency_id.clone()),
        actions: USE_ACTIONS.to_vec(),
        outcomes: USE_OUTCOMES.to_vec(),
        ..EntryFilter::default()
    };
    let rows = audit::list_filtered(&mut *db, &filter, None, MAX_USES).await?;
    let mut airlines = Airlines::default();
    let mut uses = Vec::with_capacity(rows.len());
    for (entry, _) in &rows {
        let receipt = airlines.receipt(&mut *db, entry).await?;
        let what = match (entry.action.as_str(), entry.outcome.as_str()) {
            ("token_request", _) => "token_granted",
            ("token_redemption", _) => "contact_revealed",
            ("message_relay", _) => "message_accepted",
            ("message_receipt", "delivered") => "message_received",
            ("message_receipt", _) => "message_not_received",
            (_, "delivered") => "message_delivered",
            (_, "cancelled") => "message_cancelled",
            _ => "message_failed",
        };
        uses.push(TravellerUse {
            at: receipt.at,
            airline: receipt.airline,
            what: what.into(),
            purpose: receipt.purpose,
            event_category: receipt.event_category,
            flight: receipt.flight,
            channel: receipt.channel,
            audit_index: receipt.audit_index,
        });
    }
    Ok(uses)
}

/// The open disruptions of the traveller's booking's flights, newest first.
async fn disruptions_of(
    db: &mut impl Db,
    traveller_id: &str,
) -> Result<Vec<TravellerDisruption>, Error> {
    let open = disruptions::list(
        db,
        Seen::Traveller(traveller_id),
        true,
        None,
        DISRUPTIONS_SHOWN,
    )
    .await?;
    Ok(open
        .into_iter()
        .map(|d| TravellerDisruption {
            category: d.category.as_str().to_string(),
            flights: match d.closure {
                Some(_) => Vec::new(),
                None => d.flights.iter().map(|f| f.label()).collect(),
            },
            closed_airport: d.closure.map(|c| c.airport.as_str().to_string()),
            new_departure: d.new_departure.map(format_time),
            declared_at: format_time(d.declared_at),
        })
        .collect())
}
