//! Withdrawals: by the agency (`POST /v1/consents/{id}/withdrawal`) or by the traveller
//! with their code alone (`POST /v1/withdrawals`), effective at once
//! (`service::withdraw`).

use crate::service::withdraw::{self, WithdrawalRequest, Withdrawn};
use crate::service::AppState;
use crate::wire::client_ip::RateLimitedClient;
use crate::wire::extract::{AgencyCaller, ApiJson, RequestId};
use crate::wire::problem::Problem;
use axum::extract::{Path, State};
use axum::Json;

/// The agency withdraws one of its records (the traveller asked it to).
pub async fn by_agency(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AgencyCaller(agency): AgencyCaller,
    Path(id): Path<String>,
) -> Result<Json<Withdrawn>, Problem> {
    Ok(Json(
        withdraw::by_agency(&state, &request_id, &agency, id).await?,
    ))
}

/// The traveller withdraws with their code. The code is checked on a read first, so
/// a wrong one never waits for the writer, and each address may try only a few
/// codes a minute.
pub async fn by_traveller(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    _client: RateLimitedClient,
    ApiJson(body): ApiJson<WithdrawalRequest>,
) -> Result<Json<Withdrawn>, Problem> {
    Ok(Json(
        withdraw::by_traveller(&state, &request_id, body).await?,
    ))
}
