//! Revealing a contact: an airline redeems a reveal token and receives the contact,
//! once, with the terms of its use (the API's `POST /v1/releases`).

use crate::domain::delivery::Channel;
use crate::domain::party::Party;
use crate::domain::time::format_time;
use crate::service::sealed::Contacts;
use crate::service::token_use::{ask, decide_on_read, take_in_writer, Taken, TokenUse};
use crate::service::{use_batch, AppState, Error, ErrorKind};
use crate::store::tokens::TokenRecord;
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
    state: &AppState,
    request_id: &str,
    airline: &Party,
    body: Redemption,
) -> Result<Released, Error> {
    let (ask, entry) = ask(
        state,
        request_id,
        airline,
        &body.token,
        TokenUse::Reveal,
        None,
    )?;
    if let Some(ready) = decide_on_read(state, &ask, &entry).await? {
        let taking = use_batch::DecidedUse {
            token_id: ready.token.id.clone(),
            entry: ready.entry,
            message: None,
        };
        let outcome = state.use_batches.take(state, taking).await?;
        if let use_batch::Taking::Taken { audit_index } = outcome {
            let contact = ready
                .contact
                .expect("a reveal decided on a read has its contact");
            return Ok(released(state, ready.token, contact, audit_index));
        }
    }
    let Taken {
        tx,
        token,
        entry,
        sealed,
    } = take_in_writer(state, &ask, entry).await?;
    let Some(opened) = crate::service::sealed::open_contacts(state, &token.consent_id, &sealed)?
    else {
        return Err(state
            .refuse(
                tx,
                entry.refused("contact_purged"),
                Error::of(ErrorKind::ContactPurged),
            )
            .await);
    };
    let audit_index = state.commit_with_audit(tx, entry).await?;
    Ok(released(state, token, opened, audit_index))
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
