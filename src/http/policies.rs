//! `GET /v1/policies`: the release policies in force, verbatim, with their digest and
//! tunables (`service::policies`).

use crate::service::policies::{self, PoliciesInForce};
use crate::service::AppState;
use crate::wire::extract::OfficerCaller;
use crate::wire::problem::Problem;
use axum::extract::State;
use axum::Json;

/// The policies, for an officer.
pub async fn read(
    State(state): State<AppState>,
    OfficerCaller(officer): OfficerCaller,
) -> Result<Json<PoliciesInForce>, Problem> {
    Ok(Json(policies::read(&state, &officer).await?))
}
