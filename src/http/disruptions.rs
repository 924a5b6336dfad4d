//! `/v1/disruptions`: an airline declares, updates and closes a disruption of its
//! flights; airlines, the agencies it affects and officers read them
//! (`service::disruptions`).

use crate::domain::disruption::{Change, Declaration};
use crate::service::disruptions::{self, DisruptionPage, DisruptionView, ListQuery};
use crate::service::AppState;
use crate::wire::extract::{AirlineCaller, AnyCaller, ApiJson, ApiQuery, RequestId};
use crate::wire::problem::Problem;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

/// Declares a disruption.
pub async fn declare(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AirlineCaller(airline): AirlineCaller,
    ApiJson(body): ApiJson<Declaration>,
) -> Result<(StatusCode, Json<DisruptionView>), Problem> {
    let declared = disruptions::declare(&state, &request_id, &airline, body).await?;
    Ok((StatusCode::CREATED, Json(declared)))
}

/// Lists the disruptions the caller may see.
pub async fn list(
    State(state): State<AppState>,
    AnyCaller(party): AnyCaller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<DisruptionPage>, Problem> {
    Ok(Json(disruptions::list(&state, &party, query).await?))
}

/// Reads one disruption the caller may see.
pub async fn read(
    State(state): State<AppState>,
    AnyCaller(party): AnyCaller,
    Path(id): Path<String>,
) -> Result<Json<DisruptionView>, Problem> {
    Ok(Json(disruptions::read(&state, &party, &id).await?))
}

/// Updates an open disruption of the airline.
pub async fn update(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AirlineCaller(airline): AirlineCaller,
    Path(id): Path<String>,
    ApiJson(change): ApiJson<Change>,
) -> Result<Json<DisruptionView>, Problem> {
    Ok(Json(
        disruptions::update(&state, &request_id, &airline, &id, change).await?,
    ))
}

/// Closes an open disruption of the airline, revoking the tokens granted under it.
pub async fn close(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AirlineCaller(airline): AirlineCaller,
    Path(id): Path<String>,
) -> Result<Json<DisruptionView>, Problem> {
    Ok(Json(
        disruptions::close(&state, &request_id, &airline, &id).await?,
    ))
}
