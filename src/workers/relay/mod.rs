//! The delivery workers: one drains the relayed messages, the other the agency webhook
//! pushes, each with retries and backoff, so that a message never waits behind a
//! webhook that does not answer.
//!
//! A message is delivered only if its consent still stands at delivery time: the
//! recipient is opened from the consent record then, never copied into the outbox, so
//! a withdrawal or a purge in between cancels it. Every outcome of a message
//! (delivered, deferred with the reason, failed, cancelled) is audited; webhook
//! pushes are not, since each reports an entry already in the log.
//!
//! Both workers deliver several rows at once (a bounded number). Pushes to one agency
//! go one at a time, and an agency whose webhook keeps failing trips a circuit
//! breaker: its pushes wait, without using their attempts, until the breaker lets one
//! through again, and other agencies' pushes go on.
//!
//! Errors recorded are protocol statuses (`smtp 451`, `gateway http 503`), never a
//! server's free text, which could echo the recipient.

pub mod breaker;
pub mod sms;
pub mod smtp;
pub mod webhook;

use crate::audit::{Action, AuditEntry, NewEntry, Outcome};
use crate::domain::consent::Inactive;
use crate::domain::delivery::Channel;
use crate::outbound::Outbound;
use crate::service::sealed::{body_slot, MessageBody};
use crate::service::{AppState, RelaySettings};
use crate::store::outbox::{self, Message, Queue};
use crate::store::{consents, tokens, StoreError};
use futures_util::StreamExt;
use std::time::Duration;

/// Rows claimed per round.
const ROUND: i64 = 32;
/// Messages delivered at once.
const MESSAGES_AT_ONCE: usize = 16;
/// Agencies whose webhooks are pushed to at once (one push at a time per agency).
const AGENCIES_AT_ONCE: usize = 8;
/// How long a claimed row is reserved for this broker.
const LEASE: time::Duration = time::Duration::minutes(2);
/// How long one request to the SMS gateway or a webhook may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The transports, built once from the settings.
pub struct Transports {
    smtp: Option<smtp::Smtp>,
    sms: Option<sms::Gateway>,
    http: reqwest::Client,
    outbound: Outbound,
    breakers: breaker::Breakers,
}

/// How one attempt ended.
#[derive(Debug)]
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

impl Transports {
    /// Builds the transports; fails on a malformed SMTP or gateway URL, or a gateway
    /// the outbound rule does not allow, so a broker refuses to start rather than
    /// queue messages it can never send.
    pub fn new(settings: &RelaySettings, outbound: Outbound) -> anyhow::Result<Self> {
        Ok(Self {
            smtp: settings
                .smtp_url
                .as_deref()
                .map(|url| smtp::Smtp::new(url, &settings.mail_from))
                .transpose()?,
            sms: settings
                .sms_gateway_url
                .as_deref()
                .map(|url| sms::Gateway::new(url, settings.sms_gateway_token.clone(), outbound))
                .transpose()?,
            http: outbound.client(REQUEST_TIMEOUT),
            outbound,
            breakers: breaker::Breakers::default(),
        })
    }
}

/// Runs until the task is dropped: the message worker and the webhook worker side by
/// side, each delivering what is due, then waiting for new work (woken at once when a
/// request queues some) or for its next retry.
pub async fn run(state: AppState, transports: Transports) {
    let messages = async {
        loop {
            let busy = match deliver_messages_due(&state, &transports).await {
                Ok(n) => n > 0,
                Err(error) => {
                    tracing::error!(%error, "message round failed; retrying");
                    false
                }
            };
            if !busy {
                idle(&state, Queue::Messages, &state.message_wake).await;
            }
        }
    };
    let webhooks = async {
        loop {
            let busy = match deliver_pushes_due(&state, &transports).await {
                Ok(n) => n > 0,
                Err(error) => {
                    tracing::error!(%error, "webhook round failed; retrying");
                    false
                }
            };
            if !busy {
                idle(&state, Queue::Webhooks, &state.webhook_wake).await;
            }
        }
    };
    tokio::join!(messages, webhooks);
}

/// Waits until the queue's next row is due (at least 50 ms, at most a second, so rows
/// queued by other brokers on the same database are found within a second) or until
/// a request wakes the worker.
async fn idle(state: &AppState, queue: Queue, wake: &tokio::sync::Notify) {
    let wait = next_wait(state, queue)
        .await
        .unwrap_or(Duration::from_secs(1));
    tokio::select! {
        () = wake.notified() => {}
        () = tokio::time::sleep(wait) => {}
    }
}

async fn next_wait(state: &AppState, queue: Queue) -> Result<Duration, StoreError> {
    let mut conn = state.store.reader().acquire().await?;
    let next = outbox::next_due(&mut conn, queue).await?;
    let now = state.clock.now();
    let wait = next.map_or(Duration::from_secs(1), |at| {
        Duration::try_from(at - now).unwrap_or(Duration::ZERO)
    });
    Ok(wait.clamp(Duration::from_millis(50), Duration::from_secs(1)))
}

/// One round of each queue: every message and push due now. Returns how many were
/// attempted or postponed.
pub async fn deliver_due(state: &AppState, transports: &Transports) -> Result<usize, StoreError> {
    let (messages, pushes) = tokio::join!(
        deliver_messages_due(state, transports),
        deliver_pushes_due(state, transports)
    );
    Ok(messages? + pushes?)
}

/// One round of messages, several at once.
pub async fn deliver_messages_due(
    state: &AppState,
    transports: &Transports,
) -> Result<usize, StoreError> {
    let now = state.clock.now();
    let messages = {
        let mut conn = state.store.begin().await?;
        let claimed = outbox::claim_messages(&mut conn, now, now + LEASE, ROUND).await?;
        conn.commit().await?;
        claimed
    };
    let attempted = messages.len();
    futures_util::stream::iter(messages)
        .for_each_concurrent(MESSAGES_AT_ONCE, |message| async move {
            if let Err(error) = deliver_message(state, transports, &message).await {
                tracing::error!(%error, message = %message.id, "could not record a delivery; it will be retried when its lease ends");
            }
        })
        .await;
    Ok(attempted)
}

/// One round of webhook pushes: one agency's pushes in order, one at a time, several
/// agencies at once; an agency whose breaker is open waits.
pub async fn deliver_pushes_due(
    state: &AppState,
    transports: &Transports,
) -> Result<usize, StoreError> {
    let now = state.clock.now();
    let pushes = {
        let mut conn = state.store.begin().await?;
        let claimed = outbox::claim_webhooks(&mut conn, now, now + LEASE, ROUND).await?;
        conn.commit().await?;
        claimed
    };
    let claimed = pushes.len();
    let mut by_agency: Vec<Vec<outbox::WebhookDelivery>> = Vec::new();
    for push in pushes {
        match by_agency
            .iter_mut()
            .find(|g| g[0].agency_id == push.agency_id)
        {
            Some(group) => group.push(push),
            None => by_agency.push(vec![push]),
        }
    }
    futures_util::stream::iter(by_agency)
        .for_each_concurrent(AGENCIES_AT_ONCE, |group| async move {
            for push in group {
                if let Err(error) = webhook::push(state, transports, &push).await {
                    tracing::error!(%error, delivery = %push.id, "could not record a webhook push; it will be retried when its lease ends");
                }
            }
        })
        .await;
    Ok(claimed)
}

/// Delivers one message and records the outcome with its audit entry.
async fn deliver_message(
    state: &AppState,
    transports: &Transports,
    message: &Message,
) -> Result<(), StoreError> {
    let now = state.clock.now();
    let attempt = attempt(state, transports, message).await?;
    let backoff = state.settings.policies.tunables.relay_backoff();
    let attempts = u32::try_from(message.attempts).unwrap_or(u32::MAX) + 1;
    let mut tx = state.store.begin().await?;
    let (outcome, reason) = match &attempt {
        Attempt::Delivered => {
            outbox::finish(
                &mut tx,
                Queue::Messages,
                &message.id,
                "delivered",
                None,
                true,
                now,
            )
            .await?;
            (Outcome::Delivered, None)
        }
        Attempt::Cancelled(reason) => {
            outbox::finish(
                &mut tx,
                Queue::Messages,
                &message.id,
                "cancelled",
                Some(reason),
                false,
                now,
            )
            .await?;
            (Outcome::Cancelled, Some(reason.to_string()))
        }
        Attempt::Transient(why) if attempts < backoff.max_attempts => {
            let next = now + backoff.after(attempts);
            outbox::retry_later(&mut tx, Queue::Messages, &message.id, why, next).await?;
            (Outcome::Deferred, Some(why.clone()))
        }
        Attempt::Transient(why) | Attempt::Permanent(why) => {
            outbox::finish(
                &mut tx,
                Queue::Messages,
                &message.id,
                "failed",
                Some(why),
                true,
                now,
            )
            .await?;
            (Outcome::Failed, Some(why.clone()))
        }
    };
    let token = tokens::find(&mut tx, &message.token_id).await?;
    let entry = NewEntry {
        at: now,
        action: Action::MessageDelivery,
        outcome,
        reason: reason.as_deref().map(reason_code),
        entry: AuditEntry {
            request_id: "relay-worker".into(),
            actor_kind: "broker".into(),
            actor_id: "passerelle".into(),
            agency_id: Some(message.agency_id.clone()),
            airline_id: Some(message.airline_id.clone()),
            traveller_id: Some(message.traveller_id.clone()),
            consent_id: Some(message.consent_id.clone()),
            token_id: Some(message.token_id.clone()),
            booking_id: token.as_ref().map(|t| t.booking_id.clone()),
            purpose: token.as_ref().map(|t| t.purpose.clone()),
            event_reference: token.as_ref().map(|t| t.event_reference.clone()),
            flight: token.as_ref().map(|t| t.flight.clone()),
            event_category: Some(message.category.clone()),
            message_id: Some(message.id.clone()),
            channel: Some(message.channel.as_str().to_string()),
            ..AuditEntry::default()
        },
    };
    state
        .commit_with_audit(tx, entry)
        .await
        .map_err(|p| StoreError::Corrupt(p.detail().to_string()))?;
    Ok(())
}

/// The audit reason code for an attempt's outcome, from a closed set so the log stays
/// queryable (`smtp_error`, `gateway_error`, `consent_withdrawn`, …); the detailed status
/// (`smtp 451`) is in the message's `last_error`.
fn reason_code(why: &str) -> &'static str {
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

/// One attempt: checks the consent, opens the recipient and the text, sends.
async fn attempt(
    state: &AppState,
    transports: &Transports,
    message: &Message,
) -> Result<Attempt, StoreError> {
    let now = state.clock.now();
    let mut conn = state.store.reader().acquire().await?;
    let scope = consents::scope(&mut conn, &message.consent_id).await?;
    match scope.activity(now) {
        Ok(()) => {}
        Err(Inactive::Withdrawn) => return Ok(Attempt::Cancelled("consent_withdrawn")),
        Err(_) => return Ok(Attempt::Cancelled("consent_inactive")),
    }
    let sealed = consents::sealed(&mut conn, &message.consent_id).await?;
    drop(conn);
    let opened = match crate::service::sealed::open_contacts(state, &message.consent_id, &sealed) {
        Ok(Some(opened)) => opened,
        Ok(None) => return Ok(Attempt::Cancelled("contact_purged")),
        Err(problem) => return Err(StoreError::Corrupt(problem.detail().to_string())),
    };
    let body: MessageBody = state
        .keys
        .keys()
        .root()
        .open(body_slot(&message.id), &message.sealed_body)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("message {} does not open", message.id)))?;
    Ok(match message.channel {
        Channel::Email => match (&transports.smtp, opened.email) {
            (None, _) => Attempt::Transient("transport_unconfigured".into()),
            (_, None) => Attempt::Cancelled("no_contact"),
            (Some(smtp), Some(to)) => {
                let subject = body.subject.clone().unwrap_or_else(|| {
                    format!(
                        "Flight {}: {}",
                        body.flight,
                        message.category.replace('_', " ")
                    )
                });
                smtp.send(&to, &subject, &body.text, &message.id).await
            }
        },
        Channel::Sms => match (&transports.sms, opened.mobile) {
            (None, _) => Attempt::Transient("transport_unconfigured".into()),
            (_, None) => Attempt::Cancelled("no_contact"),
            (Some(gateway), Some(to)) => {
                gateway
                    .send(&transports.http, &to, &body.text, &message.id)
                    .await
            }
        },
    })
}
