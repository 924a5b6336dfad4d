//! `Idempotency-Key` on an agency's uploads and withdrawals: a retry of the same
//! request gets the first answer again, byte for byte, instead of being run twice.
//!
//! The key belongs to the calling party. The request's fingerprint is the SHA-256 of
//! its method, path, query and body, computed as the body streams through to the
//! handler, so a bulk upload is not held in memory for it. The same key with another
//! request is refused (422); a key whose first request is still running answers 409.
//! Answers are kept sealed (they may hold withdrawal codes) for a day. Server errors
//! and requests whose body was not read to its end are not kept: a retry runs anew.
//!
//! An answer must fit what is kept for replay ([`MAX_KEPT_RESPONSE`]): a bulk route
//! whose largest answer (the record cap times the largest report) could pass it
//! refuses the key before any work, rather than store records whose answer, and its
//! one-time withdrawal codes, could then not be kept. An answer that still passes it
//! is sent, never replaced by an error, and the key let go.

use crate::service::idempotency::{self, Claimed, KeptAnswer};
use crate::service::AppState;
use crate::wire::extract::authenticate;
use crate::wire::problem::{Problem, ProblemKind};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use ring::digest;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// The request header.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on a replayed answer.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// The largest answer kept for replay.
pub const MAX_KEPT_RESPONSE: usize = 32 * 1024 * 1024;

/// The routes whose answer grows with the request (one report per record).
const BULK_ROUTES: [&str; 2] = ["/v1/consents/batch", "/v1/consents/ssr"];

/// The middleware.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let applies =
        request.method() == Method::POST && request.uri().path().starts_with("/v1/consents");
    let Some(key) = request
        .headers()
        .get(IDEMPOTENCY_KEY)
        .cloned()
        .filter(|_| applies)
    else {
        return next.run(request).await;
    };
    let key = match key.to_str() {
        Ok(k) if (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()) => {
            k.to_string()
        }
        _ => {
            return Problem::field(
                ProblemKind::InvalidField,
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )
            .into_response()
        }
    };
    let largest = crate::service::ingest::batch::largest_answer(
        &state.settings.batch,
        &state.settings.public_url,
    );
    if BULK_ROUTES.contains(&request.uri().path()) && largest > MAX_KEPT_RESPONSE {
        return Problem::field(
            ProblemKind::InvalidField,
            "Idempotency-Key",
            format!(
                "cannot be used here with this broker's record cap (--max-batch-records {}): \
                 an answer could pass the {} MiB kept for replay. Send smaller batches without \
                 the key, or ask the operator for a lower cap",
                state.settings.batch.max_records,
                MAX_KEPT_RESPONSE / (1024 * 1024)
            ),
        )
        .into_response();
    }
    let (parts, body) = request.into_parts();
    let Ok(party) = authenticate(&parts, &state).await else {
        // The handler answers 401; nothing to remember.
        return next.run(Request::from_parts(parts, body)).await;
    };
    match run(&state, &party.id, &key, parts, body, next).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

async fn run(
    state: &AppState,
    party_id: &str,
    key: &str,
    parts: axum::http::request::Parts,
    body: Body,
    next: Next,
) -> Result<Response, Problem> {
    let claim = idempotency::claim(state, party_id, key).await?;
    let fingerprint = Arc::new(Mutex::new(Fingerprint::new(&parts)));
    match claim {
        Claimed::InFlight => Err(Problem::of(ProblemKind::IdempotencyKeyInFlight)),
        Claimed::Done(kept) => {
            let mut stream = Hashing::new(body, fingerprint.clone());
            while let Some(chunk) = stream.next().await {
                chunk.map_err(|_| {
                    Problem::new(ProblemKind::BadRequest, "The body could not be read.")
                })?;
            }
            let hash = fingerprint.lock().expect("fingerprint lock").finish();
            if hash.as_deref() != Some(kept.request_sha256.as_slice()) {
                return Err(Problem::of(ProblemKind::IdempotencyKeyReused));
            }
            Ok(replay(kept))
        }
        Claimed::New => {
            let request = Request::from_parts(
                parts,
                Body::from_stream(Hashing::new(body, fingerprint.clone())),
            );
            let response = next.run(request).await;
            let hash = fingerprint.lock().expect("fingerprint lock").finish();
            let status = response.status();
            let keep = hash.filter(|_| !status.is_server_error());
            let Some(hash) = keep else {
                idempotency::release(state, party_id, key).await;
                return Ok(response);
            };
            let (parts, body) = response.into_parts();
            // The answer is bounded by the record cap (see above); read it whole, so
            // that it reaches the client even if it cannot be kept.
            let bytes = match axum::body::to_bytes(body, usize::MAX).await {
                Ok(bytes) => bytes,
                Err(_) => {
                    idempotency::release(state, party_id, key).await;
                    return Err(Problem::internal("the answer could not be read"));
                }
            };
            if bytes.len() > MAX_KEPT_RESPONSE {
                tracing::warn!(
                    bytes = bytes.len(),
                    "an answer passed what is kept for replay; sent without keeping it"
                );
                idempotency::release(state, party_id, key).await;
                return Ok(Response::from_parts(parts, Body::from(bytes)));
            }
            let content_type = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream");
            let answer = KeptAnswer {
                request_sha256: hash,
                status: status.as_u16(),
                content_type: content_type.to_string(),
                body: Vec::from(bytes),
            };
            idempotency::keep(state, party_id, key, &answer).await?;
            Ok(Response::from_parts(parts, Body::from(answer.body)))
        }
    }
}

/// An earlier answer, again, marked as replayed.
fn replay(kept: KeptAnswer) -> Response {
    let status = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    let mut response = (status, kept.body).into_response();
    if let Ok(v) = HeaderValue::from_str(&kept.content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// The running SHA-256 of a request, and whether its body was read to the end.
struct Fingerprint {
    context: digest::Context,
    complete: bool,
}

impl Fingerprint {
    fn new(parts: &axum::http::request::Parts) -> Self {
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(parts.method.as_str().as_bytes());
        context.update(b" ");
        context.update(parts.uri.path().as_bytes());
        context.update(b"?");
        context.update(parts.uri.query().unwrap_or("").as_bytes());
        context.update(b"\n");
        Self {
            context,
            complete: false,
        }
    }

    /// The hash, if the body was read to its end.
    fn finish(&self) -> Option<Vec<u8>> {
        self.complete
            .then(|| self.context.clone().finish().as_ref().to_vec())
    }
}

/// A body stream that feeds the fingerprint as it is read.
struct Hashing {
    inner: axum::body::BodyDataStream,
    fingerprint: Arc<Mutex<Fingerprint>>,
}

impl Hashing {
    fn new(body: Body, fingerprint: Arc<Mutex<Fingerprint>>) -> Self {
        Self {
            inner: body.into_data_stream(),
            fingerprint,
        }
    }
}

impl Stream for Hashing {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.poll_next_unpin(cx);
        if let Poll::Ready(item) = &polled {
            let mut fingerprint = self.fingerprint.lock().expect("fingerprint lock");
            match item {
                Some(Ok(bytes)) => fingerprint.context.update(bytes),
                None => fingerprint.complete = true,
                Some(Err(_)) => {}
            }
        }
        polled
    }
}
