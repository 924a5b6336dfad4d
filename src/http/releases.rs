//! `POST /v1/releases`: an airline redeems a token and receives the contact, once.

use super::extract::{AirlineCaller, ApiJson, RequestId};
use super::problem::{Problem, ProblemKind};
use super::tokens::{refusal_problem, TOKEN_PREFIX};
use super::AppState;
use crate::audit::{format_time, Action, NewEntry, Outcome};
use crate::crypto::secret;
use crate::policy::{self, Refusal, TokenState};
use crate::store::{consents, tokens};
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

/// Redeems a token: holder only, once, before expiry, under a consent still active.
pub async fn redeem(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AirlineCaller(airline): AirlineCaller,
    ApiJson(body): ApiJson<Redemption>,
) -> Result<Json<Released>, Problem> {
    let presented = secret::parse(TOKEN_PREFIX, body.token.trim()).ok_or_else(|| {
        Problem::field(
            ProblemKind::InvalidField,
            "token",
            "is not a Passerelle release token",
        )
    })?;
    let now = state.clock.now();
    let mut entry = NewEntry::new(
        now,
        &request_id,
        &airline,
        Action::TokenRedemption,
        Outcome::Released,
    );
    entry.entry.airline_id = Some(airline.id.clone());

    let mut tx = state.store.begin().await?;
    let token = tokens::find(&mut tx, presented.id)
        .await?
        .filter(|t| presented.matches(&t.secret_hash));
    let Some(token) = token else {
        let refusal = Refusal::TokenNotFound;
        return Err(state
            .refuse(
                tx,
                entry.refused(refusal.reason()),
                refusal_problem(refusal),
            )
            .await);
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

    let token_state = TokenState {
        held_by_caller: token.airline_id == airline.id,
        used: token.used_at.is_some(),
        expires_at: token.expires_at,
    };
    let scope = consents::scope(&mut tx, &token.consent_id).await?;
    let allowed = policy::token_redeemable(&token_state, now)
        .and_then(|()| policy::consent_is_active(&scope, now));
    let allowed = match allowed {
        Ok(()) if !tokens::use_once(&mut tx, &token.id, now).await? => Err(Refusal::TokenUsed),
        other => other,
    };
    if let Err(refusal) = allowed {
        return Err(state
            .refuse(
                tx,
                entry.refused(refusal.reason()),
                refusal_problem(refusal),
            )
            .await);
    }

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
        mobile: opened.mobile,
        email: opened.email,
    };
    let audit_index = state.commit_with_audit(tx, entry).await?;
    let delete_by = now + time::Duration::days(i64::from(state.settings.release_retention_days));
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
