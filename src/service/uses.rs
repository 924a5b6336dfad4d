//! Uses of a client's data, as the agency and the traveller see them: every token
//! grant, contact release and relayed message (and its delivery), read from the audit
//! log. The same receipt is what an agency's webhook receives, signed.

use crate::audit::AuditEntry;
use crate::crypto::seal::Slot;
use crate::domain::ids::new_id;
use crate::store::db::Db;
use crate::store::outbox::{self, WebhookDelivery};
use crate::store::{parties, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use time::OffsetDateTime;

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "Passerelle-Signature";

/// Actions that are uses of a client's data (and the gateway's receipt of a relayed
/// message: what reached the traveller's phone, which the agency and the traveller
/// see beside the message).
pub const USE_ACTIONS: [&str; 5] = [
    "token_request",
    "token_redemption",
    "message_relay",
    "message_delivery",
    "message_receipt",
];

/// Outcomes that are uses (a refusal used nothing; a deferred attempt is followed by
/// another entry).
pub const USE_OUTCOMES: [&str; 6] = [
    "granted",
    "released",
    "queued",
    "delivered",
    "failed",
    "cancelled",
];

/// Whether an audit entry records a use of a client's data.
pub fn is_use(entry: &AuditEntry) -> bool {
    entry.agency_id.is_some()
        && USE_ACTIONS.contains(&entry.action.as_str())
        && USE_OUTCOMES.contains(&entry.outcome.as_str())
}

/// The airline, as the agency or traveller reads it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AirlineShown {
    /// Its party id.
    pub id: String,
    /// Its designator.
    pub designator: Option<String>,
    /// Its name.
    pub name: String,
}

/// One use of a client's data.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct UseReceipt {
    /// The audit entry recording it (prove it with the audit log).
    pub audit_index: i64,
    /// When.
    pub at: String,
    /// `token_request` (a grant), `token_redemption` (the contact revealed),
    /// `message_relay` (a message accepted) or `message_delivery`.
    pub action: String,
    /// `granted`, `released`, `queued`, `delivered`, `failed` or `cancelled`.
    pub outcome: String,
    /// Which airline.
    pub airline: AirlineShown,
    /// For which notification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The disruption behind it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_category: Option<String>,
    /// The airline's disruption reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_reference: Option<String>,
    /// The flight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flight: Option<String>,
    /// The consent record it was done under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_id: Option<String>,
    /// The traveller (pseudonymous id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traveller_id: Option<String>,
    /// The token's public id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// The relayed message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The channel(s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The policies that allowed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policies: Option<String>,
}

/// Looks up airlines once per request.
#[derive(Default)]
pub struct Airlines(HashMap<String, AirlineShown>);

impl Airlines {
    /// The receipt for an entry; the airline is read once and remembered.
    pub async fn receipt(
        &mut self,
        db: &mut impl Db,
        entry: &AuditEntry,
    ) -> Result<UseReceipt, StoreError> {
        let airline_id = entry.airline_id.clone().unwrap_or_default();
        if !self.0.contains_key(&airline_id) {
            let listed = parties::listed(db, &airline_id).await?;
            let shown = AirlineShown {
                id: airline_id.clone(),
                designator: listed.as_ref().and_then(|l| l.code.clone()),
                name: listed.map(|l| l.name).unwrap_or_default(),
            };
            self.0.insert(airline_id.clone(), shown);
        }
        Ok(UseReceipt {
            audit_index: entry.index,
            at: entry.at.clone(),
            action: entry.action.clone(),
            outcome: entry.outcome.clone(),
            airline: self.0[&airline_id].clone(),
            purpose: entry.purpose.clone(),
            event_category: entry.event_category.clone(),
            event_reference: entry.event_reference.clone(),
            flight: entry.flight.clone(),
            consent_id: entry.consent_id.clone(),
            traveller_id: entry.traveller_id.clone(),
            token_id: entry.token_id.clone(),
            message_id: entry.message_id.clone(),
            channel: entry.channel.clone(),
            policies: entry.policies.clone(),
        })
    }
}

/// Webhook pushes queued while one transaction's entries are appended.
#[derive(Default)]
pub struct Pushes {
    webhooks: HashMap<String, bool>,
    airlines: Airlines,
    queued: usize,
}

impl Pushes {
    /// Queues a push of each entry that is a use to its agency's webhook, if the
    /// agency registered one: the agencies are looked up together, the pushes stored
    /// together (a batch of uses is one statement of each, not one per use).
    pub async fn queue_all(
        &mut self,
        db: &mut impl Db,
        entries: &[AuditEntry],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let uses: Vec<&AuditEntry> = entries.iter().filter(|e| is_use(e)).collect();
        let mut unknown: Vec<&str> = uses
            .iter()
            .filter_map(|e| e.agency_id.as_deref())
            .filter(|agency| !self.webhooks.contains_key(*agency))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        if !unknown.is_empty() {
            let with = parties::with_webhooks(db, &unknown).await?;
            for agency in unknown {
                self.webhooks
                    .insert(agency.to_string(), with.contains(agency));
            }
        }
        let mut deliveries = Vec::new();
        for entry in uses {
            let agency_id = entry.agency_id.clone().unwrap_or_default();
            if !self.webhooks.get(&agency_id).copied().unwrap_or(false) {
                continue;
            }
            let receipt = self.airlines.receipt(db, entry).await?;
            let payload = serde_json::json!({
                "type": "passerelle.use",
                "receipt": receipt,
            });
            deliveries.push(WebhookDelivery {
                id: new_id("whd"),
                agency_id,
                audit_index: entry.index,
                payload: payload.to_string(),
                attempts: 0,
            });
        }
        outbox::enqueue_webhooks(db, &deliveries, now).await?;
        self.queued += deliveries.len();
        Ok(())
    }

    /// Whether any push was queued.
    pub fn queued(&self) -> bool {
        self.queued > 0
    }
}

/// Where a webhook's secret is sealed.
pub fn webhook_secret_slot(agency_id: &str) -> Slot<'_> {
    Slot {
        table: "parties",
        column: "webhook_secret",
        row_id: agency_id,
    }
}
