//! Pushes to agency webhooks, signed with HMAC-SHA256.
//!
//! Header `Passerelle-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`:
//! the agency recomputes the HMAC over the timestamp and the raw body with its secret,
//! compares in constant time, and rejects a timestamp older than its tolerance (the
//! tunables suggest 300 s), so a captured push cannot be replayed later.
//! `Passerelle-Delivery` carries the push's id, the same on every retry.
//!
//! Pushes go only where the outbound rule allows (`crate::outbound`): a public
//! `https://` address, never through a redirect.

use super::Transports;
use crate::service::delivery::{self, WebhookDelivery};
use crate::service::uses::SIGNATURE_HEADER;
use crate::service::{AppState, Error};

pub use crate::crypto::signed_body::{signature, verify};

/// Pushes one delivery and records the outcome; failures are retried with the
/// webhooks' backoff, and the release it reports never waits for it. While the
/// agency's breaker is open the push waits for it, its attempts untouched.
pub async fn push(
    state: &AppState,
    transports: &Transports,
    push: &WebhookDelivery,
) -> Result<(), Error> {
    let now = state.clock.now();
    let breakers = &transports.breakers;
    if let Some(until) = breakers.open_until(&push.agency_id, now) {
        return delivery::postpone_push(state, push, until).await;
    }
    let outcome = match delivery::push_target(state, &push.agency_id).await? {
        None => Err((false, "webhook removed".to_string())),
        Some(target) => send(transports, &target.url, &target.secret, now, push).await,
    };
    let mut not_before = None;
    match &outcome {
        Ok(()) => breakers.succeeded(&push.agency_id),
        Err((true, _)) => {
            if let Some(until) = breakers.failed(&push.agency_id, now) {
                tracing::warn!(agency = %push.agency_id, until = %crate::domain::time::format_time(until), "an agency webhook keeps failing; its pushes wait");
                not_before = Some(until);
            }
        }
        Err((false, _)) => {}
    }
    delivery::record_push(state, push, outcome, not_before).await
}

/// One signed POST. `Err((retry, why))`: whether another attempt may succeed, and
/// why this one failed, in a word (never the URL or the peer's text). A URL the
/// outbound rule refuses (an address that is not public) is not retried; a redirect
/// is not followed.
async fn send(
    transports: &Transports,
    url: &str,
    secret: &[u8],
    now: time::OffsetDateTime,
    delivery: &WebhookDelivery,
) -> Result<(), (bool, String)> {
    let url = transports
        .outbound
        .parse(url)
        .map_err(|refused| (false, format!("refused: {refused}")))?;
    let signed = signature(secret, now.unix_timestamp(), &delivery.payload);
    let sent = transports
        .http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signed)
        .header("Passerelle-Delivery", &delivery.id)
        .body(delivery.payload.clone())
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err((true, format!("http {}", r.status().as_u16()))),
        Err(e) => {
            let why = crate::outbound::failure(&e);
            Err((why != "address not public", why.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_within_its_tolerance_only() {
        let secret = b"whsec_test";
        let header = signature(secret, 1_000, "{\"a\":1}");
        assert!(verify(secret, &header, "{\"a\":1}", 1_100, 300));
        assert!(
            !verify(secret, &header, "{\"a\":2}", 1_100, 300),
            "body changed"
        );
        assert!(
            !verify(secret, &header, "{\"a\":1}", 2_000, 300),
            "replayed late"
        );
        assert!(
            !verify(b"other", &header, "{\"a\":1}", 1_100, 300),
            "wrong secret"
        );
    }
}
