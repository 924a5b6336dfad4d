//! Delivering what the outbox holds: relayed messages and agency webhook pushes.
//!
//! The workers (`workers::relay`) claim rows due, send them through the transports,
//! and record each attempt here. A message is sent only if its consent still stands
//! at delivery time: the recipient is opened from the consent record then, never
//! copied into the outbox, so a withdrawal or a purge in between cancels it. Every
//! outcome of a message (delivered, deferred with the reason, failed, cancelled) is
//! audited through the one audited write; webhook pushes are not, since each reports
//! an entry already in the log.

use crate::audit::merkle::Frontier;
use crate::audit::{Action, NewEntry, Outcome};
use crate::domain::scope::Inactive;
use crate::policy::tunables::Backoff;
use crate::service::audit_log::{append_with_pushes, Audited};
use crate::service::sealed::{body_slot, open_contacts, Contacts, MessageBody};
use crate::service::uses::webhook_secret_slot;
use crate::service::{AppState, Error};
use crate::store::db::Db;
use crate::store::{outbox, parties, sealed, tokens, StoreError};
use std::time::Duration;
use time::OffsetDateTime;

pub use crate::store::outbox::{Message, Queue, WebhookDelivery};

/// How long a claimed row is reserved for this broker.
const LEASE: time::Duration = time::Duration::minutes(2);

/// How one attempt ended.
#[derive(Debug, Clone)]
pub enum Attempt {
    /// Handed over.
    Delivered,
    /// Failed; worth another try.
    Transient(String),
    /// Failed; another try would fail the same way.
    Permanent(String),
    /// Not attempted: the consent no longer allows it, or there is no contact.
    Cancelled(&'static str),
}

/// Claims up to `round` rows of `queue` due now, leased to this broker.
pub async fn claim_messages(state: &AppState, round: i64) -> Result<Vec<Message>, Error> {
    let now = state.clock.now();
    Ok(outbox::claim_messages(&state.store, now, now + LEASE, round).await?)
}

/// Claims up to `round` webhook pushes due now, leased to this broker.
pub async fn claim_pushes(state: &AppState, round: i64) -> Result<Vec<WebhookDelivery>, Error> {
    let now = state.clock.now();
    Ok(outbox::claim_webhooks(&state.store, now, now + LEASE, round).await?)
}

/// How long until the queue's next row is due: at least 50 ms, at most a second, so
/// that rows queued by other brokers on the same database are found within a second.
pub async fn next_wait(state: &AppState, queue: Queue) -> Result<Duration, Error> {
    let mut conn = state.store.reader().acquire().await?;
    let next = outbox::next_due(&mut conn, queue).await?;
    let now = state.clock.now();
    let wait = next.map_or(Duration::from_secs(1), |at| {
        Duration::try_from(at - now).unwrap_or(Duration::ZERO)
    });
    Ok(wait.clamp(Duration::from_millis(50), Duration::from_secs(1)))
}

/// A message ready to send: its recipient and its words, opened now.
pub struct Opened {
    /// The record's contacts.
    pub to: Contacts,
    /// The words.
    pub body: MessageBody,
}

/// Opens a message for sending if its consent still stands; otherwise the reason it
/// is cancelled.
pub async fn open_message(
    state: &AppState,
    message: &Message,
) -> Result<Result<Opened, &'static str>, Error> {
    let now = state.clock.now();
    let consent_id = &message.consent_id;
    let record =
        crate::store::direct::read_now!(&state.store, |db| sealed::for_sending(db, consent_id))?
            .ok_or_else(|| {
                Error::internal(format!("message {} names no stored record", message.id))
            })?;
    match record.scope.activity(now) {
        Ok(()) => {}
        Err(Inactive::Withdrawn) => return Ok(Err("consent_withdrawn")),
        Err(_) => return Ok(Err("consent_inactive")),
    }
    let Some(to) = open_contacts(state, consent_id, &record.sealed)? else {
        return Ok(Err("contact_purged"));
    };
    let body: MessageBody = state
        .keys
        .keys()
        .root()
        .open(body_slot(&message.id), &message.sealed_body)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| Error::internal(format!("message {} does not open", message.id)))?;
    Ok(Ok(Opened { to, body }))
}

/// Records how the attempts of a round of deliveries ended, each with its audit entry
/// (done, or due again after the relay's backoff), in one write.
pub async fn record_message_attempts(
    state: &AppState,
    attempts: Vec<(Message, Attempt)>,
) -> Result<(), Error> {
    if attempts.is_empty() {
        return Ok(());
    }
    let record = RecordAttempts {
        attempts,
        backoff: state.settings.policies.tunables.relay_backoff(),
        now: state.clock.now(),
    };
    state.write_audited(record).await?;
    Ok(())
}

/// A round's attempts, recorded together.
struct RecordAttempts {
    attempts: Vec<(Message, Attempt)>,
    backoff: Backoff,
    now: OffsetDateTime,
}

impl RecordAttempts {
    async fn record(
        self,
        db: &mut impl Db,
        right_edge: &mut Option<Frontier>,
    ) -> Result<Audited<()>, StoreError> {
        let mut entries = Vec::with_capacity(self.attempts.len());
        for (message, attempt) in &self.attempts {
            entries.push(record_attempt(db, message, attempt, &self.backoff, self.now).await?);
        }
        append_with_pushes(db, right_edge, (), entries, self.now).await
    }
}

crate::store::direct::write_over_db!(RecordAttempts, Audited<()>, record);

/// Records one attempt on its message and returns its audit entry.
async fn record_attempt(
    db: &mut impl Db,
    message: &Message,
    attempt: &Attempt,
    backoff: &Backoff,
    now: OffsetDateTime,
) -> Result<NewEntry, StoreError> {
    let attempts = u32::try_from(message.attempts).unwrap_or(u32::MAX) + 1;
    let id = &message.id;
    let (outcome, reason) = match attempt {
        Attempt::Delivered => {
            outbox::finish(db, Queue::Messages, id, "delivered", None, true, now).await?;
            (Outcome::Delivered, None)
        }
        Attempt::Cancelled(reason) => {
            let why = Some(*reason);
            outbox::finish(db, Queue::Messages, id, "cancelled", why, false, now).await?;
            (Outcome::Cancelled, Some(reason.to_string()))
        }
        Attempt::Transient(why) if attempts < backoff.max_attempts => {
            let next = now + backoff.after(attempts);
            outbox::retry_later(db, Queue::Messages, id, why, next).await?;
            (Outcome::Deferred, Some(why.clone()))
        }
        Attempt::Transient(why) | Attempt::Permanent(why) => {
            let reason = Some(why.as_str());
            outbox::finish(db, Queue::Messages, id, "failed", reason, true, now).await?;
            (Outcome::Failed, Some(why.clone()))
        }
    };
    let mut entry = message_entry(
        db,
        message,
        "relay-worker",
        Action::MessageDelivery,
        outcome,
        now,
    )
    .await?;
    entry.reason = reason.as_deref().map(reason_code);
    Ok(entry)
}

/// The broker's audit entry of something that became of a relayed message (an
/// attempt, the gateway's receipt): whom it concerns, and the purpose, disruption and
/// flight of the token it was sent under. `work` names what recorded it.
pub(crate) async fn message_entry(
    db: &mut impl Db,
    message: &Message,
    work: &str,
    action: Action,
    outcome: Outcome,
    now: OffsetDateTime,
) -> Result<NewEntry, StoreError> {
    let token = tokens::find(db, &message.token_id).await?;
    let mut entry = NewEntry::by_broker(now, work, action, outcome)
        .agency(message.agency_id.clone())
        .airline(message.airline_id.clone())
        .traveller(message.traveller_id.clone())
        .consent(message.consent_id.clone())
        .token(message.token_id.clone())
        .event_category(message.category.clone())
        .message(message.id.clone())
        .channel(message.channel.as_str());
    if let Some(token) = token {
        entry = entry
            .booking(token.booking_id)
            .purpose(token.purpose)
            .event_reference(token.event_reference)
            .flight(token.flight);
    }
    Ok(entry)
}

/// The audit reason code for an attempt's outcome, from a closed set so the log stays
/// queryable (`smtp_error`, `gateway_error`, `consent_withdrawn`, …); the detailed status
/// (`smtp 451`) is in the message's `last_error`.
pub(crate) fn reason_code(why: &str) -> &'static str {
    match why {
        w if w.starts_with("smtp") => "smtp_error",
        w if w.starts_with("gateway") => "gateway_error",
        "consent_withdrawn" => "consent_withdrawn",
        "consent_inactive" => "consent_inactive",
        "contact_purged" => "contact_purged",
        "no_contact" => "no_contact",
        "transport_unconfigured" => "transport_unconfigured",
        _ => "delivery_error",
    }
}

/// Where an agency's pushes go, and the secret that signs them.
pub struct PushTarget {
    /// The webhook's URL.
    pub url: String,
    /// The signing secret, opened.
    pub secret: Vec<u8>,
}

/// The agency's webhook, if it still has one.
pub async fn push_target(state: &AppState, agency_id: &str) -> Result<Option<PushTarget>, Error> {
    let webhook = {
        let mut conn = state.store.reader().acquire().await?;
        parties::webhook(&mut conn, agency_id).await?
    };
    let Some(webhook) = webhook else {
        return Ok(None);
    };
    let secret = state
        .keys
        .keys()
        .root()
        .open(webhook_secret_slot(agency_id), &webhook.sealed_secret)
        .map_err(|_| Error::internal("webhook secret does not open"))?;
    Ok(Some(PushTarget {
        url: webhook.url,
        secret,
    }))
}

/// Puts a push off until `until`, its attempts untouched (its agency's breaker is
/// open).
pub async fn postpone_push(
    state: &AppState,
    delivery: &WebhookDelivery,
    until: OffsetDateTime,
) -> Result<(), Error> {
    let mut tx = state.store.begin().await?;
    outbox::postpone(&mut tx, Queue::Webhooks, &delivery.id, until).await?;
    tx.commit().await?;
    Ok(())
}

/// Records how a push ended: `Err((retry, why))` is retried with the webhooks'
/// backoff (and not before `not_before`) while attempts remain.
pub async fn record_push(
    state: &AppState,
    delivery: &WebhookDelivery,
    outcome: Result<(), (bool, String)>,
    not_before: Option<OffsetDateTime>,
) -> Result<(), Error> {
    let now = state.clock.now();
    let attempts = u32::try_from(delivery.attempts).unwrap_or(u32::MAX) + 1;
    let backoff = state.settings.policies.tunables.webhook_backoff();
    let id = &delivery.id;
    let mut tx = state.store.begin().await?;
    match outcome {
        Ok(()) => {
            outbox::finish(&mut tx, Queue::Webhooks, id, "delivered", None, true, now).await?
        }
        Err((true, why)) if attempts < backoff.max_attempts => {
            let retry = now + backoff.after(attempts);
            let next = not_before.map_or(retry, |until| until.max(retry));
            outbox::retry_later(&mut tx, Queue::Webhooks, id, &why, next).await?
        }
        Err((_, why)) => {
            let why = Some(why.as_str());
            outbox::finish(&mut tx, Queue::Webhooks, id, "failed", why, true, now).await?
        }
    }
    tx.commit().await?;
    Ok(())
}
