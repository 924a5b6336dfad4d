//! Searching the log: the officers' filters, counted (up to a bound) and listed in index
//! order.

use crate::audit::AuditEntry;
use crate::domain::time::format_time;
use crate::store::db::Db;
use crate::store::row::Columns;
use crate::store::{arg, from_millis, to_millis, Param, StoreError};
use time::OffsetDateTime;
use tracing::instrument;

/// Which entries to list.
#[derive(Debug, Default, Clone)]
pub struct EntryFilter {
    /// Only entries about this agency's clients.
    pub agency_id: Option<String>,
    /// Only entries about this traveller.
    pub traveller_id: Option<String>,
    /// Only entries involving this airline.
    pub airline_id: Option<String>,
    /// Only these actions (any when empty).
    pub actions: Vec<&'static str>,
    /// Only these outcomes (any when empty).
    pub outcomes: Vec<&'static str>,
    /// Only this booking.
    pub booking_id: Option<String>,
    /// Only this purpose.
    pub purpose: Option<String>,
    /// Only this event category.
    pub event_category: Option<String>,
    /// Only this airline disruption reference.
    pub event_reference: Option<String>,
    /// Only this consent record.
    pub consent_id: Option<String>,
    /// Only entries at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only entries before this time.
    pub until: Option<OffsetDateTime>,
}

pub(super) const ENTRY_COLUMNS: &str = "idx, at, request_id, actor_kind, actor_id, action, outcome, reason, agency_id, \
     airline_id, booking_id, traveller_id, consent_id, token_id, purpose, event_category, event_reference, flight, \
     message_id, channel, policies, policy_digest, leaf_hash";

/// Up to `limit` entries after index `after` (or from the start), in log order, each
/// with its stored leaf hash.
#[instrument(skip_all)]
pub async fn list(
    db: &mut impl Db,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<(AuditEntry, Vec<u8>)>, StoreError> {
    list_filtered(db, &EntryFilter::default(), after, limit).await
}

/// The SQL conditions of `filter` (after `WHERE`), its values pushed to `params`.
fn conditions(filter: &EntryFilter, params: &mut Vec<Param>) -> String {
    let mut sql = String::from("1 = 1");
    let mut equal = |column: &str, value: &Option<String>, sql: &mut String| {
        if let Some(value) = value {
            let p = arg(params, Param::Text(value.clone()));
            sql.push_str(&format!(" AND {column} = {p}"));
        }
    };
    equal("agency_id", &filter.agency_id, &mut sql);
    equal("traveller_id", &filter.traveller_id, &mut sql);
    equal("airline_id", &filter.airline_id, &mut sql);
    equal("booking_id", &filter.booking_id, &mut sql);
    equal("purpose", &filter.purpose, &mut sql);
    equal("event_category", &filter.event_category, &mut sql);
    equal("event_reference", &filter.event_reference, &mut sql);
    equal("consent_id", &filter.consent_id, &mut sql);
    for (column, words) in [("action", &filter.actions), ("outcome", &filter.outcomes)] {
        if !words.is_empty() {
            let list: Vec<String> = words
                .iter()
                .map(|w| arg(params, Param::Text((*w).to_string())))
                .collect();
            sql.push_str(&format!(" AND {column} IN ({})", list.join(", ")));
        }
    }
    if let Some(since) = filter.since {
        let p = arg(params, Param::Int(to_millis(since)));
        sql.push_str(&format!(" AND at >= {p}"));
    }
    if let Some(until) = filter.until {
        let p = arg(params, Param::Int(to_millis(until)));
        sql.push_str(&format!(" AND at < {p}"));
    }
    sql
}

/// How many entries match `filter`, counted no further than `up_to`: a count reads
/// every entry it counts, and a filter can match millions.
#[instrument(skip_all)]
pub async fn count_filtered(
    db: &mut impl Db,
    filter: &EntryFilter,
    up_to: i64,
) -> Result<i64, StoreError> {
    let mut params = Vec::new();
    let sql = format!(
        "SELECT COUNT(*) AS n FROM (SELECT 1 FROM audit_entries WHERE {} LIMIT {}) AS matching",
        conditions(filter, &mut params),
        up_to.max(0)
    );
    Ok(db
        .optional(&sql, params, |r| Ok(r.value("n")))
        .await?
        .unwrap_or(0))
}

/// Up to `limit` entries matching `filter` after index `after`, in log order.
#[instrument(skip_all)]
pub async fn list_filtered(
    db: &mut impl Db,
    filter: &EntryFilter,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<(AuditEntry, Vec<u8>)>, StoreError> {
    let (sql, params) = list_sql(filter, after, limit);
    db.all(&sql, params, |row| entry_from_row(row)).await
}

/// The statement [`list_filtered`] sends, with its parameters (public so that a test
/// can ask each engine how it plans it).
pub fn list_sql(filter: &EntryFilter, after: Option<i64>, limit: i64) -> (String, Vec<Param>) {
    let mut params = Vec::new();
    let first = arg(&mut params, Param::Int(after.unwrap_or(-1)));
    let mut sql = format!("SELECT {ENTRY_COLUMNS} FROM audit_entries WHERE idx > {first} AND ");
    sql.push_str(&conditions(filter, &mut params));
    sql.push_str(&format!(" ORDER BY idx LIMIT {limit}"));
    (sql, params)
}

/// An entry read with [`ENTRY_COLUMNS`], with its stored leaf hash.
pub(super) fn entry_from_row(r: &impl Columns) -> Result<(AuditEntry, Vec<u8>), StoreError> {
    let entry = AuditEntry {
        index: r.value("idx"),
        at: format_time(from_millis(r.value("at"))?),
        request_id: r.value("request_id"),
        actor_kind: r.value("actor_kind"),
        actor_id: r.value("actor_id"),
        action: r.value("action"),
        outcome: r.value("outcome"),
        reason: r.value("reason"),
        agency_id: r.value("agency_id"),
        airline_id: r.value("airline_id"),
        booking_id: r.value("booking_id"),
        traveller_id: r.value("traveller_id"),
        consent_id: r.value("consent_id"),
        token_id: r.value("token_id"),
        purpose: r.value("purpose"),
        event_category: r.value("event_category"),
        event_reference: r.value("event_reference"),
        flight: r.value("flight"),
        message_id: r.value("message_id"),
        channel: r.value("channel"),
        policies: r.value("policies"),
        policy_digest: r.value("policy_digest"),
    };
    Ok((entry, r.value("leaf_hash")))
}
