//! `POST /v1/releases`: an airline redeems a reveal token and receives the contact,
//! once; and the token checks every use of a token goes through (reveal or relay).

use super::extract::{AirlineCaller, ApiJson, RequestId};
use super::problem::{Problem, ProblemKind};
use super::tokens::{refusal_problem, TOKEN_PREFIX};
use crate::audit::{Action, NewEntry, Outcome};
use crate::crypto::secret;
use crate::domain::delivery::{Channel, Delivery};
use crate::domain::party::Party;
use crate::domain::time::format_time;
use crate::policy::engine::{AirlineFacts, ReleaseContext, TravellerAction, Verdict};
use crate::policy::{self, Refusal, TokenState};
use crate::service::sealed::Contacts;
use crate::service::use_batch;
use crate::service::AppState;
use crate::store::tokens::TokenRecord;
use crate::store::{consents, release, tokens, Conn, Tx};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

/// The token to redeem, in the body so that it never lands in an access log.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redemption {
    /// The token as granted.
    pub token: String,
}

/// The traveller's contact values.
#[derive(Serialize, Deserialize, Debug)]
pub struct Contact {
    /// E.164 mobile number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    /// Email address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The terms the airline accepts by using the contact.
#[derive(Serialize, Deserialize, Debug)]
pub struct UsageTerms {
    /// The only use allowed.
    pub allowed_use: String,
    /// When the airline must have deleted the contact.
    pub delete_by: String,
    /// Where the rule comes from.
    pub basis: String,
}

/// A released contact.
#[derive(Serialize, Deserialize, Debug)]
pub struct Released {
    /// The contact.
    pub contact: Contact,
    /// The token it was released under.
    pub token_id: String,
    /// The purpose it may be used for.
    pub purpose: String,
    /// The flight.
    pub flight: String,
    /// The airline's disruption reference.
    pub event_reference: String,
    /// The terms of use.
    pub terms: UsageTerms,
    /// Index of the audit entry that records the release.
    pub audit_index: i64,
}

/// Redeems a token: holder only, within its uses, before expiry, unless revoked,
/// under a consent the policies still allow, and only for reveal delivery.
pub async fn redeem(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AirlineCaller(airline): AirlineCaller,
    ApiJson(body): ApiJson<Redemption>,
) -> Result<Json<Released>, Problem> {
    let (ask, entry) = ask(
        &state,
        &request_id,
        &airline,
        &body.token,
        Use::Reveal,
        None,
    )?;
    if let Some(ready) = decide_on_read(&state, &ask, &entry).await? {
        let taking = use_batch::Use {
            token_id: ready.token.id.clone(),
            entry: ready.entry,
            message: None,
        };
        let outcome = state.use_batches.take(&state, taking).await?;
        if let use_batch::Outcome::Taken { audit_index } = outcome {
            let contact = ready
                .contact
                .expect("a reveal decided on a read has its contact");
            return Ok(Json(released(&state, ready.token, contact, audit_index)));
        }
    }
    let Taken {
        mut tx,
        token,
        entry,
    } = take_in_writer(&state, &ask, entry).await?;
    let sealed = consents::sealed(&mut tx, &token.consent_id).await?;
    let Some(opened) = crate::service::sealed::open_contacts(&state, &token.consent_id, &sealed)?
    else {
        return Err(state
            .refuse(
                tx,
                entry.refused("contact_purged"),
                Problem::of(ProblemKind::ContactPurged),
            )
            .await);
    };
    let audit_index = state.commit_with_audit(tx, entry).await?;
    Ok(Json(released(&state, token, opened, audit_index)))
}

/// The answer to a redemption: the contact for the token's channels, with its terms.
fn released(state: &AppState, token: TokenRecord, opened: Contacts, audit_index: i64) -> Released {
    let contact = Contact {
        mobile: opened
            .mobile
            .filter(|_| token.channels.contains(&Channel::Sms)),
        email: opened
            .email
            .filter(|_| token.channels.contains(&Channel::Email)),
    };
    let now = state.clock.now();
    let days = state.settings.policies.tunables.retention.release_days;
    let delete_by = now + time::Duration::days(i64::from(days));
    Released {
        contact,
        token_id: token.id,
        purpose: token.purpose.clone(),
        flight: token.flight,
        event_reference: token.event_reference,
        terms: UsageTerms {
            allowed_use: format!("Only to send the operational notification `{}` about this flight; never for sales or marketing.", token.purpose),
            delete_by: format_time(delete_by),
            basis: "IATA Resolution 830d; the traveller's consent recorded by the agency".into(),
        },
        audit_index,
    }
}

/// What a token is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Reveal the contact.
    Reveal,
    /// Relay a message.
    Relay,
}

/// A token use taken in an open transaction, with its audit entry ready.
pub struct Taken {
    /// The transaction holding the use; commit it with the entry.
    pub tx: Tx,
    /// The token, as it was before this use.
    pub token: TokenRecord,
    /// The audit entry for the use.
    pub entry: NewEntry,
}

/// A use the readers' view allows, with its audit entry filled in: to be taken by the
/// writer, in a batch, under the guard (see [`use_batch`]).
pub struct Ready {
    /// The token, as read.
    pub token: TokenRecord,
    /// The audit entry for the use.
    pub entry: NewEntry,
    /// For a reveal, the contact, opened from the record as read (the guard proves
    /// the record was neither purged nor withdrawn since).
    pub contact: Option<Contacts>,
}

/// Reads a presented token for a use and begins its audit entry; a string that is
/// not a release token is an invalid field.
///
/// A use is then decided twice at most. [`decide_on_read`] decides it on what the
/// readers see, beside the writer, and the writer takes the use under a guard, in a
/// batch: it takes it only if nothing a grant depends on has changed since the read
/// (the token still has uses, is neither revoked nor expired, and its record is
/// neither withdrawn, superseded nor purged; a booking's segments are only ever added
/// to). When the read refuses, or the guard finds a change, [`take_in_writer`]
/// decides again inside the writer's transaction, where it is exact: the token rules
/// (holder, revocation, uses, expiry, delivery, channel) first, then the release
/// policies with the state of the consent now; a refusal is audited from there.
pub fn ask<'a>(
    state: &AppState,
    request_id: &str,
    airline: &'a Party,
    presented: &'a str,
    wanted: Use,
    channel: Option<Channel>,
) -> Result<(UseAsked<'a>, NewEntry), Problem> {
    let presented = secret::parse(TOKEN_PREFIX, presented.trim()).ok_or_else(|| {
        Problem::field(
            ProblemKind::InvalidField,
            "token",
            "is not a Passerelle release token",
        )
    })?;
    let ask = UseAsked {
        airline,
        presented,
        wanted,
        channel,
        now: state.clock.now(),
    };
    let mut entry = NewEntry::new(ask.now, request_id, airline, ask.action(), ask.outcome());
    entry.entry.airline_id = Some(airline.id.clone());
    entry.entry.channel = channel.map(|c| c.as_str().to_string());
    Ok((ask, entry))
}

/// Decides a use on the readers' view: the use, ready for the writer, if allowed
/// there (and, for a reveal, if the contact opens); `None` otherwise.
pub async fn decide_on_read(
    state: &AppState,
    ask: &UseAsked<'_>,
    entry: &NewEntry,
) -> Result<Option<Ready>, Problem> {
    let mut reader = state.store.reader().acquire().await?;
    let Checked::Allowed(token, verdict) = check(state, &mut reader, ask).await? else {
        return Ok(None);
    };
    let contact = match ask.wanted {
        Use::Reveal => {
            let sealed = consents::sealed(&mut reader, &token.consent_id).await?;
            // A contact that cannot be opened here is left to the writer's check.
            match crate::service::sealed::open_contacts(state, &token.consent_id, &sealed) {
                Ok(Some(contact)) => Some(contact),
                _ => return Ok(None),
            }
        }
        Use::Relay => None,
    };
    let mut entry = entry.clone();
    describe(state, &mut entry, &token, Some(&verdict));
    Ok(Some(Ready {
        token,
        entry,
        contact,
    }))
}

/// Decides a use inside the writer's transaction and takes it, or audits the refusal
/// and returns its problem.
pub async fn take_in_writer(
    state: &AppState,
    ask: &UseAsked<'_>,
    mut entry: NewEntry,
) -> Result<Taken, Problem> {
    let mut tx = state.store.begin().await?;
    let (token, verdict) = match check(state, &mut tx, ask).await? {
        Checked::Allowed(token, verdict) => (token, verdict),
        Checked::Refused {
            token,
            refusal,
            verdict,
        } => {
            if let Some(token) = &token {
                describe(state, &mut entry, token, verdict.as_ref());
            }
            let policies = verdict.map(|v| v.policies).unwrap_or_default();
            let entry = entry.refused(refusal.reason());
            return Err(state
                .refuse(tx, entry, refusal_problem(refusal, &policies))
                .await);
        }
    };
    describe(state, &mut entry, &token, Some(&verdict));
    if !tokens::take_use(&mut tx, &token.id, ask.now).await? {
        let refusal = Refusal::TokenUsed;
        let entry = entry.refused(refusal.reason());
        return Err(state
            .refuse(tx, entry, refusal_problem(refusal, &verdict.policies))
            .await);
    }
    Ok(Taken { tx, token, entry })
}

/// A use asked of a token.
pub struct UseAsked<'a> {
    airline: &'a Party,
    presented: secret::PresentedSecret<'a>,
    wanted: Use,
    channel: Option<Channel>,
    now: time::OffsetDateTime,
}

impl UseAsked<'_> {
    fn action(&self) -> Action {
        match self.wanted {
            Use::Reveal => Action::TokenRedemption,
            Use::Relay => Action::MessageRelay,
        }
    }

    fn outcome(&self) -> Outcome {
        match self.wanted {
            Use::Reveal => Outcome::Released,
            Use::Relay => Outcome::Queued,
        }
    }

    fn policy_action(&self) -> TravellerAction {
        match self.wanted {
            Use::Reveal => TravellerAction::RedeemToken,
            Use::Relay => TravellerAction::RelayMessage,
        }
    }
}

/// What the token rules and the release policies say of a use.
enum Checked {
    /// Allowed, by these policies; the use is not taken yet.
    Allowed(TokenRecord, Verdict),
    /// Refused; with the token if it was found, and the policies' verdict if they
    /// were asked.
    Refused {
        token: Option<TokenRecord>,
        refusal: Refusal,
        verdict: Option<Verdict>,
    },
}

/// Decides a use on what `conn` reads, changing nothing.
async fn check(state: &AppState, conn: &mut Conn, ask: &UseAsked<'_>) -> Result<Checked, Problem> {
    let token = tokens::find(conn, ask.presented.id)
        .await?
        .filter(|t| ask.presented.matches(&t.secret_hash));
    let Some(token) = token else {
        return Ok(Checked::Refused {
            token: None,
            refusal: Refusal::TokenNotFound,
            verdict: None,
        });
    };
    let token_state = TokenState {
        held_by_caller: token.airline_id == ask.airline.id,
        used: token.uses_left <= 0,
        revoked: token.revoked_at.is_some(),
        expires_at: token.expires_at,
    };
    let mut checked = policy::token_redeemable(&token_state, ask.now);
    if checked.is_ok() && ask.wanted == Use::Reveal && token.delivery == Delivery::Relay {
        checked = Err(Refusal::RelayOnly);
    }
    if checked.is_ok() && ask.channel.is_some_and(|c| !token.channels.contains(&c)) {
        checked = Err(Refusal::ChannelNotCovered);
    }
    if let Err(refusal) = checked {
        return Ok(Checked::Refused {
            token: Some(token),
            refusal,
            verdict: None,
        });
    }
    let facts = release::for_consent(conn, &token.consent_id)
        .await?
        .ok_or_else(|| Problem::internal(format!("token {} has no consent", token.id)))?;
    let verdict = state.settings.policies.decide_traveller(
        &AirlineFacts::of(ask.airline),
        ask.policy_action(),
        &super::tokens::traveller_facts(&facts),
        &ReleaseContext {
            purpose: &token.purpose,
            event_category: &token.event_category,
            now: ask.now,
        },
    );
    Ok(match verdict.refusal {
        None => Checked::Allowed(token, verdict),
        Some(refusal) => Checked::Refused {
            token: Some(token),
            refusal,
            verdict: Some(verdict),
        },
    })
}

/// Fills the audit entry with what the token was granted for and, if they were asked,
/// the deciding policies.
fn describe(
    state: &AppState,
    entry: &mut NewEntry,
    token: &TokenRecord,
    verdict: Option<&Verdict>,
) {
    let e = &mut entry.entry;
    e.token_id = Some(token.id.clone());
    e.agency_id = Some(token.agency_id.clone());
    e.booking_id = Some(token.booking_id.clone());
    e.traveller_id = Some(token.traveller_id.clone());
    e.consent_id = Some(token.consent_id.clone());
    e.purpose = Some(token.purpose.clone());
    e.event_category = Some(token.event_category.clone());
    e.event_reference = Some(token.event_reference.clone());
    e.flight = Some(token.flight.clone());
    e.policy_digest = Some(state.settings.policies.digest().to_string());
    e.policies = verdict.map(Verdict::policy_list);
}
