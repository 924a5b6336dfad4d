//! `/v1/airline/link-domains`: the domains an airline's relayed messages may link to
//! (`service::airline`).

use super::extract::{AirlineCaller, ApiJson, RequestId};
use super::problem::Problem;
use crate::service::airline::LinkDomains;
use crate::service::{self, AppState};
use axum::extract::State;
use axum::Json;

/// `GET /v1/airline/link-domains`.
pub async fn link_domains(
    State(state): State<AppState>,
    AirlineCaller(airline): AirlineCaller,
) -> Result<Json<LinkDomains>, Problem> {
    Ok(Json(
        service::airline::link_domains(&state, &airline).await?,
    ))
}

/// `PUT /v1/airline/link-domains`: replaces the list (an empty one allows no link).
pub async fn set_link_domains(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AirlineCaller(airline): AirlineCaller,
    ApiJson(body): ApiJson<LinkDomains>,
) -> Result<Json<LinkDomains>, Problem> {
    Ok(Json(
        service::airline::set_link_domains(&state, &request_id, &airline, body).await?,
    ))
}
