//! Extractors that answer in problem+json: JSON bodies, query strings, the request id
//! and the calling party. axum's own rejections are plain text, so none is used.

use super::problem::{Problem, ProblemKind};
use crate::domain::party::{Party, PartyKind};
use crate::service::auth::check_api_key;
use crate::service::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderName, StatusCode};
use serde::de::DeserializeOwned;

/// The request id header, set on every request and returned on every response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A JSON body, parsed with the JSON path of any bad field kept for the error.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        json_body(req, state).await.map(ApiJson)
    }
}

/// A request's JSON body, parsed: what [`ApiJson`] extracts, for a handler that reads
/// its body itself (within a deadline of its own).
pub async fn json_body<T: DeserializeOwned, S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<T, Problem> {
    let essence = media_type(req.headers());
    if essence != "application/json" && !essence.ends_with("+json") {
        return Err(Problem::new(
            ProblemKind::UnsupportedMediaType,
            "Send the body as JSON with `Content-Type: application/json`.",
        ));
    }
    let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::of(ProblemKind::BodyTooLarge)
        } else {
            Problem::new(ProblemKind::BadRequest, "The body could not be read.")
        }
    })?;
    parse_json(&bytes)
}

/// The media type of a request body, without parameters, lower-cased (`""` if none).
pub fn media_type(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

use crate::service::input::field_path;
use crate::service::input::parse_json;

/// A query string, parsed like a body: a bad parameter is named.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|err| {
                let field = field_path(err.path(), "query");
                Problem::field(
                    ProblemKind::InvalidField,
                    field,
                    err.into_inner().to_string(),
                )
            })
    }
}

/// The request id set (or checked) by the request-id middleware.
pub struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let id = parts.headers.get(REQUEST_ID).and_then(|v| v.to_str().ok());
        id.map(|id| RequestId(id.to_string()))
            .ok_or_else(|| Problem::internal("request id middleware missing"))
    }
}

/// Checks the bearer key and returns its party; 401 when missing, unknown or revoked.
pub(crate) async fn authenticate(parts: &Parts, state: &AppState) -> Result<Party, Problem> {
    let unauthorized = || {
        Problem::new(
            ProblemKind::Unauthorized,
            "Send a valid API key as `Authorization: Bearer <key>`.",
        )
    };
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unauthorized)?;
    let (scheme, key) = value.split_once(' ').ok_or_else(unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(unauthorized());
    }
    match check_api_key(state, key.trim()).await? {
        Some((party, _)) => Ok(party),
        None => Err(unauthorized()),
    }
}

macro_rules! caller {
    ($name:ident, $kind:expr, $what:literal) => {
        #[doc = concat!("The calling party, authenticated and checked to be ", $what, ".")]
        pub struct $name(pub Party);

        impl FromRequestParts<AppState> for $name {
            type Rejection = Problem;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, Problem> {
                let party = authenticate(parts, state).await?;
                if party.kind != $kind {
                    return Err(Problem::new(
                        ProblemKind::WrongPartyKind,
                        format!(
                            "This route is for {}; yours is an {} key.",
                            $what, party.kind
                        ),
                    ));
                }
                Ok($name(party))
            }
        }
    };
}

caller!(AgencyCaller, PartyKind::Agency, "an agency");
caller!(AirlineCaller, PartyKind::Airline, "an airline");
caller!(OfficerCaller, PartyKind::Officer, "a compliance officer");

/// The calling party, authenticated, of any kind: for what every party may read.
pub struct AnyCaller(pub Party);

impl FromRequestParts<AppState> for AnyCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        Ok(AnyCaller(authenticate(parts, state).await?))
    }
}
