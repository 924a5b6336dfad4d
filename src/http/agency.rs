//! What an agency controls and sees of the release path over HTTP: how its clients
//! are reached, its webhook, and the receipts feed (`service::agency`).

use crate::service::agency::{DeliverySetting, ReceiptPage, ReceiptQuery, RecordDelivery};
use crate::service::{self, AppState};
use crate::wire::extract::{AgencyCaller, ApiJson, ApiQuery, RequestId};
use crate::wire::problem::Problem;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

/// Sets how all the agency's clients are reached (unless a record says otherwise).
/// Tokens granted from now on follow it; tokens already granted keep theirs.
pub async fn set_delivery(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AgencyCaller(agency): AgencyCaller,
    ApiJson(body): ApiJson<DeliverySetting>,
) -> Result<Json<DeliverySetting>, Problem> {
    Ok(Json(
        service::agency::set_delivery(&state, &request_id, &agency, body).await?,
    ))
}

/// Sets how the traveller of one record is reached. It applies to the traveller, so
/// later versions of the record keep it.
pub async fn set_record_delivery(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AgencyCaller(agency): AgencyCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RecordDelivery>,
) -> Result<Json<RecordDelivery>, Problem> {
    Ok(Json(
        service::agency::set_record_delivery(&state, &request_id, &agency, id, body).await?,
    ))
}

/// Registers (or replaces, with a new secret) the agency's webhook.
pub async fn set_webhook(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AgencyCaller(agency): AgencyCaller,
    ApiJson(body): ApiJson<service::webhooks::WebhookRequest>,
) -> Result<(StatusCode, Json<service::webhooks::WebhookRegistered>), Problem> {
    let answer = service::webhooks::set_webhook(&state, &request_id, &agency, body).await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// Removes the agency's webhook; pushes still queued fail.
pub async fn remove_webhook(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AgencyCaller(agency): AgencyCaller,
) -> Result<StatusCode, Problem> {
    service::webhooks::remove_webhook(&state, &request_id, &agency).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every use of the agency's clients' data, filtered and paginated.
pub async fn receipts(
    State(state): State<AppState>,
    AgencyCaller(agency): AgencyCaller,
    ApiQuery(query): ApiQuery<ReceiptQuery>,
) -> Result<Json<ReceiptPage>, Problem> {
    Ok(Json(
        service::agency::receipts(&state, &agency, query).await?,
    ))
}

/// `GET /v1/agency/contacts-to-fix`: the agency's clients whose current record holds a
/// contact known not to reach them, soonest departure first.
pub async fn contacts_to_fix(
    State(state): State<AppState>,
    AgencyCaller(agency): AgencyCaller,
) -> Result<Json<service::reachability::ContactsToFix>, Problem> {
    Ok(Json(service::reachability::to_fix(&state, &agency).await?))
}
