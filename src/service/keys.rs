//! The broker's keys against its database: at start, the data keys must be those the
//! data was sealed under and the signing key must not reuse another's id; and the
//! public keys, so that anyone can verify a consent receipt offline (`passerelle
//! receipt verify`): the key in use first, then every key it signed with before (kept
//! in the database), so that a receipt signed before a change of key still verifies.

use crate::crypto::countersign;
use crate::crypto::jws::Jwk;
use crate::crypto::keyring::Keyring;
use crate::service::{AppState, Error};
use crate::store::keys as stored_keys;
use crate::store::Store;

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

/// Before serving: the data keys must be those the database's data was sealed under
/// (their check values match, or, for a database from before check values, they
/// open a record wrapped under them), and the broker's signing key must not reuse the
/// id of another key it signed with. Records the check values and the signing key's
/// public half, so that the next start, and the JWKS, know them.
pub async fn check_keys(
    store: &Store,
    keyring: &Keyring,
    broker_key: &Jwk,
    now: time::OffsetDateTime,
) -> anyhow::Result<()> {
    let keys = keyring.keys();
    let mut conn = store.reader().acquire().await?;
    let stored = stored_keys::checks(&mut conn).await?;
    let wrong = |kid: &str| {
        anyhow::anyhow!(
            "the data key `{kid}` is not the one this database was sealed under: \
             is --data-key-file (or PASSERELLE_DATA_KEY) the keyring of this database?"
        )
    };
    keys.check_against(&stored).map_err(|e| match e {
        crate::crypto::keyring::KeyringError::WrongKey(kid) => wrong(&kid),
        other => other.into(),
    })?;
    for (kid, _) in keys.checks() {
        if stored.contains_key(&kid) {
            continue;
        }
        if let Some((record, wrapped)) = stored_keys::one_wrapped_under(&mut conn, &kid).await? {
            keys.open_record_key(&record, &wrapped)
                .map_err(|_| wrong(&kid))?;
        }
    }
    let previous = stored_keys::broker_key(&mut conn, &broker_key.kid).await?;
    drop(conn);
    let public = serde_json::to_string(&broker_key.public())?;
    if let Some(previous) = previous {
        let previous: Jwk = serde_json::from_str(&previous)?;
        anyhow::ensure!(
            previous.x == broker_key.x,
            "the broker key `{}` is not the key this database knows under that id: a new key \
             needs a new id (`passerelle keygen --broker-key FILE --kid …`), so that receipts \
             signed by the old one still verify",
            broker_key.kid
        );
    }
    let mut tx = store.begin().await?;
    for (kid, value) in keys.checks() {
        stored_keys::record_check(&mut tx, &kid, &value, now).await?;
    }
    stored_keys::record_broker_key(&mut tx, &broker_key.kid, &public, now).await?;
    tx.commit().await?;
    keyring.require_checks(&stored)?;
    Ok(())
}
