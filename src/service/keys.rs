//! The broker's public keys, so that anyone can verify a consent receipt offline
//! (`passerelle receipt verify`): the key in use first, then every key it signed with
//! before (kept in the database), so that a receipt signed before a change of key
//! still verifies.

use crate::crypto::countersign;
use crate::crypto::jws::Jwk;
use crate::service::{AppState, Error};
use crate::store::keys as stored_keys;

/// The broker's JWK Set, public parts only.
pub async fn key_set(state: &AppState) -> Result<serde_json::Value, Error> {
    let stored = {
        let mut conn = state.store.reader().acquire().await?;
        stored_keys::broker_keys(&mut conn).await?
    };
    let earlier: Vec<Jwk> = stored
        .iter()
        .filter_map(|text| serde_json::from_str::<Jwk>(text).ok())
        .filter(|key| key.kid != state.broker_key.kid)
        .collect();
    Ok(countersign::key_set(
        std::iter::once(&state.broker_key).chain(&earlier),
    ))
}
