//! `/v1/erasure-requests`: the contacts an airline was shown and is asked to erase
//! (`service::erasures`), and its acknowledgement of each.

use crate::service::erasures::{Acknowledged, ErasureRequests};
use crate::service::{self, AppState};
use crate::wire::extract::{AirlineCaller, ApiQuery, RequestId};
use crate::wire::problem::Problem;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;

/// `?limit=`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// `GET /v1/erasure-requests`: the airline's, newest first.
pub async fn list(
    State(state): State<AppState>,
    AirlineCaller(airline): AirlineCaller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ErasureRequests>, Problem> {
    Ok(Json(
        service::erasures::for_airline(&state, &airline, query.limit).await?,
    ))
}

/// `POST /v1/erasure-requests/{id}/acknowledgement`: the airline erased the contact.
pub async fn acknowledge(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AirlineCaller(airline): AirlineCaller,
    Path(id): Path<String>,
) -> Result<Json<Acknowledged>, Problem> {
    Ok(Json(
        service::erasures::acknowledge(&state, &request_id, &airline, &id).await?,
    ))
}
