//! Reaching people, not numbers: whether a traveller's channel reaches them.
//!
//! A gateway's `undeliverable` receipt (and an email's hard bounce) marks the channel
//! unreachable; a later delivery marks it reachable again; an `expired` SMS says
//! nothing of the number and changes nothing. What is learnt is about one contact (its
//! keyed digest): when the agency uploads a new version with another contact, the old
//! state stays behind and the contact leaves the agency's list of contacts to fix. The
//! contact is kept either way: the agency decides.
//!
//! When a channel becomes unreachable the agency gets a signed webhook event,
//! `contact.unreachable` (the traveller's pseudonymous id, the channel, why, and the
//! message that told; never the contact), in the transaction that records what was
//! learnt.

use crate::audit::AuditEntry;
use crate::domain::ids::new_id;
use crate::domain::party::Party;
use crate::domain::time::format_time;
use crate::service::{AppState, Error};
use crate::store::db::Db;
use crate::store::outbox::WebhookDelivery;
use crate::store::reachability::{self, Learnt, MessageContact};
use crate::store::reports::{self, CoverageOf, Period};
use crate::store::{parties, StoreError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The webhook event an agency gets when a client's channel stops reaching them.
pub const EVENT_TYPE: &str = "contact.unreachable";

/// What a receipt or a bounce says of the channel it came back from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// It reached the traveller.
    Delivered,
    /// It cannot reach them: `undeliverable` (SMS) or `hard_bounce` (email).
    Unreachable(&'static str),
    /// Nothing about the contact (an expired SMS, a soft bounce).
    Nothing,
}

/// A channel that just became unreachable, for the agency's event.
#[derive(Debug, Clone)]
pub struct BecameUnreachable {
    contact: MessageContact,
    reason: &'static str,
    message_id: String,
    at: OffsetDateTime,
    agency_hooked: bool,
}

/// Records, inside the write over `db`, what a receipt or a bounce of `message_id`
/// says of its channel. Answers the channel when it just became unreachable (it was
/// not known unreachable for this contact), for [`events_of`].
pub async fn learn(
    db: &mut impl Db,
    message_id: &str,
    heard: Heard,
    now: OffsetDateTime,
) -> Result<Option<BecameUnreachable>, StoreError> {
    let (state, reason) = match heard {
        Heard::Delivered => ("reachable", None),
        Heard::Unreachable(reason) => ("unreachable", Some(reason)),
        Heard::Nothing => return Ok(None),
    };
    let Some(contact) = reachability::message_contact(db, message_id).await? else {
        return Ok(None);
    };
    // A record stored before digests were kept, or purged since: nothing to tie it to.
    let Some(digest) = contact.digest.clone() else {
        return Ok(None);
    };
    let known = reachability::known(db, &contact.traveller_id, &contact.channel).await?;
    let learnt = Learnt {
        contact: &contact,
        digest: &digest,
        state,
        reason,
        message_id,
        at: now,
        verified: false,
    };
    reachability::record(db, &learnt).await?;
    let already = known.is_some_and(|k| k.state == "unreachable" && k.digest == digest);
    let Some(reason) = reason.filter(|_| !already) else {
        return Ok(None);
    };
    let agency_hooked = parties::with_webhooks(db, &[contact.agency_id.as_str()])
        .await?
        .contains(&contact.agency_id);
    Ok(Some(BecameUnreachable {
        contact,
        reason,
        message_id: message_id.to_string(),
        at: now,
        agency_hooked,
    }))
}

/// The agency's `contact.unreachable` event, naming the entry that recorded what was
/// learnt (the first of `stored`); none when the agency has no webhook.
pub fn events_of(
    became: Option<&BecameUnreachable>,
    stored: &[AuditEntry],
) -> Vec<WebhookDelivery> {
    let (Some(became), Some(entry)) = (became.filter(|b| b.agency_hooked), stored.first()) else {
        return Vec::new();
    };
    let payload = serde_json::json!({
        "type": EVENT_TYPE,
        "contact": {
            "traveller_id": became.contact.traveller_id,
            "channel": became.contact.channel,
            "reason": became.reason,
            "message_id": became.message_id,
            "since": format_time(became.at),
        },
        "audit_index": entry.index,
    });
    vec![WebhookDelivery {
        id: new_id("whd"),
        agency_id: became.contact.agency_id.clone(),
        audit_index: entry.index,
        payload: payload.to_string(),
        attempts: 0,
    }]
}

/// A client's channel that does not reach them, as the agency sees it.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ContactToFix {
    /// The traveller (pseudonymous id).
    pub traveller_id: String,
    /// Their current record.
    pub consent_id: String,
    /// The agency's record id.
    pub record_id: String,
    /// The booking's record locator.
    pub record_locator: String,
    /// `sms` or `email`.
    pub channel: String,
    /// Why: `undeliverable` (the SMS gateway) or `hard_bounce` (an email).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Since when.
    pub since: String,
    /// The first departure ahead (`YYYY-MM-DD`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub departs: Option<String>,
}

/// The agency's contacts to fix before the trip.
#[derive(Serialize, Deserialize, Debug)]
pub struct ContactsToFix {
    /// Soonest departure first; those with no departure ahead last.
    pub contacts: Vec<ContactToFix>,
    /// The agency's clients flying in the next 30 days: with a consent in force, reached
    /// lately, known unreachable.
    pub coverage: Coverage,
}

/// How many travellers can be reached: counts only, never who.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Coverage {
    /// Travellers flying.
    pub travellers: i64,
    /// Of those, with a consent in force that holds a contact.
    pub with_contact: i64,
    /// Of those, delivered to (or confirmed by the traveller, a verification) at the
    /// contact their record holds now, within `relay.reached_within_days`.
    pub reached: i64,
    /// Of those, with a contact known not to reach them.
    pub unreachable: i64,
}

impl Coverage {
    fn of(rows: Vec<reports::Coverage>) -> Self {
        rows.into_iter().fold(
            Self {
                travellers: 0,
                with_contact: 0,
                reached: 0,
                unreachable: 0,
            },
            |sum, row| Self {
                travellers: sum.travellers + row.travellers,
                with_contact: sum.with_contact + row.with_contact,
                reached: sum.reached + row.reached,
                unreachable: sum.unreachable + row.unreachable,
            },
        )
    }
}

/// Days ahead the agency's coverage counts.
const AHEAD_DAYS: i64 = 30;

/// Most contacts listed at once.
pub const MAX_LISTED: i64 = 1000;

/// The agency's clients whose current record holds a contact known not to reach them.
pub async fn to_fix(state: &AppState, agency: &Party) -> Result<ContactsToFix, Error> {
    let now = state.clock.now();
    let today = crate::domain::booking::FlightDate::of(now.date()).as_string();
    let mut conn = state.store.reader().acquire().await?;
    let rows = reachability::to_fix(&mut conn, &agency.id, &today, MAX_LISTED).await?;
    let ahead = Period {
        since: now.replace_time(time::Time::MIDNIGHT),
        until: now.replace_time(time::Time::MIDNIGHT) + time::Duration::days(AHEAD_DAYS),
    };
    let reached_since = crate::service::reports::reached_since(state, now);
    let coverage = Coverage::of(
        reports::coverage(
            &mut conn,
            ahead,
            CoverageOf::Agency(&agency.id),
            now,
            reached_since,
        )
        .await?,
    );
    Ok(ContactsToFix {
        coverage,
        contacts: rows
            .into_iter()
            .map(|r| ContactToFix {
                traveller_id: r.traveller_id,
                consent_id: r.consent_id,
                record_id: r.record_id,
                record_locator: r.record_locator,
                channel: r.channel,
                reason: r.reason,
                since: format_time(r.since),
                departs: r.departs,
            })
            .collect(),
    })
}

/// A flight's coverage, as its airline may ask before a disruption.
#[derive(Serialize, Deserialize, Debug)]
pub struct FlightCoverage {
    /// `AF1234/2026-12-01`.
    pub flight: String,
    /// Its travellers: with a consent in force naming the airline, reached lately, known
    /// unreachable.
    #[serde(flatten)]
    pub coverage: Coverage,
}

/// How many of a flight's travellers the airline could reach: counts only, for one of
/// its own flights.
pub async fn flight_coverage(
    state: &AppState,
    airline: &Party,
    flight: crate::domain::booking::Flight,
) -> Result<FlightCoverage, Error> {
    if airline.code.as_deref() != Some(flight.carrier.as_str()) {
        return Err(Error::field(
            crate::service::ErrorKind::InvalidField,
            "carrier",
            "is not your airline's designator: ask about your own flights",
        ));
    }
    let now = state.clock.now();
    let day = flight.date.date().midnight().assume_utc();
    let period = Period {
        since: day,
        until: day + time::Duration::days(1),
    };
    let (carrier, number, date) = (
        flight.carrier.as_str(),
        flight.flight_number.as_str(),
        flight.date.as_string(),
    );
    let mut conn = state.store.reader().acquire().await?;
    let rows = reports::coverage(
        &mut conn,
        period,
        CoverageOf::Flight(carrier, number, &date),
        now,
        crate::service::reports::reached_since(state, now),
    )
    .await?;
    Ok(FlightCoverage {
        flight: flight.label(),
        coverage: Coverage::of(rows),
    })
}
