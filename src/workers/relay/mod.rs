//! The delivery workers: one drains the relayed messages, the other the agency webhook
//! pushes, each with retries and backoff, so that a message never waits behind a
//! webhook that does not answer.
//!
//! What is claimed, opened and recorded is `service::delivery`'s: a message is sent
//! only if its consent still stands, and every outcome of a message is audited.
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

use crate::domain::delivery::Channel;
use crate::outbound::Outbound;
pub use crate::service::delivery::Attempt;
use crate::service::delivery::{self, Message, Queue, WebhookDelivery};
use crate::service::{contact_verifications, AppState, Error, RelaySettings};
use futures_util::StreamExt;
use std::time::Duration;

/// Rows claimed per round.
const ROUND: i64 = 32;
/// Messages delivered at once.
const MESSAGES_AT_ONCE: usize = 16;
/// Agencies whose webhooks are pushed to at once (one push at a time per agency).
const AGENCIES_AT_ONCE: usize = 8;
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

impl Transports {
    /// Builds the transports; fails on a malformed SMTP or gateway URL, or a gateway
    /// the outbound rule does not allow, so a broker refuses to start rather than
    /// queue messages it can never send.
    pub fn new(settings: &RelaySettings, outbound: Outbound) -> anyhow::Result<Self> {
        Ok(Self {
            smtp: settings
                .smtp_url
                .as_deref()
                .map(|url| {
                    smtp::Smtp::new(url, &settings.mail_from, settings.bounce_domain.as_deref())
                })
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
            let (messages, codes) = tokio::join!(
                deliver_messages_due(&state, &transports),
                deliver_verifications_due(&state, &transports)
            );
            let busy = match (messages, codes) {
                (Ok(m), Ok(c)) => m + c > 0,
                (Err(error), _) | (_, Err(error)) => {
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
/// a request wakes the worker. The messages' worker also sends verification codes, so
/// it waits for the earlier of both queues.
async fn idle(state: &AppState, queue: Queue, wake: &tokio::sync::Notify) {
    let next = |queue| async move {
        delivery::next_wait(state, queue)
            .await
            .unwrap_or(Duration::from_secs(1))
    };
    let wait = match queue {
        Queue::Messages => next(Queue::Messages)
            .await
            .min(next(Queue::Verifications).await),
        queue => next(queue).await,
    };
    tokio::select! {
        () = wake.notified() => {}
        () = tokio::time::sleep(wait) => {}
    }
}

/// One round of each queue: every message, verification code and push due now.
/// Returns how many were attempted or postponed.
pub async fn deliver_due(state: &AppState, transports: &Transports) -> Result<usize, Error> {
    let (messages, codes, pushes) = tokio::join!(
        deliver_messages_due(state, transports),
        deliver_verifications_due(state, transports),
        deliver_pushes_due(state, transports)
    );
    Ok(messages? + codes? + pushes?)
}

/// One round of verification codes and links: few, so sent one after another, each
/// outcome recorded as it comes.
pub async fn deliver_verifications_due(
    state: &AppState,
    transports: &Transports,
) -> Result<usize, Error> {
    let due = contact_verifications::claim_due(state, ROUND).await?;
    for verification in &due {
        let attempt = match contact_verifications::open_outgoing(state, verification).await {
            Ok(Ok(outgoing)) => {
                send(
                    transports,
                    verification.channel,
                    &outgoing.to,
                    outgoing.subject.as_deref(),
                    &outgoing.text,
                    &verification.id,
                )
                .await
            }
            Ok(Err(cancelled)) => Attempt::Cancelled(cancelled),
            Err(error) => {
                tracing::error!(%error, verification = %verification.id, "could not open a verification; it is deferred");
                Attempt::Transient("broker_error".into())
            }
        };
        if let Err(error) =
            contact_verifications::record_attempt(state, verification, &attempt).await
        {
            tracing::error!(%error, verification = %verification.id, "could not record a verification's sending; it will be retried when its lease ends");
        }
    }
    Ok(due.len())
}

/// One round of messages, several at once.
pub async fn deliver_messages_due(
    state: &AppState,
    transports: &Transports,
) -> Result<usize, Error> {
    let messages = delivery::claim_messages(state, ROUND).await?;
    let attempted = messages.len();
    // Outcomes are recorded as they come, those ready together in one write: one
    // slow gateway answer does not hold back the record of the others.
    futures_util::stream::iter(messages)
        .map(|message| async move {
            match attempt(state, transports, &message).await {
                Ok(attempt) => (message, attempt),
                // Nothing was sent (the broker could not open the message): tried again
                // after the first backoff, not left leased for the lease's length.
                Err(error) => {
                    tracing::error!(%error, message = %message.id, "could not attempt a delivery; it is deferred");
                    (message, Attempt::Transient("broker_error".into()))
                }
            }
        })
        .buffer_unordered(MESSAGES_AT_ONCE)
        .ready_chunks(MESSAGES_AT_ONCE)
        .for_each(|outcomes| async move { record(state, outcomes).await })
        .await;
    Ok(attempted)
}

/// Records a chunk of outcomes, asking again twice if the write fails: a message the
/// gateway took but whose outcome is not recorded would be sent again once its lease
/// ends.
async fn record(state: &AppState, outcomes: Vec<(Message, Attempt)>) {
    let mut outcomes = Some(outcomes);
    for pause in [
        Duration::from_millis(200),
        Duration::from_secs(1),
        Duration::ZERO,
    ] {
        let Some(these) = outcomes.take() else { return };
        let kept = these.clone();
        match delivery::record_message_attempts(state, these).await {
            Ok(()) => return,
            Err(error) if pause.is_zero() => {
                tracing::error!(%error, "could not record deliveries; they will be retried when their leases end");
            }
            Err(error) => {
                tracing::warn!(%error, "could not record deliveries; asking again");
                outcomes = Some(kept);
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// One round of webhook pushes: one agency's pushes in order, one at a time, several
/// agencies at once; an agency whose breaker is open waits.
pub async fn deliver_pushes_due(state: &AppState, transports: &Transports) -> Result<usize, Error> {
    let pushes = delivery::claim_pushes(state, ROUND).await?;
    let claimed = pushes.len();
    let mut by_agency: Vec<Vec<WebhookDelivery>> = Vec::new();
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

/// One attempt: checks the consent, opens the recipient and the text, sends.
async fn attempt(
    state: &AppState,
    transports: &Transports,
    message: &Message,
) -> Result<Attempt, Error> {
    let delivery::Opened { to: opened, body } = match delivery::open_message(state, message).await?
    {
        Ok(opened) => opened,
        Err(cancelled) => return Ok(Attempt::Cancelled(cancelled)),
    };
    let to = match message.channel {
        Channel::Email => opened.email,
        Channel::Sms => opened.mobile,
    };
    let Some(to) = to else {
        return Ok(Attempt::Cancelled("no_contact"));
    };
    let subject = body.subject.clone().unwrap_or_else(|| {
        format!(
            "Flight {}: {}",
            body.flight,
            message.category.replace('_', " ")
        )
    });
    Ok(send(
        transports,
        message.channel,
        &to,
        Some(&subject),
        &body.text,
        &message.id,
    )
    .await)
}

/// Sends one text by its channel's transport; `id` names it to the gateway (its
/// idempotency key and receipts) or the mail server (its Message-ID and return path).
async fn send(
    transports: &Transports,
    channel: Channel,
    to: &str,
    subject: Option<&str>,
    text: &str,
    id: &str,
) -> Attempt {
    match channel {
        Channel::Email => match &transports.smtp {
            None => Attempt::Transient("transport_unconfigured".into()),
            Some(smtp) => smtp.send(to, subject.unwrap_or_default(), text, id).await,
        },
        Channel::Sms => match &transports.sms {
            None => Attempt::Transient("transport_unconfigured".into()),
            Some(gateway) => gateway.send(&transports.http, to, text, id).await,
        },
    }
}
