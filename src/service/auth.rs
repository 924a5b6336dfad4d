//! Who is calling: an API key checked against the stored hash of a live key, for the
//! API's bearer keys and the pages' sign-in alike.

use crate::crypto::secret;
use crate::domain::party::{Party, PartyKind};
use crate::service::{AppState, Error};

/// The party holding a live API key and the key's id; `None` for a malformed,
/// unknown, revoked or wrong key (one answer for all, compared in constant time).
pub async fn check_api_key(state: &AppState, key: &str) -> Result<Option<(Party, String)>, Error> {
    let Some((kind, presented)) = [PartyKind::Agency, PartyKind::Airline, PartyKind::Officer]
        .into_iter()
        .find_map(|kind| secret::parse(kind.api_key_prefix(), key).map(|p| (kind, p)))
    else {
        return Ok(None);
    };
    Ok(
        match crate::store::api_keys::api_key(&state.store, presented.id, state.clock.now()).await?
        {
            Some((hash, party)) if party.kind == kind && presented.matches(&hash) => {
                Some((party, presented.id.to_string()))
            }
            _ => None,
        },
    )
}
