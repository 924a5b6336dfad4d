//! `POST /v1/release-tokens` and `POST /v1/flights/release-tokens`: an airline asks
//! for a traveller's token or a whole flight's (`service::grant`).

use crate::service::grant::{self, FlightTokenRequest, FlightTokens, TokenGranted, TokenRequest};
use crate::service::AppState;
use crate::wire::extract::{AirlineCaller, ApiJson, RequestId};
use crate::wire::problem::Problem;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

/// One traveller's token, decided and audited.
pub async fn request(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AirlineCaller(airline): AirlineCaller,
    ApiJson(request): ApiJson<TokenRequest>,
) -> Result<(StatusCode, Json<TokenGranted>), Problem> {
    let answer = grant::request(&state, &request_id, &airline, request).await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// Tokens for every consenting traveller of a flight, and the reason for each other
/// traveller, in one request and one transaction.
pub async fn request_for_flight(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AirlineCaller(airline): AirlineCaller,
    ApiJson(request): ApiJson<FlightTokenRequest>,
) -> Result<Json<FlightTokens>, Problem> {
    Ok(Json(
        grant::request_for_flight(&state, &request_id, &airline, request).await?,
    ))
}
