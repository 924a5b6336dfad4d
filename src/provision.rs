//! Adding parties and their keys: shared by `passerelle party add`, the demo and the
//! tests, so all three provision exactly the same way.

use crate::crypto::jws::Jwk;
use crate::crypto::secret;
use crate::domain::booking::CarrierCode;
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
        parties::insert_agency_key(&mut tx, &id, kid, public_key, now).await?;
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
    if parties::agency_key_any_state(&mut tx, &agency.id, &key.kid)
        .await?
        .is_some()
    {
        return Err(ProvisionError::Exists(format!(
            "key `{}` of agency {iata} (key ids are never reused, even once revoked)",
            key.kid
        )));
    }
    parties::insert_agency_key(&mut tx, &agency.id, &key.kid, &public_key, now).await?;
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
    if !parties::revoke_agency_key(&mut tx, &agency.id, kid, now).await? {
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
    let issued = secret::issue(party.kind.api_key_prefix());
    parties::insert_api_key(conn, &party.id, &issued, now).await?;
    Ok(issued.plaintext)
}
