//! RFC 9457 problem details: the only shape an error ever takes on the wire.
//!
//! A use case fails with a [`service::Error`](crate::service::Error); on the wire that
//! error is a problem, so the edge calls it by that name. This file is where the one
//! mapping happens: its status, its `type` URI (`urn:passerelle:problem:<slug>`) that
//! clients branch on, and its body. A 5xx says nothing internal: its cause is handed
//! to the logging middleware in a response extension, and the client gets the request
//! id instead.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub use crate::service::error::{
    json_pointer, Error as Problem, ErrorKind as ProblemKind, FieldError,
};

/// The media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The internal cause of a 5xx, for the logs only.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

/// The HTTP status of a kind of problem.
pub fn status_of(kind: ProblemKind) -> StatusCode {
    StatusCode::from_u16(kind.status()).expect("every kind has a valid status")
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    type_uri: String,
    title: &'static str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
    #[serde(flatten)]
    extensions: &'a serde_json::Map<String, serde_json::Value>,
}

fn body(problem: &Problem) -> Body<'_> {
    Body {
        type_uri: problem.kind().type_uri(),
        title: problem.kind().title(),
        status: problem.kind().status(),
        detail: problem.detail(),
        errors: problem.errors(),
        extensions: problem.extensions(),
    }
}

/// The JSON body a problem has, for middleware that rewrites bodies.
pub fn response_body(problem: &Problem) -> serde_json::Value {
    serde_json::to_value(body(problem)).expect("a problem serializes")
}

impl IntoResponse for Problem {
    fn into_response(mut self) -> Response {
        let status = status_of(self.kind());
        let bytes = serde_json::to_vec(&body(&self)).expect("a problem serializes");
        let mut response = (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            bytes,
        )
            .into_response();
        if let Some(cause) = self.take_cause() {
            response.extensions_mut().insert(InternalCause(cause));
        }
        if let Some(seconds) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.kind() == ProblemKind::Unauthorized {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
