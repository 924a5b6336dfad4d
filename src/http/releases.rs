//! `POST /v1/releases`: an airline redeems a reveal token and receives the contact,
//! once (`service::reveal`).

use crate::service::reveal::{self, Redemption, Released};
use crate::service::AppState;
use crate::wire::extract::{AirlineCaller, ApiJson, RequestId};
use crate::wire::problem::Problem;
use axum::extract::State;
use axum::Json;

/// Redeems a token: holder only, within its uses, before expiry, unless revoked,
/// under a consent the policies still allow, and only for reveal delivery.
pub async fn redeem(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AirlineCaller(airline): AirlineCaller,
    ApiJson(body): ApiJson<Redemption>,
) -> Result<Json<Released>, Problem> {
    Ok(Json(
        reveal::redeem(&state, &request_id, &airline, body).await?,
    ))
}
