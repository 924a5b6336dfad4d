//! The middleware stack, built in one place: request ids, tracing, metrics, problem
//! bodies for bare errors, panic catching, a time limit, a body-size limit, and the
//! headers every response carries (`nosniff`, and HSTS when the broker is reached
//! over https).

use crate::service::AppState;
use crate::wire::extract::REQUEST_ID;
use crate::wire::problem::{self, InternalCause, Problem, ProblemKind, PROBLEM_JSON};
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Response};
use axum::middleware::{self, Next};
use axum::Router;
use std::time::{Duration, Instant};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::Span;

/// Wraps the router in the whole stack. Each `layer` call wraps what came before, so
/// the list reads from the innermost (next to the handlers) to the outermost.
/// `bulk_pages` are the pages' upload paths, which take bulk-sized bodies like the
/// bulk routes.
pub fn stack(
    router: Router<AppState>,
    state: &AppState,
    bulk_pages: &'static [&'static str],
) -> Router<AppState> {
    router
        .layer(middleware::from_fn_with_state(
            state.clone(),
            super::idempotency::layer,
        ))
        .layer(middleware::from_fn_with_state(
            (state.clone(), bulk_pages),
            limit_body,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), time_limit))
        .layer(CatchPanicLayer::new())
        .layer(middleware::from_fn(problem_for_bare_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(
                    |response: &Response<Body>, latency: Duration, _span: &Span| {
                        tracing::info!(
                            status = response.status().as_u16(),
                            latency_ms = latency.as_millis() as u64,
                            "answered"
                        );
                    },
                )
                .on_failure(()),
        )
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, RandomRequestId))
        .layer(middleware::from_fn(drop_unsafe_request_id))
}

/// Routes that take bulk uploads, and so the larger body limit.
const BULK_ROUTES: [&str; 1] = ["/v1/consents/batch"];

/// Caps the request body: `max_batch_bytes` on bulk routes, `max_body_bytes`
/// elsewhere. A declared length over the cap is refused before reading; a streamed
/// body is cut off where it crosses it (the handler answers 413).
async fn limit_body(
    State((state, bulk_pages)): State<(AppState, &'static [&'static str])>,
    request: Request,
    next: Next,
) -> Response<Body> {
    let settings = &state.settings;
    let path = request.uri().path();
    let limit = if BULK_ROUTES.contains(&path) || bulk_pages.contains(&path) {
        settings.max_batch_bytes
    } else {
        settings.max_body_bytes
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return axum::response::IntoResponse::into_response(Problem::of(ProblemKind::BodyTooLarge));
    }
    let request = request.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
    next.run(request).await
}

/// Headers on every response, API and pages alike: `X-Content-Type-Options: nosniff`
/// (a browser never guesses a JSON answer to be HTML), and, when the broker's public
/// URL is https, `Strict-Transport-Security`, so a browser never tries plain http
/// with a session cookie again.
async fn security_headers(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response<Body> {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if state.settings.public_url.starts_with("https://") {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// The routes that store many records: they read their body within the request
/// timeout themselves, then store what they read to the end (see `batch`), since a
/// `408` after records are stored would lose their one-time withdrawal codes.
const STORING_ROUTES: [&str; 3] = ["/v1/consents/batch", "/v1/consents/ssr", "/agency/upload"];

/// Abandons a request that takes longer than the request timeout (`408`), but for
/// the routes that store many records.
async fn time_limit(State(state): State<AppState>, request: Request, next: Next) -> Response<Body> {
    if STORING_ROUTES.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    match tokio::time::timeout(state.settings.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            axum::response::IntoResponse::into_response(Problem::of(ProblemKind::RequestTimeout))
        }
    }
}

/// Request ids: 128 random bits in hex.
#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let id = crate::domain::ids::new_id("req");
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// A caller may send its own request id to correlate logs, but only a short, plain
/// one: anything else could forge log lines, so it is replaced by ours.
async fn drop_unsafe_request_id(mut request: Request, next: Next) -> Response<Body> {
    let safe = request.headers().get(&REQUEST_ID).is_none_or(|v| {
        let bytes = v.as_bytes();
        (1..=64).contains(&bytes.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
    });
    if !safe {
        request.headers_mut().remove(&REQUEST_ID);
    }
    next.run(request).await
}

/// The span of a request: method, route template and request id; never the query
/// string, headers or body, which may hold keys, tokens or personal data.
fn request_span(request: &Request) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!("request", method = %request.method(), route, request_id)
}

async fn record_metrics(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response<Body> {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.observe_request(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Turns any error response without a problem body (axum's 404/405, tower-http's
/// 408/413, a caught panic) into problem+json, logs the internal cause of a 5xx once,
/// and adds the request id to every problem so a client can quote it.
async fn problem_for_bare_errors(request: Request, next: Next) -> Response<Body> {
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
        tracing::error!(%cause, "request failed");
    }
    // Pages answer errors as pages (see `web`).
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if is_page {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    let (mut parts, body) = response.into_parts();
    let mut problem = if is_problem {
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default()
    } else {
        if status.is_server_error() {
            tracing::error!(
                status = status.as_u16(),
                "request failed below the handlers"
            );
        }
        let kind = ProblemKind::for_status(status.as_u16());
        let fresh = problem::response_body(&Problem::of(kind));
        parts.status = problem::status_of(kind);
        fresh
    };
    problem["request_id"] = serde_json::Value::String(request_id);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(
        parts,
        Body::from(serde_json::to_vec(&problem).expect("a problem serializes")),
    )
}
