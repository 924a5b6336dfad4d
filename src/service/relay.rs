//! Relay-only delivery: the airline hands the broker its message and a token, and the
//! broker delivers it by email (SMTP) or SMS (the HTTP gateway). The airline never
//! sees the contact.
//!
//! The message, the token use and the audit entry commit in one transaction (the
//! outbox); the worker (`crate::workers::relay`) delivers it afterwards with retries, and the
//! airline reads its status at `GET /v1/messages/{id}`.

use crate::domain::delivery::Channel;
use crate::domain::ids::new_id;
use crate::domain::links;
use crate::domain::party::Party;
use crate::domain::purpose::EventCategory;
use crate::domain::time::format_time;
use crate::service::sealed::{body_slot, MessageBody};
use crate::service::token_use::{self, Taken, TokenUse};
use crate::service::use_batch;
use crate::service::AppState;
use crate::service::{Error, ErrorKind};
use crate::store::outbox::{self, Message, Queue};
use crate::store::tokens::TokenRecord;
use crate::store::use_facts;
use serde::{Deserialize, Serialize};

/// A message to relay.
#[derive(Deserialize, Serialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RelayRequest {
    /// The release token (relay or reveal).
    pub token: String,
    /// `sms` or `email`.
    pub channel: Channel,
    /// The event category the message is about: the token's.
    pub category: String,
    /// Email subject (emails only; a default naming the flight is used if absent).
    #[serde(default)]
    pub subject: Option<String>,
    /// The text.
    pub text: String,
}

/// A relayed message's status.
#[derive(Serialize, Deserialize, Debug)]
pub struct MessageStatus {
    /// Its id.
    pub message_id: String,
    /// The token it was sent under.
    pub token_id: String,
    /// `sms` or `email`.
    pub channel: Channel,
    /// The event category.
    pub category: String,
    /// `queued`, `delivered`, `failed` or `cancelled`.
    pub status: String,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// When the next attempt is due, while queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// What went wrong last (a status from the relay or gateway).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When it was accepted.
    pub created_at: String,
    /// When it was delivered, failed for good or was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The audit entry recording its acceptance (only in the answer to the POST).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_index: Option<i64>,
    /// What the SMS gateway said became of it, once it said (`status` only says the
    /// gateway accepted it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<MessageReceipt>,
}

/// A gateway's delivery receipt of a message.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct MessageReceipt {
    /// `delivered`, `undeliverable` or `expired`.
    pub status: String,
    /// The gateway's reason, for an undeliverable message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the broker received it.
    pub at: String,
}

impl MessageStatus {
    fn of(m: &Message, audit_index: Option<i64>) -> Self {
        Self {
            message_id: m.id.clone(),
            token_id: m.token_id.clone(),
            channel: m.channel,
            category: m.category.clone(),
            status: m.status.clone(),
            attempts: m.attempts,
            next_attempt_at: (m.status == "queued").then(|| format_time(m.next_attempt_at)),
            last_error: m.last_error.clone(),
            created_at: format_time(m.created_at),
            finished_at: m.finished_at.map(format_time),
            audit_index,
            receipt: None,
        }
    }
}

/// Accepts a message for relay: checks the text, takes one use of the token, and
/// queues the message with its audit entry.
pub async fn relay(
    state: &AppState,
    request_id: &str,
    airline: &Party,
    request: RelayRequest,
) -> Result<MessageStatus, Error> {
    let (checked, ask, entry) = prepare(state, request_id, airline, &request).await?;
    if let Some(ready) = token_use::decide_on_read(state, &ask, &entry).await? {
        if let Some(queued) = queue_decided(state, airline, &request, &checked, ready).await? {
            return Ok(queued);
        }
    }
    relay_in_writer(state, airline, &request, &checked, &ask, entry).await
}

/// A relay decided before its use is taken: the use with its new message, for the
/// use batch.
pub(crate) type Ahead = Option<(use_batch::DecidedUse, Message)>;

/// Decides one relay on facts at hand (its token as read, or as the grant that made it
/// was decided on, which spares reading back a token just written): the use and its
/// message, ready for the use batch, or `None` when these facts do not allow it or
/// the request fails a check (the writer then decides it alone, exactly, and answers
/// the refusal). Nothing is written here.
pub(crate) async fn decide_ahead(
    state: &AppState,
    request_id: &str,
    airline: &Party,
    request: &RelayRequest,
    facts: Option<use_facts::UseFacts>,
) -> Ahead {
    let (checked, ask, entry) = prepare(state, request_id, airline, request).await.ok()?;
    let ready = token_use::decide_read(state, &ask, &entry, facts)?;
    // A message of another category is left to the writer, which refuses it.
    decided_use(state, airline, request, &checked, ready).ok()
}

/// Takes the relays decided ahead in the use batch, together, under its guard; each one
/// not taken there (not decided ahead, or changed since the facts it was decided on) is
/// relayed alone, where it is exact. Each answer is its request's, in order.
pub(crate) async fn take_decided(
    state: &AppState,
    request_id: &str,
    airline: &Party,
    requests: &[RelayRequest],
    ahead: Vec<Ahead>,
) -> Vec<Result<MessageStatus, Error>> {
    let (mut uses, mut messages) = (Vec::new(), Vec::with_capacity(ahead.len()));
    for decided in ahead {
        messages.push(decided.map(|(decided, message)| {
            uses.push(decided);
            message
        }));
    }
    let mut outcomes = state.use_batches.take_all(state, uses).await.into_iter();
    let taken: Vec<_> = messages
        .into_iter()
        .map(|message| message.map(|m| (m, outcomes.next())))
        .collect();
    if taken
        .iter()
        .any(|t| matches!(t, Some((_, Some(Ok(use_batch::Taking::Taken { .. }))))))
    {
        state.message_wake.notify_one();
    }
    let each = requests
        .iter()
        .zip(taken)
        .map(|(request, taken)| async move {
            match taken {
                Some((message, Some(Ok(use_batch::Taking::Taken { audit_index })))) => {
                    Ok(MessageStatus::of(&message, Some(audit_index)))
                }
                Some((_, Some(Err(problem)))) => Err(problem),
                _ => relay(state, request_id, airline, request.clone()).await,
            }
        });
    futures_util::future::join_all(each).await
}

/// A relay request checked (its text, links and transport) and its token use asked,
/// with the use's audit entry begun.
async fn prepare<'a>(
    state: &AppState,
    request_id: &str,
    airline: &'a Party,
    request: &'a RelayRequest,
) -> Result<(Checked, token_use::UseAsked<'a>, crate::audit::NewEntry), Error> {
    let checked = checked(state, airline, request).await?;
    let (ask, entry) = token_use::ask(
        state,
        request_id,
        airline,
        &request.token,
        TokenUse::Relay,
        Some(request.channel),
    )?;
    Ok((checked, ask, entry))
}

/// A relay request's text, checked, with its links and its channel's transport.
struct Checked {
    subject: Option<String>,
    text: String,
}

async fn checked(
    state: &AppState,
    airline: &Party,
    request: &RelayRequest,
) -> Result<Checked, Error> {
    let (subject, text) = check_text(state, request)?;
    check_links(state, airline, request).await?;
    let configured = match request.channel {
        Channel::Email => state.settings.relay.smtp_url.is_some(),
        Channel::Sms => state.settings.relay.sms_gateway_url.is_some(),
    };
    if !configured {
        return Err(Error::new(
            ErrorKind::RelayUnavailable,
            format!(
                "This broker has no {} transport configured; try the other channel.",
                request.channel.as_str()
            ),
        ));
    }
    Ok(Checked { subject, text })
}

impl Checked {
    fn body(&self, token: &TokenRecord) -> MessageBody {
        MessageBody {
            subject: self.subject.clone(),
            text: self.text.clone(),
            flight: token.flight.clone(),
        }
    }
}

/// A use decided on a read, with its new message, ready for the use batch; refused
/// when the message's category is not its token's.
fn decided_use(
    state: &AppState,
    airline: &Party,
    request: &RelayRequest,
    checked: &Checked,
    ready: token_use::Ready,
) -> Result<(use_batch::DecidedUse, Message), Error> {
    same_category(request, &ready.token)?;
    let message = new_message(
        state,
        airline,
        &ready.token,
        request.channel,
        &checked.body(&ready.token),
    );
    let decided = use_batch::DecidedUse {
        token_id: ready.token.id.clone(),
        entry: ready.entry.message(message.id.clone()),
        message: Some(message.clone()),
    };
    Ok((decided, message))
}

/// Hands a use decided on a read to the use batch with its message; `None` when the
/// batch found the state changed since the read (decide again in the writer).
async fn queue_decided(
    state: &AppState,
    airline: &Party,
    request: &RelayRequest,
    checked: &Checked,
    ready: token_use::Ready,
) -> Result<Option<MessageStatus>, Error> {
    let (taking, message) = decided_use(state, airline, request, checked, ready)?;
    match state.use_batches.take(state, taking).await? {
        use_batch::Taking::Taken { audit_index } => {
            state.message_wake.notify_one();
            Ok(Some(MessageStatus::of(&message, Some(audit_index))))
        }
        use_batch::Taking::Changed => Ok(None),
    }
}

/// Decides the use inside the writer's transaction, where it is exact, and queues the
/// message with its audit entry (or audits the refusal).
async fn relay_in_writer(
    state: &AppState,
    airline: &Party,
    request: &RelayRequest,
    checked: &Checked,
    ask: &token_use::UseAsked<'_>,
    entry: crate::audit::NewEntry,
) -> Result<MessageStatus, Error> {
    let Taken {
        mut tx,
        token,
        mut entry,
        ..
    } = token_use::take_in_writer(state, ask, entry).await?;
    if let Err(problem) = same_category(request, &token) {
        tx.rollback().await.ok();
        return Err(problem);
    }
    let message = new_message(
        state,
        airline,
        &token,
        request.channel,
        &checked.body(&token),
    );
    outbox::enqueue_message(&mut tx, &message).await?;
    entry = entry.message(message.id.clone());
    let audit_index = state.commit_with_audit(tx, entry).await?;
    state.message_wake.notify_one();
    Ok(MessageStatus::of(&message, Some(audit_index)))
}

/// A message is about the event its token was granted for.
fn same_category(request: &RelayRequest, token: &TokenRecord) -> Result<(), Error> {
    if request.category == token.event_category {
        return Ok(());
    }
    Err(Error::field(
        ErrorKind::InvalidField,
        "category",
        format!(
            "must be the token's event category `{}`",
            token.event_category
        ),
    ))
}

/// A new message for the outbox, its body sealed, queued for now.
fn new_message(
    state: &AppState,
    airline: &Party,
    token: &TokenRecord,
    channel: Channel,
    body: &MessageBody,
) -> Message {
    let now = state.clock.now();
    let id = new_id("msg");
    let sealed_body = state.keys.keys().root().seal(
        body_slot(&id),
        &serde_json::to_vec(body).expect("a message body serializes"),
    );
    Message {
        id,
        token_id: token.id.clone(),
        airline_id: airline.id.clone(),
        agency_id: token.agency_id.clone(),
        consent_id: token.consent_id.clone(),
        traveller_id: token.traveller_id.clone(),
        channel,
        category: token.event_category.clone(),
        sealed_body,
        status: "queued".into(),
        attempts: 0,
        next_attempt_at: now,
        last_error: None,
        created_at: now,
        finished_at: None,
    }
}

/// A message's delivery status, for the airline that sent it.
pub async fn status(state: &AppState, airline: &Party, id: String) -> Result<MessageStatus, Error> {
    let mut conn = state.store.reader().acquire().await?;
    let message = outbox::message(&mut conn, &id)
        .await?
        .filter(|m| m.airline_id == airline.id)
        .ok_or_else(|| Error::of(ErrorKind::MessageNotFound))?;
    let receipt = outbox::receipt_of(&mut conn, Queue::Messages, &message.id)
        .await?
        .map(|r| MessageReceipt {
            status: r.status,
            reason: r.reason,
            at: format_time(r.at),
        });
    Ok(MessageStatus {
        receipt,
        ..MessageStatus::of(&message, None)
    })
}

/// A message may link only to the domains its airline registered
/// (`PUT /v1/airline/link-domains`): it reaches the traveller under the broker's name.
pub(crate) async fn check_links(
    state: &AppState,
    airline: &Party,
    request: &RelayRequest,
) -> Result<(), Error> {
    let texts = [
        ("text", Some(request.text.as_str())),
        ("subject", request.subject.as_deref()),
    ];
    if !texts
        .iter()
        .any(|(_, t)| t.is_some_and(|t| links::links(t).next().is_some()))
    {
        return Ok(());
    }
    let domains = {
        let mut conn = state.store.reader().acquire().await?;
        crate::store::parties::link_domains(&mut conn, &airline.id).await?
    };
    for (field, text) in texts {
        let Some(text) = text else { continue };
        let reason = match links::first_outside(text, &domains) {
            None => continue,
            Some(links::Link::Host(host)) => format!(
                "links to `{host}`, which is not one of your airline's link domains \
                 (register them with PUT /v1/airline/link-domains)"
            ),
            Some(links::Link::Unreadable(_)) => "holds a link written with letters outside \
                 ASCII, which could imitate a registered domain; write it in its xn-- form"
                .to_string(),
        };
        return Err(Error::field(ErrorKind::LinkNotAllowed, field, reason));
    }
    Ok(())
}

/// The text checks: an operational category, a bounded text without control
/// characters, and a one-line subject for emails only.
pub(crate) fn check_text(
    state: &AppState,
    request: &RelayRequest,
) -> Result<(Option<String>, String), Error> {
    let relay = &state.settings.policies.tunables.relay;
    let category = serde_json::Value::from(request.category.as_str());
    if serde_json::from_value::<EventCategory>(category).is_err() {
        return Err(Error::field(
            ErrorKind::PurposeNotOperational,
            "category",
            "is not an operational event category: the broker relays operational \
             notifications only (IATA Resolution 830d)",
        ));
    }
    let text = request.text.trim().to_string();
    let limit = match request.channel {
        Channel::Sms => relay.sms_max_chars,
        Channel::Email => relay.email_max_chars,
    };
    let length = text.chars().count();
    if length == 0 {
        return Err(Error::field(
            ErrorKind::InvalidField,
            "text",
            "must not be empty",
        ));
    }
    if length > limit {
        return Err(Error::field(
            ErrorKind::InvalidField,
            "text",
            format!(
                "is {length} characters; a relayed {} holds at most {limit}",
                request.channel.as_str()
            ),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::field(
            ErrorKind::InvalidField,
            "text",
            "must not hold control characters other than line breaks",
        ));
    }
    let subject = match (&request.subject, request.channel) {
        (None, _) => None,
        (Some(_), Channel::Sms) => {
            return Err(Error::field(
                ErrorKind::InvalidField,
                "subject",
                "is for emails only",
            ))
        }
        (Some(subject), Channel::Email) => {
            let subject = subject.trim();
            if subject.is_empty()
                || subject.chars().count() > relay.email_subject_max_chars
                || subject.chars().any(char::is_control)
            {
                return Err(Error::field(
                    ErrorKind::InvalidField,
                    "subject",
                    format!(
                        "must be one line of 1 to {} characters",
                        relay.email_subject_max_chars
                    ),
                ));
            }
            Some(subject.to_string())
        }
    };
    Ok((subject, text))
}
