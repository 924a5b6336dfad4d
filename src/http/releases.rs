//! `POST /v1/releases`: an airline redeems a reveal token and receives the contact,
//! once; and the token checks every use of a token goes through (reveal or relay).

use super::extract::{AirlineCaller, ApiJson, RequestId};
use super::problem::{Problem, ProblemKind};
use super::tokens::{refusal_problem, TOKEN_PREFIX};
use super::AppState;
use crate::audit::{format_time, Action, NewEntry, Outcome};
use crate::crypto::secret;
use crate::domain::delivery::{Channel, Delivery};
use crate::domain::party::Party;
use crate::policy::engine::{AirlineFacts, ReleaseContext, TravellerAction};
use crate::policy::{self, Refusal, TokenState};
use crate::store::tokens::TokenRecord;
use crate::store::{consents, release, tokens, Tx};
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
    let taken = take_token(
        &state,
        &request_id,
        &airline,
        &body.token,
        Use::Reveal,
        None,
    )
    .await?;
    let Taken {
        mut tx,
        token,
        entry,
    } = taken;
    let sealed = consents::sealed(&mut tx, &token.consent_id).await?;
    let Some(opened) = super::consents::open_contacts(&state, &token.consent_id, &sealed)? else {
        return Err(state
            .refuse(
                tx,
                entry.refused("contact_purged"),
                Problem::of(ProblemKind::ContactPurged),
            )
            .await);
    };
    let contact = Contact {
        mobile: opened
            .mobile
            .filter(|_| token.channels.contains(&Channel::Sms)),
        email: opened
            .email
            .filter(|_| token.channels.contains(&Channel::Email)),
    };
    let audit_index = state.commit_with_audit(tx, entry).await?;
    let now = state.clock.now();
    let days = state.settings.policies.tunables.retention.release_days;
    let delete_by = now + time::Duration::days(i64::from(days));
    Ok(Json(Released {
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
    }))
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

/// Checks a presented token for a use and takes one use of it, or audits the refusal
/// and returns its problem. The token rules (holder, revocation, uses, expiry,
/// delivery, channel) come first, then the release policies with the state of the
/// consent now.
pub async fn take_token(
    state: &AppState,
    request_id: &str,
    airline: &Party,
    presented: &str,
    wanted: Use,
    channel: Option<Channel>,
) -> Result<Taken, Problem> {
    let presented = secret::parse(TOKEN_PREFIX, presented.trim()).ok_or_else(|| {
        Problem::field(
            ProblemKind::InvalidField,
            "token",
            "is not a Passerelle release token",
        )
    })?;
    let now = state.clock.now();
    let (action, outcome, policy_action) = match wanted {
        Use::Reveal => (
            Action::TokenRedemption,
            Outcome::Released,
            TravellerAction::RedeemToken,
        ),
        Use::Relay => (
            Action::MessageRelay,
            Outcome::Queued,
            TravellerAction::RelayMessage,
        ),
    };
    let mut entry = NewEntry::new(now, request_id, airline, action, outcome);
    entry.entry.airline_id = Some(airline.id.clone());
    entry.entry.channel = channel.map(|c| c.as_str().to_string());

    let mut tx = state.store.begin().await?;
    let token = tokens::find(&mut tx, presented.id)
        .await?
        .filter(|t| presented.matches(&t.secret_hash));
    let Some(token) = token else {
        let refusal = Refusal::TokenNotFound;
        let entry = entry.refused(refusal.reason());
        return Err(state.refuse(tx, entry, refusal_problem(refusal, &[])).await);
    };
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

    let token_state = TokenState {
        held_by_caller: token.airline_id == airline.id,
        used: token.uses_left <= 0,
        revoked: token.revoked_at.is_some(),
        expires_at: token.expires_at,
    };
    let mut checked = policy::token_redeemable(&token_state, now);
    if checked.is_ok() && wanted == Use::Reveal && token.delivery == Delivery::Relay {
        checked = Err(Refusal::RelayOnly);
    }
    if checked.is_ok() && channel.is_some_and(|c| !token.channels.contains(&c)) {
        checked = Err(Refusal::ChannelNotCovered);
    }
    if let Err(refusal) = checked {
        let entry = entry.refused(refusal.reason());
        return Err(state.refuse(tx, entry, refusal_problem(refusal, &[])).await);
    }

    let facts = release::for_consent(&mut tx, &token.consent_id)
        .await?
        .ok_or_else(|| Problem::internal(format!("token {} has no consent", token.id)))?;
    let verdict = state.settings.policies.decide_traveller(
        &AirlineFacts::of(airline),
        policy_action,
        &super::tokens::traveller_facts(&facts),
        &ReleaseContext {
            purpose: &token.purpose,
            event_category: &token.event_category,
            now,
        },
    );
    entry.entry.policies = Some(verdict.policy_list());
    let refusal = match verdict.refusal {
        None if !tokens::take_use(&mut tx, &token.id, now).await? => Some(Refusal::TokenUsed),
        other => other,
    };
    if let Some(refusal) = refusal {
        let entry = entry.refused(refusal.reason());
        return Err(state
            .refuse(tx, entry, refusal_problem(refusal, &verdict.policies))
            .await);
    }
    Ok(Taken { tx, token, entry })
}
