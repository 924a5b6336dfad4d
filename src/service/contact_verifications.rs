//! Verified contacts, on request. An agency asks the broker to check that one of its
//! records' contacts reaches the traveller; the relay sends a six-digit code by SMS or
//! a link by email (`workers::relay`), in the language of the traveller's notice; the
//! traveller answers (the link's page, or the code read back to the agency, which
//! posts it), and the channel's `verified_at` is set for that contact. Nothing is sent
//! unless the agency asks, and at most `verification.requests_per_day` times a day per
//! traveller's channel, so a traveller is never flooded with codes.
//!
//! Every step is audited: the request (`contact_verification`, queued), each sending
//! attempt (`contact_verification`, delivered or deferred or failed or cancelled, by
//! the relay worker), each answer (`contact_confirmation`, recorded, or refused as
//! `wrong_code` or `contact_changed`). A confirmation counts for the contact the code
//! was sent to: if the traveller's record has since been withdrawn or replaced with
//! another contact, it is refused. After `verification.max_wrong_codes` wrong codes a
//! verification takes no more answers (a guess at six digits then succeeds one time in
//! 200,000), and it ends `verification.expires_minutes` after it was asked for.
//!
//! The agency's webhook gets `contact.verified` when a channel is confirmed.

use crate::audit::{Action, AuditEntry, NewEntry, Outcome};
use crate::crypto::one_time;
use crate::crypto::seal::Slot;
use crate::domain::contact_verification::{self as domain, Progress, VerificationState, ID_PREFIX};
use crate::domain::delivery::Channel;
use crate::domain::ids::new_id;
use crate::domain::party::Party;
use crate::domain::time::format_time;
use crate::service::delivery::{reason_code, Attempt};
use crate::service::relay::MessageReceipt;
use crate::service::sealed::record_contacts;
use crate::service::{AppState, Error, ErrorKind};
use crate::store::audit::hold_head;
use crate::store::contact_verifications::{self as store, VerificationRow};
use crate::store::outbox::{self, Queue, WebhookDelivery};
use crate::store::reachability::{self, Learnt, MessageContact};
use crate::store::{parties, Conn};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The webhook event an agency gets when a client confirms a contact.
pub const EVENT_TYPE: &str = "contact.verified";

/// How long a claimed verification is reserved for this broker's relay.
const LEASE: time::Duration = time::Duration::minutes(2);

/// Where the code or link secret is sealed.
fn secret_slot(id: &str) -> Slot<'_> {
    Slot {
        table: "contact_verifications",
        column: "secret",
        row_id: id,
    }
}

/// What the agency asks: which channel of the record to verify.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct VerificationRequest {
    /// `sms` (a code) or `email` (a link).
    pub channel: Channel,
}

/// A verification, as the agency sees it. Never the code, never the contact.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ContactVerification {
    /// `cvf_…`.
    pub id: String,
    /// The record whose contact it checks.
    pub consent_id: String,
    /// The traveller (pseudonymous id).
    pub traveller_id: String,
    /// The channel checked.
    pub channel: Channel,
    /// Where it stands.
    pub state: VerificationState,
    /// When the agency asked.
    pub requested_at: String,
    /// When the code or link stops working.
    pub expires_at: String,
    /// When the relay handed it to the gateway or the mail server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    /// When the traveller confirmed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<String>,
    /// Wrong codes it still accepts.
    pub tries_left: u32,
    /// What went wrong last in sending (a protocol status such as `smtp 451`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// What became of the code after its transport took it: the SMS gateway's
    /// receipt, or the email's bounce, as for a relayed message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<MessageReceipt>,
    /// The audit entry of this call, when it recorded one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_index: Option<i64>,
}

impl ContactVerification {
    fn of(row: &VerificationRow, now: OffsetDateTime, max_wrong_codes: u32) -> Self {
        let wrong = u32::try_from(row.wrong_codes).unwrap_or(u32::MAX);
        Self {
            id: row.id.clone(),
            consent_id: row.consent_id.clone(),
            traveller_id: row.traveller_id.clone(),
            channel: row.channel,
            state: progress(row).state(now, max_wrong_codes),
            requested_at: format_time(row.created_at),
            expires_at: format_time(row.expires_at),
            sent_at: row
                .finished_at
                .filter(|_| row.status == "delivered")
                .map(format_time),
            confirmed_at: row.confirmed_at.map(format_time),
            tries_left: max_wrong_codes.saturating_sub(wrong),
            last_error: row.last_error.clone(),
            receipt: None,
            audit_index: None,
        }
    }
}

/// The code or link secret of a verification, opened.
fn open_secret(state: &AppState, row: &VerificationRow) -> Result<String, Error> {
    state
        .keys
        .keys()
        .root()
        .open_string(secret_slot(&row.id), &row.sealed_secret)
        .map_err(|_| Error::internal(format!("the secret of {} does not open", row.id)))
}

/// Wrong codes after which a verification takes no more answers.
fn max_wrong_codes(state: &AppState) -> u32 {
    state
        .settings
        .policies
        .tunables
        .verification
        .max_wrong_codes
}

fn progress(row: &VerificationRow) -> Progress<'_> {
    Progress {
        status: &row.status,
        expires_at: row.expires_at,
        wrong_codes: u32::try_from(row.wrong_codes).unwrap_or(u32::MAX),
        confirmed_at: row.confirmed_at,
    }
}

/// The agency asks to verify one channel of one of its records: the code or link is
/// made, sealed and queued for the relay, with the request's audit entry.
pub async fn request(
    state: &AppState,
    request_id: &str,
    agency: &Party,
    consent_id: &str,
    body: VerificationRequest,
) -> Result<ContactVerification, Error> {
    let now = state.clock.now();
    let tunables = &state.settings.policies.tunables.verification;
    let channel = body.channel;
    let mut tx = state.store.begin().await?;
    let subject = store::subject(&mut tx, &agency.id, consent_id)
        .await?
        .ok_or_else(|| Error::of(ErrorKind::ConsentNotFound))?;
    if subject.purged {
        return Err(Error::of(ErrorKind::ContactPurged));
    }
    if subject.scope.activity(now).is_err() {
        return Err(Error::new(
            ErrorKind::ConsentInactive,
            format!(
                "Only a record in force can be verified; this one is {}.",
                subject.scope.state(now).as_str()
            ),
        ));
    }
    let Some(digest) = subject.digest(channel).map(<[u8]>::to_vec) else {
        return Err(Error::field(
            ErrorKind::ChannelNotCovered,
            "channel",
            match channel {
                Channel::Sms => "the record holds no mobile number",
                Channel::Email => "the record holds no email address",
            },
        ));
    };
    let configured = match channel {
        Channel::Email => state.settings.relay.smtp_url.is_some(),
        Channel::Sms => state.settings.relay.sms_gateway_url.is_some(),
    };
    if !configured {
        // Checked once the record is known to be the agency's and to hold the
        // contact: a record of another agency answers 404 whatever the transports.
        return Err(Error::new(
            ErrorKind::RelayUnavailable,
            format!(
                "This broker has no {} transport configured, so it cannot send a code that way; nothing was queued.",
                channel.as_str()
            ),
        ));
    }
    let day = time::Duration::days(1);
    // Counted behind every other broker's audited writes, so that two brokers asked at
    // once cannot both take the last request of the day.
    hold_head(&mut tx).await?;
    let (asked, earliest) =
        store::asked_since(&mut tx, &subject.traveller_id, channel, now - day).await?;
    if asked >= i64::from(tunables.requests_per_day) {
        let retry = earliest.map_or(day, |at| at + day - now);
        let seconds = u32::try_from(retry.whole_seconds().max(1)).unwrap_or(u32::MAX);
        return Err(Error::new(
            ErrorKind::VerificationLimitReached,
            format!(
                "This traveller's {} was asked to verify {asked} times in the last 24 hours, the most \
                 `verification.requests_per_day` allows.",
                channel.as_str()
            ),
        )
        .with_retry_after(seconds));
    }
    let secret = match channel {
        Channel::Sms => one_time::numeric_code(),
        Channel::Email => one_time::link_secret(),
    };
    let id = new_id(ID_PREFIX);
    let keys = state.keys.keys();
    let row = VerificationRow {
        sealed_secret: keys.root().seal(secret_slot(&id), secret.as_bytes()),
        id,
        agency_id: agency.id.clone(),
        consent_id: subject.consent_id.clone(),
        traveller_id: subject.traveller_id.clone(),
        channel,
        digest,
        language: subject.language.clone(),
        status: "queued".into(),
        attempts: 0,
        last_error: None,
        created_at: now,
        finished_at: None,
        expires_at: now + time::Duration::minutes(i64::from(tunables.expires_minutes)),
        wrong_codes: 0,
        confirmed_at: None,
    };
    store::insert(&mut tx, &row).await?;
    let entry = NewEntry::new(
        now,
        request_id,
        agency,
        Action::ContactVerification,
        Outcome::Queued,
    );
    let index = state.commit_with_audit(tx, subjects(entry, &row)).await?;
    state.message_wake.notify_one();
    let mut verification = ContactVerification::of(&row, now, tunables.max_wrong_codes);
    verification.audit_index = Some(index);
    Ok(verification)
}

/// An entry about `row`: its agency, traveller, record, channel, and its id as the
/// message the code went in.
pub(crate) fn subjects(entry: NewEntry, row: &VerificationRow) -> NewEntry {
    entry
        .agency(row.agency_id.clone())
        .traveller(row.traveller_id.clone())
        .consent(row.consent_id.clone())
        .message(row.id.clone())
        .channel(row.channel.as_str())
}

/// One of the agency's verifications.
pub async fn read(
    state: &AppState,
    agency: &Party,
    id: &str,
) -> Result<ContactVerification, Error> {
    let mut conn = state.store.reader().acquire().await?;
    let row = store::get(&mut conn, Some(&agency.id), id)
        .await?
        .ok_or_else(|| Error::of(ErrorKind::VerificationNotFound))?;
    let receipt = outbox::receipt_of(&mut conn, Queue::Verifications, id)
        .await?
        .map(|r| MessageReceipt {
            status: r.status,
            reason: r.reason,
            at: format_time(r.at),
        });
    let max = max_wrong_codes(state);
    Ok(ContactVerification {
        receipt,
        ..ContactVerification::of(&row, state.clock.now(), max)
    })
}

/// Who answers a verification.
#[derive(Debug, Clone, Copy)]
pub enum Answerer<'a> {
    /// The agency, posting the code the traveller read to it.
    Agency(&'a Party),
    /// The traveller, through the link (its secret is the only credential).
    Traveller,
}

/// The answer to a confirmation.
#[derive(Serialize, Deserialize, Debug)]
pub struct Confirmed {
    /// The verification, confirmed.
    pub verification: ContactVerification,
    /// `false` when it was confirmed before (this call changed nothing).
    pub recorded: bool,
}

/// Answers a verification with `code`. The right code, in time, for the contact the
/// traveller's record still holds, confirms the channel; a wrong one is counted.
pub async fn confirm(
    state: &AppState,
    request_id: &str,
    by: Answerer<'_>,
    id: &str,
    code: &str,
) -> Result<Confirmed, Error> {
    let now = state.clock.now();
    let max = max_wrong_codes(state);
    let scope = match by {
        Answerer::Agency(agency) => Some(agency.id.as_str()),
        Answerer::Traveller => None,
    };
    let mut tx = state.store.begin().await?;
    let row = store::get(&mut tx, scope, id)
        .await?
        .ok_or_else(|| Error::of(ErrorKind::VerificationNotFound))?;
    let secret = open_secret(state, &row)?;
    let right = one_time::matches(code, &secret);
    let standing = progress(&row).state(now, max);
    if standing == VerificationState::Confirmed && right {
        tx.rollback().await.ok();
        return Ok(Confirmed {
            verification: ContactVerification::of(&row, now, max),
            recorded: false,
        });
    }
    if !standing.open() {
        tx.rollback().await.ok();
        return Err(closed(standing));
    }
    let entry = subjects(
        match by {
            Answerer::Agency(agency) => NewEntry::new(
                now,
                request_id,
                agency,
                Action::ContactConfirmation,
                Outcome::Recorded,
            ),
            Answerer::Traveller => NewEntry::by_traveller(
                now,
                request_id,
                &row.traveller_id,
                Action::ContactConfirmation,
                Outcome::Recorded,
            ),
        },
        &row,
    );
    if !right {
        let Some(tried) = store::count_wrong_code(&mut tx, &row.id, max).await? else {
            tx.rollback().await.ok();
            return Err(closed(VerificationState::Locked));
        };
        state
            .commit_with_audit(tx, entry.refused("wrong_code"))
            .await?;
        let left = i64::from(max).saturating_sub(tried).max(0);
        return Err(Error::field(
            ErrorKind::VerificationCodeMismatch,
            "code",
            format!("does not match; {left} tries left"),
        )
        .with_extension("tries_left", left.into()));
    }
    if holding_contact(&mut tx, &row, now).await?.is_none() {
        state
            .commit_with_audit(tx, entry.refused("contact_changed"))
            .await?;
        return Err(Error::new(
            ErrorKind::VerificationClosed,
            "The traveller's record no longer holds this contact in force (it was withdrawn, replaced \
             or purged since the code was sent); ask for a new verification.",
        ));
    }
    if !store::confirm(&mut tx, &row.id, now, max).await? {
        // Another answer got there first: a confirmation, or the last wrong code.
        let now_standing = store::get(&mut tx, scope, &row.id)
            .await?
            .map_or(VerificationState::Locked, |r| progress(&r).state(now, max));
        tx.rollback().await.ok();
        return Err(closed(now_standing));
    }
    let contact = MessageContact {
        traveller_id: row.traveller_id.clone(),
        agency_id: row.agency_id.clone(),
        channel: row.channel.as_str().to_string(),
        digest: Some(row.digest.clone()),
    };
    reachability::record(
        &mut tx,
        &Learnt {
            contact: &contact,
            digest: &row.digest,
            state: "reachable",
            reason: None,
            message_id: &row.id,
            at: now,
            verified: true,
        },
    )
    .await?;
    let hooked = parties::with_webhooks(&mut tx, &[row.agency_id.as_str()])
        .await?
        .contains(&row.agency_id);
    let confirmed = VerificationRow {
        confirmed_at: Some(now),
        ..row
    };
    let stored = state
        .commit_with_pushes(tx, vec![entry], |stored| {
            if hooked {
                event_of(&confirmed, stored)
            } else {
                Vec::new()
            }
        })
        .await?;
    let mut verification = ContactVerification::of(&confirmed, now, max);
    verification.audit_index = stored.first().map(|e| e.index);
    Ok(Confirmed {
        verification,
        recorded: true,
    })
}

/// The traveller's record as it stands, if it is in force and holds the contact the
/// code was sent to.
async fn holding_contact(
    conn: &mut Conn,
    row: &VerificationRow,
    now: OffsetDateTime,
) -> Result<Option<store::Subject>, Error> {
    let current = store::current_subject(conn, &row.traveller_id).await?;
    Ok(current.filter(|c| {
        !c.purged && c.scope.activity(now).is_ok() && c.digest(row.channel) == Some(&row.digest[..])
    }))
}

/// The problem for a verification that takes no more answers.
fn closed(state: VerificationState) -> Error {
    let why = match state {
        VerificationState::Confirmed => "It was confirmed already.",
        VerificationState::Expired => "It expired; ask for a new verification.",
        VerificationState::Locked => "Too many wrong codes were tried; ask for a new verification.",
        VerificationState::Failed => "The code could not be sent; ask for a new verification.",
        VerificationState::Cancelled => {
            "It was not sent: the record stopped allowing it; ask for a new verification."
        }
        VerificationState::Queued | VerificationState::Sent => "It takes no more answers.",
    };
    Error::new(ErrorKind::VerificationClosed, why).with_extension("state", state.as_str().into())
}

/// The agency's `contact.verified` event, naming the confirmation's entry.
fn event_of(row: &VerificationRow, stored: &[AuditEntry]) -> Vec<WebhookDelivery> {
    let Some(entry) = stored.first() else {
        return Vec::new();
    };
    let payload = serde_json::json!({
        "type": EVENT_TYPE,
        "contact": {
            "traveller_id": row.traveller_id,
            "consent_id": row.consent_id,
            "channel": row.channel.as_str(),
            "verification_id": row.id,
            "verified_at": row.confirmed_at.map(format_time),
        },
        "audit_index": entry.index,
    });
    vec![WebhookDelivery {
        id: new_id("whd"),
        agency_id: row.agency_id.clone(),
        audit_index: entry.index,
        payload: payload.to_string(),
        attempts: 0,
    }]
}

/// Claims up to `round` verifications due for sending, leased to this broker.
/// Verifications are few: the readers say first whether any is due, so that the
/// messages' worker, which looks every round, takes the writer only when one is.
pub async fn claim_due(state: &AppState, round: i64) -> Result<Vec<VerificationRow>, Error> {
    let now = state.clock.now();
    let next = {
        let mut conn = state.store.reader().acquire().await?;
        outbox::next_due(&mut conn, Queue::Verifications).await?
    };
    if next.is_none_or(|at| at > now) {
        return Ok(Vec::new());
    }
    Ok(store::claim(&state.store, now, now + LEASE, round).await?)
}

/// A code or link ready to send: to whom and in what words.
pub struct Outgoing {
    /// The mobile number or the email address, opened now.
    pub to: String,
    /// The email's subject.
    pub subject: Option<String>,
    /// The text.
    pub text: String,
}

/// Opens a verification for sending if the traveller's record still holds its contact
/// in force; otherwise the reason it is cancelled.
pub async fn open_outgoing(
    state: &AppState,
    row: &VerificationRow,
) -> Result<Result<Outgoing, &'static str>, Error> {
    let now = state.clock.now();
    let max = max_wrong_codes(state);
    if progress(row).state(now, max) != VerificationState::Queued {
        return Ok(Err("verification_closed"));
    }
    let (current, agency) = {
        let mut conn = state.store.reader().acquire().await?;
        let current = holding_contact(&mut conn, row, now).await?;
        (current, parties::name(&mut conn, &row.agency_id).await?)
    };
    let Some(current) = current else {
        return Ok(Err("contact_changed"));
    };
    let Some(contacts) = record_contacts(state, &current.consent_id).await? else {
        return Ok(Err("contact_purged"));
    };
    let to = match row.channel {
        Channel::Sms => contacts.mobile,
        Channel::Email => contacts.email,
    };
    let Some(to) = to else {
        return Ok(Err("no_contact"));
    };
    let secret = open_secret(state, row)?;
    // Minutes left, rounded up: a code asked for 30 minutes ago less a second says 30.
    let seconds = (row.expires_at - now).whole_seconds().max(60);
    let minutes = u32::try_from((seconds + 59) / 60).unwrap_or(u32::MAX);
    Ok(Ok(match row.channel {
        Channel::Sms => Outgoing {
            to,
            subject: None,
            text: domain::sms_text(&row.language, &agency, &secret, minutes),
        },
        Channel::Email => {
            let link = format!(
                "{}/verify?lang={}&id={}&code={secret}",
                state.settings.public_url.trim_end_matches('/'),
                domain::page_language(&row.language),
                row.id
            );
            let (subject, text) = domain::email(&row.language, &agency, &link, minutes);
            Outgoing {
                to,
                subject: Some(subject),
                text,
            }
        }
    }))
}

/// Records how an attempt to send a verification ended, with its audit entry. A code
/// that would arrive after it expires is not retried.
pub async fn record_attempt(
    state: &AppState,
    row: &VerificationRow,
    attempt: &Attempt,
) -> Result<(), Error> {
    let now = state.clock.now();
    let backoff = state.settings.policies.tunables.relay_backoff();
    let attempts = u32::try_from(row.attempts).unwrap_or(u32::MAX) + 1;
    let id = &row.id;
    let queue = Queue::Verifications;
    let mut tx = state.store.begin().await?;
    let (outcome, reason) = match attempt {
        Attempt::Delivered => {
            outbox::finish(&mut *tx, queue, id, "delivered", None, true, now).await?;
            (Outcome::Delivered, None)
        }
        Attempt::Cancelled(why) => {
            outbox::finish(&mut *tx, queue, id, "cancelled", Some(why), false, now).await?;
            (Outcome::Cancelled, Some(*why))
        }
        Attempt::Transient(why)
            if attempts < backoff.max_attempts
                && now + backoff.after(attempts) < row.expires_at =>
        {
            let next = now + backoff.after(attempts);
            outbox::retry_later(&mut *tx, queue, id, why, next).await?;
            (Outcome::Deferred, Some(reason_code(why)))
        }
        Attempt::Transient(why) | Attempt::Permanent(why) => {
            outbox::finish(&mut *tx, queue, id, "failed", Some(why), true, now).await?;
            (Outcome::Failed, Some(reason_code(why)))
        }
    };
    let mut entry = subjects(
        NewEntry::by_broker(now, "relay-worker", Action::ContactVerification, outcome),
        row,
    );
    entry.reason = reason;
    state.commit_with_audit(tx, entry).await?;
    Ok(())
}
