//! `GET /.well-known/jwks.json`: the broker's public keys, so that anyone can verify a
//! consent receipt offline (`passerelle receipt verify`): the key in use first, then
//! every key it signed with before (kept in the database), so that a receipt signed
//! before a change of key still verifies.

use super::problem::Problem;
use crate::crypto::countersign;
use crate::crypto::jws::Jwk;
use crate::service::AppState;
use crate::store::keys as stored_keys;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

/// The broker's JWK Set (public parts only), cacheable for an hour.
pub async fn jwks(State(state): State<AppState>) -> Result<impl IntoResponse, Problem> {
    let stored = {
        let mut conn = state.store.reader().acquire().await?;
        stored_keys::broker_keys(&mut conn).await?
    };
    let earlier: Vec<Jwk> = stored
        .iter()
        .filter_map(|text| serde_json::from_str::<Jwk>(text).ok())
        .filter(|key| key.kid != state.broker_key.kid)
        .collect();
    let set = countersign::key_set(std::iter::once(&state.broker_key).chain(&earlier));
    Ok((
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        set.to_string(),
    ))
}
