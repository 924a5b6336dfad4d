//! Adding parties and their keys: shared by `passerelle party add`, the demo and the
//! tests, so all three provision exactly the same way.

use crate::audit::{Action, NewEntry, Outcome};
use crate::crypto::jws::Jwk;
use crate::crypto::secret;
use crate::domain::booking::CarrierCode;
use crate::domain::ids::new_id;
use crate::domain::party::{IataAgencyNumber, Party, PartyKind, PartyName};
use crate::store::{parties, Store, StoreError};
use time::OffsetDateTime;

/// Why a party could not be added.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// An argument is not valid.
    #[error("{field}: {reason}")]
    Invalid {
        /// The argument.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A party of that kind and code exists already.
    #[error("{0} exists already")]
    Exists(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str) -> impl FnOnce(String) -> ProvisionError {
    move |reason| ProvisionError::Invalid { field, reason }
}

/// A party just added, with its API key (to be shown once, never stored).
pub struct Provisioned {
    /// The party.
    pub party: Party,
    /// Its API key.
    pub api_key: String,
}

/// Adds an agency with one or more Ed25519 public keys (JWKs with their key ids).
pub async fn add_agency(
    store: &Store,
    iata: &str,
    name: &str,
    keys: &[Jwk],
    now: OffsetDateTime,
) -> Result<Provisioned, ProvisionError> {
    let iata = IataAgencyNumber::parse(iata).map_err(invalid("iata"))?;
    let name = PartyName::parse(name).map_err(invalid("name"))?;
    if keys.is_empty() {
        return Err(invalid("public-key")(
            "an agency needs at least one public key".into(),
        ));
    }
    let mut public_keys = Vec::new();
    for key in keys {
        public_keys.push((
            key.kid.clone(),
            key.public_key_bytes()
                .map_err(|e| invalid("public-key")(e.into()))?,
        ));
    }
    let mut tx = store.begin().await?;
    if parties::find_by_code(&mut tx, PartyKind::Agency, iata.as_str())
        .await?
        .is_some()
    {
        return Err(ProvisionError::Exists(format!("agency {}", iata.as_str())));
    }
    let id = parties::insert(
        &mut tx,
        PartyKind::Agency,
        Some(iata.as_str()),
        name.as_str(),
        now,
    )
    .await?;
    for (kid, public_key) in &public_keys {
        crate::store::agency_keys::insert_agency_key(&mut tx, &id, kid, public_key, now).await?;
    }
    let party = Party {
        id,
        kind: PartyKind::Agency,
        code: Some(iata.as_str().to_string()),
    };
    let api_key = issue_api_key(&mut tx, &party, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Provisioned { party, api_key })
}

/// The agency with this IATA number, or an error naming it.
async fn agency_by_number(tx: &mut crate::store::Tx, iata: &str) -> Result<Party, ProvisionError> {
    let iata = IataAgencyNumber::parse(iata).map_err(invalid("agency"))?;
    parties::find_by_code(tx, PartyKind::Agency, iata.as_str())
        .await?
        .ok_or_else(|| invalid("agency")(format!("no agency {} is registered", iata.as_str())))
}

/// Registers another signing key for an agency. Its key id must be new for the agency,
/// revoked ids included, so that a record always names one key.
pub async fn add_agency_key(
    store: &Store,
    iata: &str,
    key: &Jwk,
    now: OffsetDateTime,
) -> Result<(), ProvisionError> {
    let public_key = key
        .public_key_bytes()
        .map_err(|e| invalid("public-key")(e.into()))?;
    let mut tx = store.begin().await?;
    let agency = agency_by_number(&mut tx, iata).await?;
    if crate::store::agency_keys::agency_key_any_state(&mut tx, &agency.id, &key.kid)
        .await?
        .is_some()
    {
        return Err(ProvisionError::Exists(format!(
            "key `{}` of agency {iata} (key ids are never reused, even once revoked)",
            key.kid
        )));
    }
    crate::store::agency_keys::insert_agency_key(&mut tx, &agency.id, &key.kid, &public_key, now)
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// Revokes an agency's live key.
pub async fn revoke_agency_key(
    store: &Store,
    iata: &str,
    kid: &str,
    now: OffsetDateTime,
) -> Result<(), ProvisionError> {
    let mut tx = store.begin().await?;
    let agency = agency_by_number(&mut tx, iata).await?;
    if !crate::store::agency_keys::revoke_agency_key(&mut tx, &agency.id, kid, now).await? {
        return Err(invalid("kid")(format!(
            "agency {iata} has no live key `{kid}`"
        )));
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// Adds an airline by its IATA designator.
pub async fn add_airline(
    store: &Store,
    designator: &str,
    name: &str,
    now: OffsetDateTime,
) -> Result<Provisioned, ProvisionError> {
    let designator = CarrierCode::parse(designator).map_err(invalid("designator"))?;
    let name = PartyName::parse(name).map_err(invalid("name"))?;
    let mut tx = store.begin().await?;
    if parties::find_by_code(&mut tx, PartyKind::Airline, designator.as_str())
        .await?
        .is_some()
    {
        return Err(ProvisionError::Exists(format!(
            "airline {}",
            designator.as_str()
        )));
    }
    let id = parties::insert(
        &mut tx,
        PartyKind::Airline,
        Some(designator.as_str()),
        name.as_str(),
        now,
    )
    .await?;
    let party = Party {
        id,
        kind: PartyKind::Airline,
        code: Some(designator.as_str().to_string()),
    };
    let api_key = issue_api_key(&mut tx, &party, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Provisioned { party, api_key })
}

/// Adds a compliance officer.
pub async fn add_officer(
    store: &Store,
    name: &str,
    now: OffsetDateTime,
) -> Result<Provisioned, ProvisionError> {
    let name = PartyName::parse(name).map_err(invalid("name"))?;
    let mut tx = store.begin().await?;
    let id = parties::insert(&mut tx, PartyKind::Officer, None, name.as_str(), now).await?;
    let party = Party {
        id,
        kind: PartyKind::Officer,
        code: None,
    };
    let api_key = issue_api_key(&mut tx, &party, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Provisioned { party, api_key })
}

/// Issues a new API key for a party, inside the caller's transaction.
pub async fn issue_api_key(
    conn: &mut crate::store::Conn,
    party: &Party,
    now: OffsetDateTime,
) -> Result<String, StoreError> {
    Ok(issue_key(conn, party, now, None).await?.plaintext)
}

async fn issue_key(
    conn: &mut crate::store::Conn,
    party: &Party,
    now: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
) -> Result<secret::IssuedSecret, StoreError> {
    let issued = secret::issue(party.kind.api_key_prefix());
    crate::store::api_keys::insert_api_key(conn, &party.id, &issued, now, expires_at).await?;
    Ok(issued)
}

/// The party an operator names: by its id (`agy_…`, `air_…`, `off_…`), an agency by
/// its IATA number, or an airline by its designator.
pub async fn find_party(store: &Store, reference: &str) -> Result<Party, ProvisionError> {
    let reference = reference.trim();
    let mut conn = store.reader().acquire().await.map_err(StoreError::from)?;
    let found = if let Ok(iata) = IataAgencyNumber::parse(reference) {
        parties::find_by_code(&mut conn, PartyKind::Agency, iata.as_str()).await?
    } else if let Ok(designator) = CarrierCode::parse(reference) {
        parties::find_by_code(&mut conn, PartyKind::Airline, designator.as_str()).await?
    } else {
        parties::find(&mut conn, reference).await?
    };
    found.ok_or_else(|| {
        invalid("party")(format!(
            "no party `{reference}`: name it by id, by IATA agency number or by airline designator"
        ))
    })
}

/// Makes a party's live keys expire at `at` (an expiry given when the party is added).
pub async fn expire_api_keys(
    store: &Store,
    party: &Party,
    at: OffsetDateTime,
) -> Result<(), ProvisionError> {
    let mut tx = store.begin().await?;
    crate::store::api_keys::expire_api_keys(&mut tx, &party.id, "", at).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// The API keys on file (never their secrets), of one party or all.
pub async fn list_api_keys(
    store: &Store,
    party: Option<&Party>,
) -> Result<Vec<crate::store::api_keys::ApiKeyRow>, ProvisionError> {
    let mut conn = store.reader().acquire().await.map_err(StoreError::from)?;
    Ok(crate::store::api_keys::list_api_keys(&mut conn, party.map(|p| p.id.as_str())).await?)
}

/// A rotation: the new key (shown once) and how the old ones end.
pub struct Rotated {
    /// The new API key.
    pub api_key: String,
    /// Its public id.
    pub key_id: String,
    /// How many keys were live before.
    pub previous: u64,
}

/// Issues a party a new API key (live until `expires_at`, if given) and ends its
/// other keys: at once, or at the end of a grace period so that its clients can
/// switch. Audited; revoked keys end their page sessions.
pub async fn rotate_api_key(
    store: &Store,
    party: &Party,
    grace: time::Duration,
    expires_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<Rotated, ProvisionError> {
    let mut tx = store.begin().await?;
    let issued = issue_key(&mut tx, party, now, expires_at).await?;
    let previous = if grace.is_positive() {
        crate::store::api_keys::expire_api_keys(&mut tx, &party.id, &issued.id, now + grace).await?
    } else {
        crate::store::api_keys::revoke_other_api_keys(&mut tx, &party.id, &issued.id, now).await?
    };
    audited(tx, key_change(party, "api_key_rotated", now)).await?;
    Ok(Rotated {
        api_key: issued.plaintext,
        key_id: issued.id,
        previous,
    })
}

/// Revokes one API key (by its public id) or every key of a party, at once: the next
/// request with it is refused, and the page sessions it opened end. Audited. Returns
/// how many keys were revoked.
pub async fn revoke_api_keys(
    store: &Store,
    target: KeyTarget<'_>,
    now: OffsetDateTime,
) -> Result<u64, ProvisionError> {
    let mut tx = store.begin().await?;
    let (party, revoked) = match target {
        KeyTarget::Party(party) => (
            party.clone(),
            crate::store::api_keys::revoke_api_keys(&mut tx, &party.id, now).await?,
        ),
        KeyTarget::Key(key_id) => {
            let owner = crate::store::api_keys::list_api_keys(&mut tx, None)
                .await?
                .into_iter()
                .find(|k| k.id == key_id)
                .ok_or_else(|| invalid("key")(format!("no API key `{key_id}`")))?;
            let party = parties::find(&mut tx, &owner.party_id)
                .await?
                .ok_or_else(|| invalid("key")(format!("no API key `{key_id}`")))?;
            let revoked = crate::store::api_keys::revoke_api_key(&mut tx, key_id, now).await?;
            (party, u64::from(revoked))
        }
    };
    if revoked == 0 {
        tx.rollback().await.ok();
        return Ok(0);
    }
    audited(tx, key_change(&party, "api_key_revoked", now)).await?;
    Ok(revoked)
}

/// What `revoke_api_keys` revokes.
pub enum KeyTarget<'a> {
    /// One key, by its public id.
    Key(&'a str),
    /// Every key of a party.
    Party(&'a Party),
}

/// The audit entry of an operator's change to a party's keys.
fn key_change(party: &Party, reason: &'static str, now: OffsetDateTime) -> NewEntry {
    let entry = NewEntry::by_operator(now, &new_id("cli"), Action::ApiKeyChange, Outcome::Changed)
        .because(reason);
    match party.kind {
        PartyKind::Agency => entry.agency(party.id.clone()),
        PartyKind::Airline => entry.airline(party.id.clone()),
        PartyKind::Officer => entry,
    }
}

/// Appends an entry in `tx` and commits: the change and its entry go together.
async fn audited(mut tx: crate::store::Tx, entry: NewEntry) -> Result<(), ProvisionError> {
    let (conn, right_edge) = tx.connection_and_right_edge();
    crate::store::audit::append_many(conn, right_edge, vec![entry]).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// A party found by its code (or, for an officer, its name), its API keys replaced
/// by a fresh one: how the demo hands out keys on every start. `None` if it does
/// not exist.
pub async fn reissue_api_key(
    store: &Store,
    kind: PartyKind,
    code: Option<&str>,
    name: Option<&str>,
    now: OffsetDateTime,
) -> Result<Option<Provisioned>, ProvisionError> {
    let mut tx = store.begin().await?;
    let party: Option<Party> = match (code, name) {
        (Some(code), _) => parties::find_by_code(&mut tx, kind, code).await?,
        (None, Some(name)) => parties::find_by_name(&mut tx, kind, name).await?,
        (None, None) => None,
    };
    let Some(party) = party else { return Ok(None) };
    crate::store::api_keys::revoke_api_keys(&mut tx, &party.id, now).await?;
    let api_key = issue_api_key(&mut tx, &party, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Some(Provisioned { party, api_key }))
}

/// Registers `key` to `agency` unless it is registered already.
pub async fn ensure_agency_key(
    store: &Store,
    agency: &Party,
    key: &Jwk,
    now: OffsetDateTime,
) -> Result<(), ProvisionError> {
    let mut tx = store.begin().await?;
    if crate::store::agency_keys::agency_key(&mut tx, &agency.id, &key.kid)
        .await?
        .is_none()
    {
        let public = key
            .public_key_bytes()
            .map_err(|reason| invalid("key")(reason.to_string()))?;
        crate::store::agency_keys::insert_agency_key(&mut tx, &agency.id, &key.kid, &public, now)
            .await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}
