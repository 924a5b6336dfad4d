//! Searching the audit trail, for compliance officers (the API's `/v1/audit/entries`
//! and the console's log page).
//!
//! Every filter officers ask by (time, agency, airline, booking, traveller, action,
//! outcome, purpose, event), a cursor over entry indexes, and the total that matches,
//! counted up to the broker's limit (`Settings::search_total_limit`): a count reads every
//! entry it counts, so an unbounded one would make each page of a search over a
//! ten-million-entry log cost seconds, and the searches of a busy day slow down as the
//! log grows.
//! Entries hold pseudonymous ids only; no contact value is ever in them.

use crate::audit::{Action, AuditEntry, Outcome};
use crate::domain::ids::hex;
use crate::domain::party::PartyKind;
use crate::service::input::page_limit;
use crate::service::{AppState, Error, ErrorKind};
use crate::store::audit::{self, EntryFilter};
use crate::store::db::Db;
use crate::store::direct::read_apart;
use crate::store::parties;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Most entries returned in one page.
pub const MAX_PAGE: i64 = 1000;

/// What officers filter on; every field optional.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct EntryQuery {
    /// At or after (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    /// Before (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    /// The agency, by IATA number.
    pub agency: Option<String>,
    /// The airline, by designator.
    pub airline: Option<String>,
    /// The booking id.
    pub booking_id: Option<String>,
    /// The traveller's pseudonymous id.
    pub traveller_id: Option<String>,
    /// What was asked.
    pub action: Option<Action>,
    /// What was decided.
    pub outcome: Option<Outcome>,
    /// The purpose asked for.
    pub purpose: Option<String>,
    /// The event category (`delay`, `cancellation`, …).
    pub event_category: Option<String>,
    /// The airline's disruption reference.
    pub event_reference: Option<String>,
    /// Return entries after this index (the previous page's `next_after`).
    pub after: Option<i64>,
    /// How many entries, 1 to 1000 (default 100).
    pub limit: Option<i64>,
}

/// An entry with its leaf hash.
#[derive(Serialize, Deserialize, Debug)]
pub struct ListedEntry {
    /// The entry.
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// RFC 9162 leaf hash, hex: SHA-256(0x00 ‖ JCS(entry without this field)).
    pub leaf_hash: String,
}

impl ListedEntry {
    fn from((entry, leaf): (AuditEntry, Vec<u8>)) -> Self {
        Self {
            entry,
            leaf_hash: hex(&leaf),
        }
    }
}

/// A page of entries.
#[derive(Serialize, Deserialize, Debug)]
pub struct EntryPage {
    /// Entries in log order.
    pub entries: Vec<ListedEntry>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
    /// Entries matching the filters, across all pages, counted up to the broker's
    /// limit: past it, this is the limit and `total_exact` is false.
    pub total: i64,
    /// Whether `total` is every matching entry (false: at least that many).
    pub total_exact: bool,
    /// Entries in the whole log.
    pub tree_size: i64,
}

/// The store's filter for a query; `None` when it names an agency or airline that
/// does not exist (nothing can match).
pub async fn entry_filter(
    conn: &mut impl Db,
    query: &EntryQuery,
) -> Result<Option<EntryFilter>, Error> {
    let Some(agency_id) = party_id(conn, &query.agency, PartyKind::Agency).await? else {
        return Ok(None);
    };
    let Some(airline_id) = party_id(conn, &query.airline, PartyKind::Airline).await? else {
        return Ok(None);
    };
    if let (Some(since), Some(until)) = (query.since, query.until) {
        if until <= since {
            return Err(Error::field(
                ErrorKind::InvalidField,
                "until",
                "must be later than `since`",
            ));
        }
    }
    Ok(Some(EntryFilter {
        agency_id,
        airline_id,
        traveller_id: query.traveller_id.clone(),
        booking_id: query.booking_id.clone(),
        actions: query.action.map(Action::as_str).into_iter().collect(),
        outcomes: query.outcome.map(Outcome::as_str).into_iter().collect(),
        purpose: query.purpose.clone(),
        event_category: query.event_category.clone(),
        event_reference: query.event_reference.clone(),
        since: query.since,
        until: query.until,
        ..EntryFilter::default()
    }))
}

/// `Some(None)` when no party is named, `Some(Some(id))` when it exists, `None` when
/// it does not.
pub(crate) async fn party_id(
    conn: &mut impl Db,
    code: &Option<String>,
    kind: PartyKind,
) -> Result<Option<Option<String>>, Error> {
    match code {
        None => Ok(Some(None)),
        Some(code) => Ok(parties::find_by_code(conn, kind, code.trim())
            .await?
            .map(|p| Some(p.id))),
    }
}

/// Lists matching entries in index order, a page at a time, with the total.
pub async fn list(state: &AppState, page: &EntryQuery) -> Result<EntryPage, Error> {
    let limit = page_limit(page.limit, 100, MAX_PAGE)?;
    if page.after.is_some_and(|a| a < 0) {
        return Err(Error::field(
            ErrorKind::InvalidField,
            "after",
            "must be an entry index (0 or more)",
        ));
    }
    let search = Search {
        query: page.clone(),
        limit,
        limit_of_total: state.settings.search_total_limit,
    };
    read_apart!(&state.store, search, |search, db| search.run(db))
}

/// A search, as it is handed to the thread that reads it: a page may read up to the
/// limit of its total's count, which must not hold a runtime thread.
struct Search {
    query: EntryQuery,
    limit: i64,
    limit_of_total: i64,
}

impl Search {
    async fn run(&self, db: &mut impl Db) -> Result<EntryPage, Error> {
        let Search {
            query,
            limit,
            limit_of_total,
        } = self;
        let (limit, limit_of_total) = (*limit, *limit_of_total);
        let tree_size = audit::size(db).await?;
        let Some(filter) = entry_filter(db, query).await? else {
            return Ok(EntryPage {
                entries: Vec::new(),
                next_after: None,
                total: 0,
                total_exact: true,
                tree_size,
            });
        };
        // One more than the limit tells "more than the limit" from "exactly the limit".
        let counted = audit::count_filtered(db, &filter, limit_of_total.saturating_add(1)).await?;
        let total_exact = counted <= limit_of_total;
        let rows = audit::list_filtered(db, &filter, query.after, limit + 1).await?;
        let more = rows.len() as i64 > limit;
        let entries: Vec<ListedEntry> = rows
            .into_iter()
            .take(limit as usize)
            .map(ListedEntry::from)
            .collect();
        let next_after = entries.last().map(|e| e.entry.index).filter(|_| more);
        Ok(EntryPage {
            entries,
            next_after,
            total: counted.min(limit_of_total),
            total_exact,
            tree_size,
        })
    }
}

/// One entry, by its index as the client wrote it.
pub async fn read(state: &AppState, index: &str) -> Result<ListedEntry, Error> {
    let index = parse_index(index, "index")?;
    let mut conn = state.store.reader().acquire().await?;
    audit::entry_at(&mut conn, index)
        .await?
        .map(ListedEntry::from)
        .ok_or_else(|| Error::of(ErrorKind::EntryNotFound))
}

/// An entry index from a path or query: a non-negative integer.
pub fn parse_index(text: &str, field: &str) -> Result<u64, Error> {
    text.parse::<u64>()
        .ok()
        .filter(|i| *i <= i64::MAX as u64)
        .ok_or_else(|| {
            Error::field(
                ErrorKind::InvalidField,
                field,
                "must be an entry index (0 or more)",
            )
        })
}
