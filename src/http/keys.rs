//! `GET /.well-known/jwks.json`: the broker's public key, so that anyone can verify a
//! consent receipt offline (`passerelle receipt verify`).

use super::AppState;
use crate::crypto::countersign;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

/// The broker's JWK Set (public part only), cacheable for an hour.
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        countersign::key_set(&state.broker_key).to_string(),
    )
}
