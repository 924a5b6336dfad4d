//! `GET /v1/audit/entries`: compliance officers search the audit trail
//! (`service::audit_entries`).

use crate::service::audit_entries::{self, EntryPage, EntryQuery, ListedEntry};
use crate::service::AppState;
use crate::wire::extract::{ApiQuery, OfficerCaller};
use crate::wire::problem::Problem;
use axum::extract::{Path, State};
use axum::Json;

/// Lists matching entries in index order, a page at a time, with the total.
pub async fn list(
    State(state): State<AppState>,
    OfficerCaller(_officer): OfficerCaller,
    ApiQuery(page): ApiQuery<EntryQuery>,
) -> Result<Json<EntryPage>, Problem> {
    Ok(Json(audit_entries::list(&state, &page).await?))
}

/// `GET /v1/audit/entries/{index}`: one entry.
pub async fn read(
    State(state): State<AppState>,
    OfficerCaller(_officer): OfficerCaller,
    Path(index): Path<String>,
) -> Result<Json<ListedEntry>, Problem> {
    Ok(Json(audit_entries::read(&state, &index).await?))
}
