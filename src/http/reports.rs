//! `GET /v1/audit/reports`: what compliance officers ask of a period, as counts
//! (`service::reports`).

use crate::service::reports::{self, PeriodQuery, Report};
use crate::service::AppState;
use crate::wire::extract::{ApiQuery, OfficerCaller};
use crate::wire::problem::Problem;
use axum::extract::State;
use axum::Json;

/// `GET /v1/audit/reports`.
pub async fn read(
    State(state): State<AppState>,
    OfficerCaller(_officer): OfficerCaller,
    ApiQuery(query): ApiQuery<PeriodQuery>,
) -> Result<Json<Report>, Problem> {
    Ok(Json(reports::read(&state, query).await?))
}
