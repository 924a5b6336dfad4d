//! What an agency controls and sees of the release path: how its clients are reached
//! (reveal or relay-only, for all its records or per record) and the receipts feed of
//! every use of its clients' data, with the erasure requests airlines have let pass
//! their deadline (its webhook is in `service::webhooks`).

use crate::audit::{Action, NewEntry, Outcome};
use crate::domain::delivery::Delivery;
use crate::domain::party::Party;
use crate::domain::party::PartyKind;
use crate::domain::time::format_time;
use crate::service::audit_entries::party_id;
use crate::service::input::page_limit;
use crate::service::uses::{Airlines, UseReceipt, USE_ACTIONS, USE_OUTCOMES};
use crate::service::AppState;
use crate::service::{Error, ErrorKind};
use crate::store::audit::{self, EntryFilter};
use crate::store::db::Db;
use crate::store::direct::read_apart;
use crate::store::disruptions::{self, Seen};
use crate::store::{from_millis, parties, reports, to_millis};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The agency's default delivery.
#[derive(Deserialize, Serialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct DeliverySetting {
    /// `reveal` or `relay`.
    pub delivery: Delivery,
}

/// Sets how all the agency's clients are reached (unless a record says otherwise).
/// Tokens granted from now on follow it; tokens already granted keep theirs.
pub async fn set_delivery(
    state: &AppState,
    request_id: &str,
    agency: &Party,
    body: DeliverySetting,
) -> Result<DeliverySetting, Error> {
    let mut tx = state.store.begin().await?;
    parties::set_delivery(&mut tx, &agency.id, body.delivery).await?;
    let mut entry = settings_entry(state, request_id, agency);
    entry = entry.agency(agency.id.clone());
    entry.reason = Some(match body.delivery {
        Delivery::Reveal => "delivery_reveal",
        Delivery::Relay => "delivery_relay",
    });
    state.commit_with_audit(tx, entry).await?;
    Ok(body)
}

/// A record's delivery.
#[derive(Deserialize, Serialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RecordDelivery {
    /// `reveal`, `relay`, or `agency_default` to follow the agency's setting.
    pub delivery: RecordDeliveryChoice,
}

/// A record's delivery choice.
#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RecordDeliveryChoice {
    /// Reveal the contact.
    Reveal,
    /// Relay only.
    Relay,
    /// Follow the agency's setting.
    AgencyDefault,
}

/// Sets how the traveller of one record is reached. It applies to the traveller, so
/// later versions of the record keep it.
pub async fn set_record_delivery(
    state: &AppState,
    request_id: &str,
    agency: &Party,
    id: String,
    body: RecordDelivery,
) -> Result<RecordDelivery, Error> {
    let delivery = match body.delivery {
        RecordDeliveryChoice::Reveal => Some(Delivery::Reveal),
        RecordDeliveryChoice::Relay => Some(Delivery::Relay),
        RecordDeliveryChoice::AgencyDefault => None,
    };
    let mut tx = state.store.begin().await?;
    if !crate::store::bookings::set_traveller_delivery(&mut tx, &agency.id, &id, delivery).await? {
        return Err(Error::of(ErrorKind::ConsentNotFound));
    }
    let mut entry = settings_entry(state, request_id, agency);
    entry = entry.agency(agency.id.clone()).consent(id);
    entry.reason = Some(match delivery {
        Some(Delivery::Reveal) => "delivery_reveal",
        Some(Delivery::Relay) => "delivery_relay",
        None => "delivery_agency_default",
    });
    state.commit_with_audit(tx, entry).await?;
    Ok(body)
}

fn settings_entry(
    state: &AppState,
    request_id: &str,
    agency: &crate::domain::party::Party,
) -> NewEntry {
    NewEntry::new(
        state.clock.now(),
        request_id,
        agency,
        Action::SettingsChange,
        Outcome::Changed,
    )
}

/// Filters of the receipts feed.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ReceiptQuery {
    /// At or after (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    /// Before (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    /// Only this airline, by designator.
    pub airline: Option<String>,
    /// Only this kind of use: `grant`, `release`, `relay` or `delivery`.
    pub kind: Option<UseKind>,
    /// Only this purpose.
    pub purpose: Option<String>,
    /// Only this disruption reference.
    pub event_reference: Option<String>,
    /// Only this record.
    pub consent_id: Option<String>,
    /// Only this traveller.
    pub traveller_id: Option<String>,
    /// The previous page's `next_after`.
    pub after: Option<i64>,
    /// 1 to 1000, default 100.
    pub limit: Option<i64>,
}

/// A kind of use.
#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UseKind {
    /// A token granted.
    Grant,
    /// A contact revealed.
    Release,
    /// A message accepted for relay.
    Relay,
    /// A relayed message delivered, failed or cancelled.
    Delivery,
    /// The SMS gateway's receipt: what reached the phone (or not).
    Receipt,
}

/// A page of receipts.
#[derive(Serialize, Deserialize, Debug)]
pub struct ReceiptPage {
    /// Uses, oldest first.
    pub receipts: Vec<UseReceipt>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
    /// When the receipts are those of one disruption (`event_reference`): how long
    /// the agency's clients waited to be told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_to_tell: Option<TimeToTell>,
    /// Erasure requests about the agency's clients that airlines have not acknowledged
    /// by their deadline, as of now, newest first.
    pub erasures_overdue: Vec<crate::service::erasures::ErasureRequest>,
}

/// How long an agency's clients waited to be told of a disruption, from its
/// declaration: what an airline must show under Regulation 261/2004 (art. 5 and 14),
/// seen from the agency's side.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct TimeToTell {
    /// The disruption.
    pub disruption_id: String,
    /// When the airline declared it.
    pub declared_at: String,
    /// The first message to one of the agency's clients a gateway accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_message_delivered_at: Option<String>,
    /// The last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_message_delivered_at: Option<String>,
    /// The last of the agency's clients' contacts the airline had revealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_redeemed_at: Option<String>,
    /// From the declaration to the first message accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_to_first_message: Option<f64>,
    /// From the declaration to the last message accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_to_last_message: Option<f64>,
    /// From the declaration to the last contact revealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_to_last_redemption: Option<f64>,
    /// Messages to the agency's clients accepted by a gateway.
    pub messages_delivered: i64,
    /// The agency's clients' contacts revealed to the airline.
    pub contacts_revealed: i64,
}

/// The time to tell the agency's clients of the disruption `id`, if it is one the
/// agency may see.
async fn time_to_tell(
    conn: &mut impl Db,
    agency: &Party,
    id: &str,
) -> Result<Option<TimeToTell>, Error> {
    let Some(disruption) = disruptions::by_id(&mut *conn, Seen::Agency(&agency.id), id).await?
    else {
        return Ok(None);
    };
    let declared = to_millis(disruption.declared_at);
    let told = reports::clients_told(conn, &agency.id, id, declared).await?;
    let at = |ms: Option<i64>| ms.and_then(|ms| from_millis(ms).ok()).map(format_time);
    let after = |ms: Option<i64>| ms.map(|ms| (ms - declared) as f64 / 1000.0);
    Ok(Some(TimeToTell {
        disruption_id: disruption.id.clone(),
        declared_at: format_time(disruption.declared_at),
        first_message_delivered_at: at(told.first_delivered),
        last_message_delivered_at: at(told.last_delivered),
        last_redeemed_at: at(told.last_redeemed),
        seconds_to_first_message: after(told.first_delivered),
        seconds_to_last_message: after(told.last_delivered),
        seconds_to_last_redemption: after(told.last_redeemed),
        messages_delivered: told.delivered,
        contacts_revealed: told.redeemed,
    }))
}

/// Every use of the agency's clients' data, filtered and paginated.
pub async fn receipts(
    state: &AppState,
    agency: &Party,
    query: ReceiptQuery,
) -> Result<ReceiptPage, Error> {
    let verdict = state
        .settings
        .policies
        .may_read(PartyKind::Agency, &agency.id, "read_receipts");
    if !verdict.allowed() {
        return Err(Error::of(ErrorKind::NotPermitted).with_rule(verdict.policy_list()));
    }
    let limit = page_limit(query.limit, 100, 1000)?;
    let page = ReceiptsRead {
        agency: agency.clone(),
        query,
        limit,
        now: state.clock.now(),
    };
    read_apart!(&state.store, page, |page, db| page.run(db))
}

/// A page of receipts, as it is handed to the thread that reads it: up to a thousand
/// entries, each with its airline, must not hold a runtime thread.
struct ReceiptsRead {
    agency: Party,
    query: ReceiptQuery,
    limit: i64,
    now: OffsetDateTime,
}

impl ReceiptsRead {
    async fn run(&self, db: &mut impl Db) -> Result<ReceiptPage, Error> {
        let ReceiptsRead {
            agency,
            query,
            limit,
            now,
        } = self;
        let limit = *limit;
        let erasures_overdue =
            crate::service::erasures::overdue(db, *now, Some(&agency.id)).await?;
        let Some(airline_id) = party_id(db, &query.airline, PartyKind::Airline).await? else {
            // An unknown airline has used nothing.
            return Ok(ReceiptPage {
                receipts: Vec::new(),
                next_after: None,
                time_to_tell: None,
                erasures_overdue,
            });
        };
        let actions = match query.kind {
            None => USE_ACTIONS.to_vec(),
            Some(UseKind::Grant) => vec!["token_request"],
            Some(UseKind::Release) => vec!["token_redemption"],
            Some(UseKind::Relay) => vec!["message_relay"],
            Some(UseKind::Delivery) => vec!["message_delivery"],
            Some(UseKind::Receipt) => vec!["message_receipt"],
        };
        let filter = EntryFilter {
            agency_id: Some(agency.id.clone()),
            traveller_id: query.traveller_id.clone(),
            airline_id,
            actions,
            outcomes: USE_OUTCOMES.to_vec(),
            purpose: query.purpose.clone(),
            event_reference: query.event_reference.clone(),
            consent_id: query.consent_id.clone(),
            since: query.since,
            until: query.until,
            ..EntryFilter::default()
        };
        let rows = audit::list_filtered(db, &filter, query.after, limit + 1).await?;
        let more = rows.len() as i64 > limit;
        let mut airlines = Airlines::default();
        let mut receipts = Vec::new();
        for (entry, _) in rows.iter().take(limit as usize) {
            receipts.push(airlines.receipt(db, entry).await?);
        }
        let next_after = if more {
            receipts.last().map(|r| r.audit_index)
        } else {
            None
        };
        let time_to_tell = match query.event_reference.as_deref() {
            Some(id) if id.starts_with(crate::domain::disruption::ID_PREFIX) => {
                time_to_tell(db, agency, id).await?
            }
            _ => None,
        };
        Ok(ReceiptPage {
            receipts,
            next_after,
            time_to_tell,
            erasures_overdue,
        })
    }
}
