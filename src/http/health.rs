//! Liveness, readiness, metrics, and the answer for unknown routes.

use crate::service::AppState;
use crate::wire::extract::OfficerCaller;
use crate::wire::problem::{Problem, ProblemKind};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;
use std::time::Duration;

/// `GET /healthz`: the process is up and answering.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database answers and the audit log can be written, within two
/// seconds. After an audit write failed, each check probes the log until it works.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, Problem> {
    if let Some(since) = state.audit_health.failing_since() {
        let probe = state.audit_health.probe(&state.store, state.clock.now());
        match tokio::time::timeout(Duration::from_secs(2), probe).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "the audit log still cannot be written");
                return Err(Problem::new(
                    ProblemKind::AuditUnavailable,
                    format!(
                        "The audit log cannot be written (since {}): actions are refused.",
                        crate::domain::time::format_time(since)
                    ),
                )
                .with_retry_after(5));
            }
            Err(_) => {
                return Err(Problem::new(
                    ProblemKind::AuditUnavailable,
                    "The audit log did not answer in time: actions are refused.",
                ))
            }
        }
    }
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => Ok(Json(json!({"status": "ready"}))),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "database unreachable");
            Err(Problem::new(
                ProblemKind::Unavailable,
                "The database does not answer.",
            ))
        }
        Err(_) => Err(Problem::new(
            ProblemKind::Unavailable,
            "The database did not answer in time.",
        )),
    }
}

/// `GET /metrics`: Prometheus text, for a compliance officer's key only (a scraper
/// sends it as a bearer token): the counts show business volumes (consents, grants,
/// releases, refusals by reason) that are nobody else's to read.
pub async fn metrics(
    State(state): State<AppState>,
    OfficerCaller(_officer): OfficerCaller,
) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state
            .metrics
            .render(&crate::service::memory::process_memory(&state)),
    )
}

/// Any path no route matches.
pub async fn no_such_route() -> Problem {
    Problem::of(ProblemKind::NotFound)
}
