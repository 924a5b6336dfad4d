//! `GET /v1/audit/export`: a period of the log, streamed as NDJSON or CSV, with the
//! signed checkpoint that covers it in the headers (`service::export`).

use crate::service::export::{self, ExportQuery};
use crate::service::AppState;
use crate::wire::extract::{ApiQuery, OfficerCaller};
use crate::wire::problem::Problem;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Streams the period's entries.
pub async fn export(
    State(state): State<AppState>,
    OfficerCaller(_officer): OfficerCaller,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, Problem> {
    let export = export::export(&state, query).await?;
    let stream = futures_util::stream::unfold(export.pages, |mut pages| async move {
        let chunk = pages.next().await.transpose()?;
        Some((chunk.map(Bytes::from), pages))
    });
    let headers = [
        (header::CONTENT_TYPE, export.content_type.to_string()),
        (
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", export.filename),
        ),
        (
            header::HeaderName::from_static("passerelle-checkpoint"),
            STANDARD.encode(&export.checkpoint_note),
        ),
        (
            header::HeaderName::from_static("passerelle-checkpoint-size"),
            export.checkpoint_size.to_string(),
        ),
    ];
    Ok((headers, Body::from_stream(stream)).into_response())
}
