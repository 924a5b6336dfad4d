//! Parties, their API keys and agencies' signing keys.

use super::{to_millis, Conn, StoreError};
use crate::crypto::secret::IssuedSecret;
use crate::domain::delivery::Delivery;
use crate::domain::ids::new_id;
use crate::domain::links::LinkDomain;
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

/// Stores a new API key (its hash only) for a party, live until `expires_at` if
/// given.
#[instrument(skip_all)]
pub async fn insert_api_key(
    conn: &mut Conn,
    party_id: &str,
    key: &IssuedSecret,
    now: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_keys (id, party_id, secret_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&key.id)
    .bind(party_id)
    .bind(key.hash.as_slice())
    .bind(to_millis(now))
    .bind(expires_at.map(to_millis))
    .execute(conn)
    .await?;
    Ok(())
}

/// Revokes every API key of a party, and ends the pages' sessions opened with them.
/// Returns how many keys were live.
#[instrument(skip_all)]
pub async fn revoke_api_keys(
    conn: &mut Conn,
    party_id: &str,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    revoke_other_api_keys(conn, party_id, "", now).await
}

/// Revokes every API key of a party but `except`, and ends the sessions opened with
/// them. Returns how many keys were live.
#[instrument(skip_all)]
pub async fn revoke_other_api_keys(
    conn: &mut Conn,
    party_id: &str,
    except: &str,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = $1 WHERE party_id = $2 AND id <> $3 AND revoked_at IS NULL",
    )
    .bind(to_millis(now))
    .bind(party_id)
    .bind(except)
    .execute(&mut *conn)
    .await?;
    end_sessions_of_revoked_keys(conn).await?;
    Ok(done.rows_affected())
}

/// Revokes one API key by its public id, and ends the sessions opened with it.
/// Returns false if no live key has that id.
#[instrument(skip_all)]
pub async fn revoke_api_key(
    conn: &mut Conn,
    key_id: &str,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done =
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(to_millis(now))
            .bind(key_id)
            .execute(&mut *conn)
            .await?;
    end_sessions_of_revoked_keys(conn).await?;
    Ok(done.rows_affected() == 1)
}

/// Makes every live key of a party expire at `at` at the latest (a rotation's grace
/// period). Returns how many.
#[instrument(skip_all)]
pub async fn expire_api_keys(
    conn: &mut Conn,
    party_id: &str,
    except: &str,
    at: OffsetDateTime,
) -> Result<u64, StoreError> {
    let at = to_millis(at);
    let done = sqlx::query(
        "UPDATE api_keys SET expires_at = $1 WHERE party_id = $2 AND id <> $3 AND revoked_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $1)",
    )
    .bind(at)
    .bind(party_id)
    .bind(except)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes the sessions whose API key is revoked (they no longer open anyway).
async fn end_sessions_of_revoked_keys(conn: &mut Conn) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM web_sessions WHERE api_key_id IN (SELECT id FROM api_keys WHERE revoked_at IS NOT NULL)",
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// An API key as an operator lists it: never its secret.
#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    /// Its public id (the part after the prefix, before the dot).
    pub id: String,
    /// Its party.
    pub party_id: String,
    /// The party's kind.
    pub kind: String,
    /// The party's code (IATA number, designator), if any.
    pub code: Option<String>,
    /// The party's name.
    pub name: String,
    /// When it was issued.
    pub created_at: i64,
    /// When it expires, if it does.
    pub expires_at: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// Every API key, or one party's, oldest first.
#[instrument(skip_all)]
pub async fn list_api_keys(
    conn: &mut Conn,
    party_id: Option<&str>,
) -> Result<Vec<ApiKeyRow>, StoreError> {
    let columns = "SELECT k.id, k.party_id, p.kind, p.code, p.name, k.created_at, k.expires_at, \
                   k.revoked_at FROM api_keys k JOIN parties p ON p.id = k.party_id";
    let rows = match party_id {
        Some(party_id) => {
            sqlx::query(&format!(
                "{columns} WHERE k.party_id = $1 ORDER BY k.created_at, k.id"
            ))
            .bind(party_id)
            .fetch_all(conn)
            .await?
        }
        None => {
            sqlx::query(&format!("{columns} ORDER BY k.created_at, k.id"))
                .fetch_all(conn)
                .await?
        }
    };
    Ok(rows
        .iter()
        .map(|r| ApiKeyRow {
            id: r.get("id"),
            party_id: r.get("party_id"),
            kind: r.get("kind"),
            code: r.get("code"),
            name: r.get("name"),
            created_at: r.get("created_at"),
            expires_at: r.get("expires_at"),
            revoked_at: r.get("revoked_at"),
        })
        .collect())
}

/// A party by id.
#[instrument(skip_all)]
pub async fn find(conn: &mut Conn, party_id: &str) -> Result<Option<Party>, StoreError> {
    let row = sqlx::query("SELECT id, kind, code FROM parties WHERE id = $1")
        .bind(party_id)
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let kind: String = row.get("kind");
    let kind = PartyKind::from_word(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("party kind {kind}")))?;
    Ok(Some(Party {
        id: row.get("id"),
        kind,
        code: row.get("code"),
    }))
}

/// The stored hash of a live API key (neither revoked nor expired at `now`) and the
/// party that owns it.
#[instrument(skip_all)]
pub async fn api_key(
    conn: &mut Conn,
    key_id: &str,
    now: OffsetDateTime,
) -> Result<Option<(Vec<u8>, Party)>, StoreError> {
    let row = sqlx::query(
        "SELECT k.secret_hash, p.id, p.kind, p.code FROM api_keys k JOIN parties p ON p.id = k.party_id \
         WHERE k.id = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $2)",
    )
    .bind(key_id)
    .bind(to_millis(now))
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

/// The domains an airline's relayed messages may link to.
#[instrument(skip_all)]
pub async fn link_domains(
    conn: &mut Conn,
    airline_id: &str,
) -> Result<Vec<LinkDomain>, StoreError> {
    let row = sqlx::query("SELECT link_domains FROM parties WHERE id = $1 AND kind = 'airline'")
        .bind(airline_id)
        .fetch_optional(conn)
        .await?;
    let text: Option<String> = row.and_then(|r| r.get("link_domains"));
    text.unwrap_or_default()
        .split_whitespace()
        .map(|d| LinkDomain::parse(d).map_err(|_| StoreError::Corrupt(format!("link domain {d}"))))
        .collect()
}

/// Replaces the domains an airline's relayed messages may link to.
#[instrument(skip_all)]
pub async fn set_link_domains(
    conn: &mut Conn,
    airline_id: &str,
    domains: &[LinkDomain],
) -> Result<(), StoreError> {
    let text = domains
        .iter()
        .map(LinkDomain::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    sqlx::query("UPDATE parties SET link_domains = $1 WHERE id = $2 AND kind = 'airline'")
        .bind((!text.is_empty()).then_some(text))
        .bind(airline_id)
        .execute(conn)
        .await?;
    Ok(())
}
