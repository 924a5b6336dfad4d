//! `GET /v1/audit/entries`: compliance officers read the audit trail in order.

use super::extract::{page_limit, ApiQuery, OfficerCaller};
use super::problem::{Problem, ProblemKind};
use super::AppState;
use crate::audit::AuditEntry;
use crate::domain::ids::hex;
use crate::store::audit;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

/// Most entries returned in one page.
pub const MAX_PAGE: i64 = 1000;

/// Query parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
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

/// A page of entries.
#[derive(Serialize, Deserialize, Debug)]
pub struct EntryPage {
    /// Entries in log order.
    pub entries: Vec<ListedEntry>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
    /// Entries in the whole log.
    pub tree_size: i64,
}

/// Lists entries in index order, a page at a time.
pub async fn list(
    State(state): State<AppState>,
    OfficerCaller(_officer): OfficerCaller,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<EntryPage>, Problem> {
    let limit = page_limit(page.limit, 100, MAX_PAGE)?;
    if page.after.is_some_and(|a| a < 0) {
        return Err(Problem::field(
            ProblemKind::InvalidField,
            "after",
            "must be an entry index (0 or more)",
        ));
    }
    let mut conn = state.store.reader().acquire().await?;
    let tree_size = audit::size(&mut conn).await?;
    let rows = audit::list(&mut conn, page.after, limit).await?;
    let last = rows.last().map(|(e, _)| e.index);
    let next_after = last.filter(|&i| i + 1 < tree_size);
    let entries = rows
        .into_iter()
        .map(|(entry, leaf)| ListedEntry {
            entry,
            leaf_hash: hex(&leaf),
        })
        .collect();
    Ok(Json(EntryPage {
        entries,
        next_after,
        tree_size,
    }))
}
