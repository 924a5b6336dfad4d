//! `/v1/consents`: an agency uploads one record, lists and reads its own, fetches a
//! record's countersigned receipt and its contact as PNR SSR lines
//! (`service::records`).

use crate::crypto::countersign::Countersigned;
use crate::service::ingest::single::{self, ConsentRecorded, Recorded, SignedStatement};
use crate::service::records::{self, ListQuery, RecordDetail, RecordPage};
use crate::service::ssr_export::{self, SsrQuery};
use crate::service::AppState;
use crate::wire::extract::{AgencyCaller, ApiJson, ApiQuery, RequestId};
use crate::wire::problem::Problem;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Checks one statement and its signature, seals the personal data and stores it with
/// its audit entry and receipt. Re-sending a stored statement answers 200 with the
/// record already stored.
pub async fn upload(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AgencyCaller(agency): AgencyCaller,
    ApiJson(body): ApiJson<SignedStatement>,
) -> Result<(StatusCode, Json<ConsentRecorded>), Problem> {
    let recorded = single::upload(&state, &request_id, &agency, body).await?;
    let status = match recorded.outcome {
        Recorded::Stored => StatusCode::CREATED,
        Recorded::Duplicate => StatusCode::OK,
    };
    Ok((status, Json(recorded)))
}

/// Lists the calling agency's records, filtered, a page at a time.
pub async fn list(
    State(state): State<AppState>,
    AgencyCaller(agency): AgencyCaller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<RecordPage>, Problem> {
    Ok(Json(records::list(&state, &agency, query).await?))
}

/// Reads one of the agency's records.
pub async fn read(
    State(state): State<AppState>,
    AgencyCaller(agency): AgencyCaller,
    Path(id): Path<String>,
) -> Result<Json<RecordDetail>, Problem> {
    Ok(Json(records::read(&state, &agency, id).await?))
}

/// The countersigned receipt of one of the agency's records.
pub async fn receipt(
    State(state): State<AppState>,
    AgencyCaller(agency): AgencyCaller,
    Path(id): Path<String>,
) -> Result<Json<Countersigned>, Problem> {
    Ok(Json(records::receipt(&state, &agency, id).await?))
}

/// Renders the record's contact (or refusal) as the SSR lines of a GDS, so that the
/// agency can key into its PNR exactly what the traveller agreed to.
pub async fn export_ssr(
    State(state): State<AppState>,
    AgencyCaller(agency): AgencyCaller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<SsrQuery>,
) -> Result<Response, Problem> {
    let lines = ssr_export::export_ssr(&state, &agency, id, query).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], lines).into_response())
}
