//! `/v1/airline/…`: the domains an airline's relayed messages may link to
//! (`service::airline`), the message templates the broker relays for it when it
//! declares a disruption (`service::templates`), and its webhook, where it is asked to
//! erase contacts it was shown (`service::webhooks`).

use crate::domain::template::Template;
use crate::service::airline::LinkDomains;
use crate::service::templates::{TemplateList, TemplateView};
use crate::service::{self, AppState};
use crate::wire::extract::{AirlineCaller, ApiJson, ApiQuery, RequestId};
use crate::wire::problem::Problem;
use axum::extract::{Path, State};
use axum::http::StatusCode;
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

/// `GET /v1/airline/templates`: the airline's message templates.
pub async fn templates(
    State(state): State<AppState>,
    AirlineCaller(airline): AirlineCaller,
) -> Result<Json<TemplateList>, Problem> {
    Ok(Json(service::templates::list(&state, &airline).await?))
}

/// `PUT /v1/airline/templates/{event}/{language}`: registers or replaces one.
pub async fn set_template(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AirlineCaller(airline): AirlineCaller,
    Path((event, language)): Path<(String, String)>,
    ApiJson(body): ApiJson<Template>,
) -> Result<Json<TemplateView>, Problem> {
    Ok(Json(
        service::templates::set(&state, &request_id, &airline, &event, &language, body).await?,
    ))
}

/// `PUT /v1/airline/webhook`: registers (or replaces, with a new secret) the airline's
/// webhook, where its erasure requests are pushed.
pub async fn set_webhook(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AirlineCaller(airline): AirlineCaller,
    ApiJson(body): ApiJson<service::webhooks::WebhookRequest>,
) -> Result<(StatusCode, Json<service::webhooks::WebhookRegistered>), Problem> {
    let answer = service::webhooks::set_webhook(&state, &request_id, &airline, body).await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// `DELETE /v1/airline/webhook`: its erasure requests are then read at
/// `GET /v1/erasure-requests` only.
pub async fn remove_webhook(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AirlineCaller(airline): AirlineCaller,
) -> Result<StatusCode, Problem> {
    service::webhooks::remove_webhook(&state, &request_id, &airline).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/flights/coverage?carrier=&flight_number=&date=`: how many of one of the
/// airline's flights' travellers it could reach (never who), before a disruption.
pub async fn flight_coverage(
    State(state): State<AppState>,
    AirlineCaller(airline): AirlineCaller,
    ApiQuery(flight): ApiQuery<crate::domain::booking::Flight>,
) -> Result<Json<service::reachability::FlightCoverage>, Problem> {
    Ok(Json(
        service::reachability::flight_coverage(&state, &airline, flight).await?,
    ))
}
