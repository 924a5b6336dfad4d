//! The log's checkpoints and proofs over HTTP (`service::proofs`).

use crate::audit::proof::{ConsistencyProof, InclusionProof};
use crate::service::proofs::{
    self, CheckpointList, CheckpointPage, CheckpointView, ConsistencyQuery, InclusionQuery,
    LogKeyView,
};
use crate::service::AppState;
use crate::wire::extract::{AnyCaller, ApiQuery, OfficerCaller};
use crate::wire::problem::Problem;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

/// `GET /v1/audit/log-key`: what verifies checkpoints; public, like the JWKS.
pub async fn log_key(State(state): State<AppState>) -> Json<LogKeyView> {
    Json(proofs::log_key(&state))
}

/// `GET /v1/audit/checkpoint`: the latest checkpoint.
pub async fn latest(
    State(state): State<AppState>,
    AnyCaller(_party): AnyCaller,
) -> Result<Json<CheckpointView>, Problem> {
    Ok(Json(proofs::latest(&state).await?))
}

/// `GET /v1/audit/checkpoints`: every checkpoint signed, a page at a time.
pub async fn list(
    State(state): State<AppState>,
    AnyCaller(_party): AnyCaller,
    ApiQuery(page): ApiQuery<CheckpointPage>,
) -> Result<Json<CheckpointList>, Problem> {
    Ok(Json(proofs::list(&state, &page).await?))
}

/// `POST /v1/audit/checkpoints`: sign a checkpoint of the log as it is now.
pub async fn sign(
    State(state): State<AppState>,
    OfficerCaller(_officer): OfficerCaller,
) -> Result<(StatusCode, Json<CheckpointView>), Problem> {
    Ok((StatusCode::CREATED, Json(proofs::sign(&state).await?)))
}

/// `GET /v1/audit/proofs/inclusion`: entry N, its path and the signed checkpoint.
pub async fn inclusion(
    State(state): State<AppState>,
    AnyCaller(party): AnyCaller,
    ApiQuery(query): ApiQuery<InclusionQuery>,
) -> Result<Json<InclusionProof>, Problem> {
    Ok(Json(proofs::inclusion(&state, &party, &query).await?))
}

/// `GET /v1/audit/proofs/consistency`: the tree of `from` entries is a prefix of the
/// tree of `to`.
pub async fn consistency(
    State(state): State<AppState>,
    AnyCaller(_party): AnyCaller,
    ApiQuery(query): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ConsistencyProof>, Problem> {
    Ok(Json(proofs::consistency(&state, &query).await?))
}
