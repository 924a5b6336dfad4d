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
use serde::{Deserialize, Serialize};

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
    /// Where the same code withdraws the consent.
    pub withdraw: String,
}

/// The traveller's view, by code; each address may try only a few codes a minute.
pub async fn uses(state: &AppState, body: WithdrawalRequest) -> Result<TravellerView, Error> {
    let mut conn = state.store.reader().acquire().await?;
    let holder = code_holder(&mut conn, &body.code).await?;
    let now = state.clock.now();
    let row = current_version(&mut conn, &holder.agency_id, &holder.consent_id).await?;
    let filter = EntryFilter {
        traveller_id: Some(holder.traveller_id.clone()),
        agency_id: Some(holder.agency_id.clone()),
        actions: USE_ACTIONS.to_vec(),
        outcomes: USE_OUTCOMES.to_vec(),
        ..EntryFilter::default()
    };
    let rows = audit::list_filtered(&mut conn, &filter, None, MAX_USES).await?;
    let mut airlines = Airlines::default();
    let mut uses = Vec::with_capacity(rows.len());
    for (entry, _) in &rows {
        let receipt = airlines.receipt(&mut conn, entry).await?;
        let what = match (entry.action.as_str(), entry.outcome.as_str()) {
            ("token_request", _) => "token_granted",
            ("token_redemption", _) => "contact_revealed",
            ("message_relay", _) => "message_accepted",
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
    Ok(TravellerView {
        consent_id: row.id.clone(),
        state: row.state(now),
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
        withdraw: "POST /v1/withdrawals with the same code".into(),
    })
}
