//! `POST /v1/consents/batch` (a JSON array, NDJSON or CSV, streamed) and
//! `POST /v1/consents/ssr` (a PNR's contact elements): take the agency's turn, hand
//! the body to the batch run (`service::ingest::batch`), answer its report.

use crate::service::ingest::batch::{self, Format};
use crate::service::ingest::report::{BatchQuery, BatchReport};
use crate::service::ingest::ssr::{self, SsrImport};
use crate::service::AppState;
use crate::wire::extract::{json_body, media_type, AgencyCaller, ApiQuery, RequestId};
use crate::wire::problem::Problem;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::Json;

/// Takes many signed records in one request, streamed.
pub async fn upload(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AgencyCaller(agency): AgencyCaller,
    ApiQuery(query): ApiQuery<BatchQuery>,
    request: Request,
) -> Result<(StatusCode, Json<BatchReport>), Problem> {
    let format = Format::of_media_type(&media_type(request.headers()))?;
    let turn = state.uploads.take(&agency.id).await?;
    let body = request.into_body();
    let report = batch::upload_in_turn(
        &state,
        turn,
        &agency,
        &request_id,
        query.atomic,
        format,
        body,
    )
    .await?;
    Ok((StatusCode::OK, Json(report)))
}

/// Imports a PNR's CTCM/CTCE/CTCR elements: one record per passenger.
pub async fn import_ssr(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AgencyCaller(agency): AgencyCaller,
    ApiQuery(query): ApiQuery<BatchQuery>,
    request: Request,
) -> Result<(StatusCode, Json<BatchReport>), Problem> {
    let turn = state.uploads.take(&agency.id).await?;
    let timeout = state.settings.request_timeout;
    let import: SsrImport = tokio::time::timeout(timeout, json_body(request, &state))
        .await
        .map_err(|_| batch::too_slow(timeout))??;
    let report =
        ssr::import_in_turn(&state, turn, &agency, &request_id, query.atomic, import).await?;
    Ok((StatusCode::OK, Json(report)))
}
