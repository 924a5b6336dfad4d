//! `GET /.well-known/jwks.json`: the broker's public keys, current and earlier, so
//! that anyone can verify a consent receipt offline (`service::keys`).

use crate::service::{keys, AppState};
use crate::wire::problem::Problem;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

/// The broker's JWK Set (public parts only), cacheable for an hour.
pub async fn jwks(State(state): State<AppState>) -> Result<impl IntoResponse, Problem> {
    let set = keys::key_set(&state).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        set.to_string(),
    ))
}
