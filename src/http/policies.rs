//! `GET /v1/policies`: the release policies in force, verbatim, with their digest and
//! tunables (`service::policies`).

use super::extract::OfficerCaller;
use super::problem::Problem;
use crate::service::policies::{self, PoliciesInForce};
use crate::service::AppState;
use axum::extract::State;
use axum::Json;

/// The policies, for an officer.
pub async fn read(
    State(state): State<AppState>,
    OfficerCaller(officer): OfficerCaller,
) -> Result<Json<PoliciesInForce>, Problem> {
    Ok(Json(policies::read(&state, &officer).await?))
}
