//! `POST /v1/messages` and `GET /v1/messages/{id}`: an airline has the broker relay a
//! message under a relay token, and follows its delivery (`service::relay`);
//! `POST /v1/gateway/sms/receipts`: the SMS gateway says, signed, what became of one
//! (`service::gateway_receipts`).

use crate::service::gateway_receipts::{self, ReceiptRecorded, SIGNATURE_HEADER};
use crate::service::relay::{self, MessageStatus, RelayRequest};
use crate::service::AppState;
use crate::wire::extract::{AirlineCaller, ApiJson, RequestId};
use crate::wire::problem::Problem;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
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

/// A delivery receipt from the SMS gateway, authenticated by its signature over the
/// raw body (no API key: the gateway is no party).
pub async fn receipt(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ReceiptRecorded>, Problem> {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok());
    Ok(Json(
        gateway_receipts::record(&state, signature, &body).await?,
    ))
}
