//! Parties, their API keys and agencies' signing keys.

use super::{to_millis, Conn, StoreError};
use crate::crypto::secret::IssuedSecret;
use crate::domain::delivery::Delivery;
use crate::domain::ids::new_id;
use crate::domain::party::{Party, PartyKind};
use sqlx::Row;
use time::OffsetDateTime;
use tracing::instrument;

/// Inserts a party and returns its id. A second party of the same kind and code is
/// refused by the unique index.
#[instrument(skip_all)]
pub async fn insert(
    conn: &mut Conn,
    kind: PartyKind,
    code: Option<&str>,
    name: &str,
    now: OffsetDateTime,
) -> Result<String, StoreError> {
    let id = new_id(kind.id_prefix());
    sqlx::query(
        "INSERT INTO parties (id, kind, code, name, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(kind.as_str())
    .bind(code)
    .bind(name)
    .bind(to_millis(now))
    .execute(conn)
    .await?;
    Ok(id)
}

/// Finds a party by kind and code (agency number or designator).
#[instrument(skip_all)]
pub async fn find_by_code(
    conn: &mut Conn,
    kind: PartyKind,
    code: &str,
) -> Result<Option<Party>, StoreError> {
    let row = sqlx::query("SELECT id FROM parties WHERE kind = $1 AND code = $2")
        .bind(kind.as_str())
        .bind(code)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| Party {
        id: r.get("id"),
        kind,
        code: Some(code.to_string()),
    }))
}

/// Finds a party by kind and name (used for officers, who have no code).
#[instrument(skip_all)]
pub async fn find_by_name(
    conn: &mut Conn,
    kind: PartyKind,
    name: &str,
) -> Result<Option<Party>, StoreError> {
    let row = sqlx::query("SELECT id, code FROM parties WHERE kind = $1 AND name = $2")
        .bind(kind.as_str())
        .bind(name)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| Party {
        id: r.get("id"),
        kind,
        code: r.get("code"),
    }))
}

/// Stores a new API key (its hash only) for a party.
#[instrument(skip_all)]
pub async fn insert_api_key(
    conn: &mut Conn,
    party_id: &str,
    key: &IssuedSecret,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_keys (id, party_id, secret_hash, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&key.id)
    .bind(party_id)
    .bind(key.hash.as_slice())
    .bind(to_millis(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// Revokes every API key of a party.
#[instrument(skip_all)]
pub async fn revoke_api_keys(
    conn: &mut Conn,
    party_id: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE party_id = $2 AND revoked_at IS NULL")
        .bind(to_millis(now))
        .bind(party_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The stored hash of a live API key and the party that owns it.
#[instrument(skip_all)]
pub async fn api_key(
    conn: &mut Conn,
    key_id: &str,
) -> Result<Option<(Vec<u8>, Party)>, StoreError> {
    let row = sqlx::query(
        "SELECT k.secret_hash, p.id, p.kind, p.code FROM api_keys k JOIN parties p ON p.id = k.party_id \
         WHERE k.id = $1 AND k.revoked_at IS NULL",
    )
    .bind(key_id)
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let kind: String = row.get("kind");
    let kind = PartyKind::from_word(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("party kind {kind}")))?;
    Ok(Some((
        row.get("secret_hash"),
        Party {
            id: row.get("id"),
            kind,
            code: row.get("code"),
        },
    )))
}

/// Registers an agency's Ed25519 public key under a key id.
#[instrument(skip_all)]
pub async fn insert_agency_key(
    conn: &mut Conn,
    agency_id: &str,
    kid: &str,
    public_key: &[u8],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO agency_keys (party_id, kid, public_key, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(agency_id)
    .bind(kid)
    .bind(public_key)
    .bind(to_millis(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// The public key an agency registered under `kid`, if it has one and it is live.
#[instrument(skip_all)]
pub async fn agency_key(
    conn: &mut Conn,
    agency_id: &str,
    kid: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let row = sqlx::query("SELECT public_key FROM agency_keys WHERE party_id = $1 AND kid = $2 AND revoked_at IS NULL")
        .bind(agency_id)
        .bind(kid)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| r.get("public_key")))
}

/// An agency key whatever its state: for checking records it signed before it was
/// revoked.
#[derive(Debug, Clone)]
pub struct AgencyKey {
    /// The Ed25519 public key.
    pub public_key: Vec<u8>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// The key an agency registered under `kid`, live or revoked.
#[instrument(skip_all)]
pub async fn agency_key_any_state(
    conn: &mut Conn,
    agency_id: &str,
    kid: &str,
) -> Result<Option<AgencyKey>, StoreError> {
    let row = sqlx::query(
        "SELECT public_key, revoked_at FROM agency_keys WHERE party_id = $1 AND kid = $2",
    )
    .bind(agency_id)
    .bind(kid)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| AgencyKey {
        public_key: r.get("public_key"),
        revoked_at: r.get("revoked_at"),
    }))
}

/// Revokes an agency key: it signs nothing new from now on. Returns false if the
/// agency has no live key with that id.
#[instrument(skip_all)]
pub async fn revoke_agency_key(
    conn: &mut Conn,
    agency_id: &str,
    kid: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE agency_keys SET revoked_at = $1 WHERE party_id = $2 AND kid = $3 AND revoked_at IS NULL",
    )
    .bind(to_millis(now))
    .bind(agency_id)
    .bind(kid)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The name of a party.
#[instrument(skip_all)]
pub async fn name(conn: &mut Conn, party_id: &str) -> Result<String, StoreError> {
    let row = sqlx::query("SELECT name FROM parties WHERE id = $1")
        .bind(party_id)
        .fetch_one(conn)
        .await?;
    Ok(row.get("name"))
}

/// How an agency's clients are reached by default.
#[instrument(skip_all)]
pub async fn delivery(conn: &mut Conn, agency_id: &str) -> Result<Delivery, StoreError> {
    let row = sqlx::query("SELECT delivery FROM parties WHERE id = $1")
        .bind(agency_id)
        .fetch_one(conn)
        .await?;
    let word: String = row.get("delivery");
    Delivery::from_word(&word).ok_or_else(|| StoreError::Corrupt(format!("delivery {word}")))
}

/// Sets an agency's default delivery.
#[instrument(skip_all)]
pub async fn set_delivery(
    conn: &mut Conn,
    agency_id: &str,
    delivery: Delivery,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE parties SET delivery = $1 WHERE id = $2 AND kind = 'agency'")
        .bind(delivery.as_str())
        .bind(agency_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// An agency's webhook: its URL and its sealed signing secret.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// Where pushes go.
    pub url: String,
    /// The HMAC key, sealed for (`parties`, `webhook_secret`, agency id).
    pub sealed_secret: Vec<u8>,
}

/// The agency's webhook, if it registered one.
#[instrument(skip_all)]
pub async fn webhook(conn: &mut Conn, agency_id: &str) -> Result<Option<Webhook>, StoreError> {
    let row = sqlx::query("SELECT webhook_url, sealed_webhook_secret FROM parties WHERE id = $1")
        .bind(agency_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.and_then(|r| {
        let url: Option<String> = r.get("webhook_url");
        let secret: Option<Vec<u8>> = r.get("sealed_webhook_secret");
        Some(Webhook {
            url: url?,
            sealed_secret: secret?,
        })
    }))
}

/// Registers (or, with `None`, removes) an agency's webhook.
#[instrument(skip_all)]
pub async fn set_webhook(
    conn: &mut Conn,
    agency_id: &str,
    webhook: Option<&Webhook>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE parties SET webhook_url = $1, sealed_webhook_secret = $2 WHERE id = $3 AND kind = 'agency'",
    )
    .bind(webhook.map(|w| w.url.clone()))
    .bind(webhook.map(|w| w.sealed_secret.clone()))
    .bind(agency_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A party as others see it: kind, code and display name.
#[derive(Debug, Clone)]
pub struct Listed {
    /// `agency`, `airline` or `officer`.
    pub kind: String,
    /// IATA number or designator.
    pub code: Option<String>,
    /// Display name.
    pub name: String,
}

/// Kind, code and name of a party.
#[instrument(skip_all)]
pub async fn listed(conn: &mut Conn, party_id: &str) -> Result<Option<Listed>, StoreError> {
    let row = sqlx::query("SELECT kind, code, name FROM parties WHERE id = $1")
        .bind(party_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|r| Listed {
        kind: r.get("kind"),
        code: r.get("code"),
        name: r.get("name"),
    }))
}
