//! Parties: agencies, airlines and officers, with what each sets for itself (an
//! agency's delivery and webhook, an airline's link domains).

use super::db::Db;
use super::row::Columns;
use super::{to_millis, Conn, Param, StoreError};
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
    db: &mut impl Db,
    kind: PartyKind,
    code: &str,
) -> Result<Option<Party>, StoreError> {
    let params = vec![
        Param::Text(kind.as_str().to_string()),
        Param::Text(code.to_string()),
    ];
    db.optional(
        "SELECT id FROM parties WHERE kind = $1 AND code = $2",
        params,
        |r| {
            Ok(Party {
                id: r.value("id"),
                kind,
                code: Some(code.to_string()),
            })
        },
    )
    .await
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

/// A party by id.
#[instrument(skip_all)]
pub async fn find(conn: &mut Conn, party_id: &str) -> Result<Option<Party>, StoreError> {
    let row = sqlx::query("SELECT id, kind, code FROM parties WHERE id = $1")
        .bind(party_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(party_from_row).transpose()
}

/// The party of a row holding its `id`, `kind` and `code` columns.
pub(crate) fn party_from_row(row: &impl Columns) -> Result<Party, StoreError> {
    let kind: String = row.value("kind");
    let kind = PartyKind::from_word(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("party kind {kind}")))?;
    Ok(Party {
        id: row.value("id"),
        kind,
        code: row.value("code"),
    })
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

/// Which of these agencies registered a webhook, in one read.
#[instrument(skip_all)]
pub async fn with_webhooks(
    db: &mut impl Db,
    agency_ids: &[&str],
) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut found = std::collections::HashSet::new();
    for chunk in agency_ids.chunks(500) {
        let mut params = Vec::new();
        let list = super::text_list(&mut params, chunk);
        let sql = format!(
            "SELECT id FROM parties WHERE id IN ({}) AND webhook_url IS NOT NULL \
             AND sealed_webhook_secret IS NOT NULL",
            list
        );
        db.for_each(&sql, params, |row| {
            found.insert(row.value("id"));
            Ok(())
        })
        .await?;
    }
    Ok(found)
}

/// Registers (or, with `None`, removes) an agency's or an airline's webhook.
#[instrument(skip_all)]
pub async fn set_webhook(
    conn: &mut Conn,
    party_id: &str,
    webhook: Option<&Webhook>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE parties SET webhook_url = $1, sealed_webhook_secret = $2 \
         WHERE id = $3 AND kind IN ('agency', 'airline')",
    )
    .bind(webhook.map(|w| w.url.clone()))
    .bind(webhook.map(|w| w.sealed_secret.clone()))
    .bind(party_id)
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
pub async fn listed(db: &mut impl Db, party_id: &str) -> Result<Option<Listed>, StoreError> {
    let params = vec![Param::Text(party_id.to_string())];
    db.optional(
        "SELECT kind, code, name FROM parties WHERE id = $1",
        params,
        |r| {
            Ok(Listed {
                kind: r.value("kind"),
                code: r.value("code"),
                name: r.value("name"),
            })
        },
    )
    .await
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
