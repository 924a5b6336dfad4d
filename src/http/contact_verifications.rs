//! Verified contacts (`service::contact_verifications`): an agency asks the broker to
//! verify a record's contact, reads where it stands, and posts the code the traveller
//! read back to it. The link an email carries opens a page instead (`web::verify`).

use crate::service::contact_verifications::{
    self, Answerer, Confirmed, ContactVerification, VerificationRequest,
};
use crate::service::AppState;
use crate::wire::extract::{AgencyCaller, ApiJson, RequestId};
use crate::wire::problem::Problem;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

/// `POST /v1/consents/{id}/verifications`: a code by SMS or a link by email, queued.
pub async fn request(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AgencyCaller(agency): AgencyCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<VerificationRequest>,
) -> Result<(StatusCode, Json<ContactVerification>), Problem> {
    let verification =
        contact_verifications::request(&state, &request_id, &agency, &id, body).await?;
    Ok((StatusCode::ACCEPTED, Json(verification)))
}

/// `GET /v1/contact-verifications/{id}`: where one of the agency's stands.
pub async fn read(
    State(state): State<AppState>,
    AgencyCaller(agency): AgencyCaller,
    Path(id): Path<String>,
) -> Result<Json<ContactVerification>, Problem> {
    Ok(Json(
        contact_verifications::read(&state, &agency, &id).await?,
    ))
}

/// The code the traveller read back.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    /// The six digits of the SMS.
    pub code: String,
}

/// `POST /v1/contact-verifications/{id}/confirmation`: the agency posts the code.
pub async fn confirm(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AgencyCaller(agency): AgencyCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Json<Confirmed>, Problem> {
    let by = Answerer::Agency(&agency);
    Ok(Json(
        contact_verifications::confirm(&state, &request_id, by, &id, &body.code).await?,
    ))
}
