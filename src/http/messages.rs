//! `POST /v1/messages` and `GET /v1/messages/{id}`: an airline has the broker relay a
//! message under a relay token, and follows its delivery (`service::relay`).

use super::extract::{AirlineCaller, ApiJson, RequestId};
use super::problem::Problem;
use crate::service::relay::{self, MessageStatus, RelayRequest};
use crate::service::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

/// Accepts a message for relay: checks the text, takes one use of the token, and
/// queues the message with its audit entry.
pub async fn relay(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AirlineCaller(airline): AirlineCaller,
    ApiJson(request): ApiJson<RelayRequest>,
) -> Result<(StatusCode, Json<MessageStatus>), Problem> {
    let answer = relay::relay(&state, &request_id, &airline, request).await?;
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

/// A message's delivery status, for the airline that sent it.
pub async fn status(
    State(state): State<AppState>,
    AirlineCaller(airline): AirlineCaller,
    Path(id): Path<String>,
) -> Result<Json<MessageStatus>, Problem> {
    Ok(Json(relay::status(&state, &airline, id).await?))
}
