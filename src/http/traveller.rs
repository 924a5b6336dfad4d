//! `POST /v1/traveller/uses`: the traveller's own view of their record and every use
//! of their contact, by withdrawal code (`service::traveller`).

use crate::service::traveller::{self, TravellerView};
use crate::service::withdraw::WithdrawalRequest;
use crate::service::AppState;
use crate::wire::client_ip::RateLimitedClient;
use crate::wire::extract::ApiJson;
use crate::wire::problem::Problem;
use axum::extract::State;
use axum::Json;

/// The traveller's view, by code; each address may try only a few codes a minute.
pub async fn uses(
    State(state): State<AppState>,
    _client: RateLimitedClient,
    ApiJson(body): ApiJson<WithdrawalRequest>,
) -> Result<Json<TravellerView>, Problem> {
    Ok(Json(traveller::uses(&state, body).await?))
}
