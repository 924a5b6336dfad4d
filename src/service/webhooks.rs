//! A party's webhook: where the broker pushes signed events. An agency gets each use
//! of its clients' data and its clients' disruptions; an airline the erasure requests
//! of contacts it was shown (`contact.erasure_required`). The secret is sealed at rest
//! and shown once; the URL is checked against the outbound rule now and at every push.

use crate::audit::{Action, NewEntry, Outcome};
use crate::crypto::secret;
use crate::domain::party::{Party, PartyKind};
use crate::service::uses::webhook_secret_slot;
use crate::service::{AppState, Error, ErrorKind};
use crate::store::parties;
use serde::{Deserialize, Serialize};

/// A webhook to register.
#[derive(Deserialize, Serialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    /// Where to push: `https://…` (or `http://` on loopback, for testing).
    pub url: String,
}

/// A registered webhook with its secret, shown once.
#[derive(Deserialize, Serialize, Debug)]
pub struct WebhookRegistered {
    /// Where pushes go.
    pub url: String,
    /// The HMAC-SHA256 key that signs every push; keep it, it is not shown again.
    pub secret: String,
    /// The header that carries the signature.
    pub signature_header: String,
    /// How old a signed timestamp to accept, in seconds.
    pub tolerance_seconds: u64,
}

/// Registers (or replaces, with a new secret) the party's webhook.
pub async fn set_webhook(
    state: &AppState,
    request_id: &str,
    party: &Party,
    body: WebhookRequest,
) -> Result<WebhookRegistered, Error> {
    let url = check_webhook_url(state, &body.url).await?;
    let secret = secret::issue("whsec_").plaintext;
    let sealed_secret = state
        .keys
        .keys()
        .root()
        .seal(webhook_secret_slot(&party.id), secret.as_bytes());
    let mut tx = state.store.begin().await?;
    parties::set_webhook(
        &mut tx,
        &party.id,
        Some(&parties::Webhook {
            url: url.clone(),
            sealed_secret,
        }),
    )
    .await?;
    let entry = settings_entry(state, request_id, party).because("webhook_registered");
    state.commit_with_audit(tx, entry).await?;
    Ok(WebhookRegistered {
        url,
        secret,
        signature_header: crate::service::uses::SIGNATURE_HEADER.into(),
        tolerance_seconds: state
            .settings
            .policies
            .tunables
            .webhooks
            .signature_tolerance_seconds,
    })
}

/// Removes the party's webhook; pushes still queued fail.
pub async fn remove_webhook(
    state: &AppState,
    request_id: &str,
    party: &Party,
) -> Result<(), Error> {
    let mut tx = state.store.begin().await?;
    parties::set_webhook(&mut tx, &party.id, None).await?;
    let entry = settings_entry(state, request_id, party).because("webhook_removed");
    state.commit_with_audit(tx, entry).await?;
    Ok(())
}

/// The settings change of a webhook, naming the party as agency or airline.
fn settings_entry(state: &AppState, request_id: &str, party: &Party) -> NewEntry {
    let entry = NewEntry::new(
        state.clock.now(),
        request_id,
        party,
        Action::SettingsChange,
        Outcome::Changed,
    );
    match party.kind {
        PartyKind::Airline => entry.airline(party.id.clone()),
        _ => entry.agency(party.id.clone()),
    }
}

/// A webhook URL the outbound rule allows: `https://`, without credentials, on a host
/// that is and resolves to a public address (see `crate::outbound`); it is checked
/// again at every push.
async fn check_webhook_url(state: &AppState, raw: &str) -> Result<String, Error> {
    let invalid = |refused: crate::outbound::Refused| {
        Error::field(ErrorKind::InvalidField, "url", refused.to_string())
    };
    let outbound = state.settings.outbound;
    let url = outbound.parse(raw).map_err(invalid)?;
    outbound.check_resolved(&url).await.map_err(invalid)?;
    Ok(url.to_string())
}
