//! The batch run of bulk uploads: a JSON array, NDJSON or CSV, streamed
//! (`POST /v1/consents/batch`, the agency's upload page), and a PNR's contact elements
//! as a GDS prints them (`POST /v1/consents/ssr`, `ssr.rs`).
//!
//! Memory is bounded by the configured limits, never by the input:
//!
//! - a request holds at most `max_records` records (`--max-batch-records`); the one
//!   after the last is answered `413 batch-too-large` before any is verified or
//!   stored;
//! - reading stops after `max_rejected` records fail their checks
//!   (`--max-rejected-records`): nothing is stored, and the answer lists them;
//! - each record is parsed and checked as it is read, and only its typed statement,
//!   canonical form and signature are kept, never the JSON it came as;
//! - at most `parallel` bulk requests are handled at once (`--parallel-uploads`), at
//!   most half of them by one agency; others wait a little, then get `503`.
//!
//! A request is read to its end, within the request timeout, before the writer is
//! taken, so a client that sends slowly holds nothing that others need. Its
//! signatures are then verified (on every core) and its records stored: without
//! `atomic=true` a chunk of records per transaction, each reported as stored, duplicate
//! or rejected (with its field and reason); with it, in one transaction that is not
//! even begun if any record was rejected. Storing runs in a task of its own, past the
//! request timeout and whether or not the client still waits: records once stored are
//! always answered, never cut off by a `408` that would lose their withdrawal codes.

use super::read;
use super::report::{BatchReport, RecordReport};
use super::run::Run;
use super::ssr::MAX_PASSENGERS;
use super::turns::Turn;
use super::Uploader;
use crate::domain::party::Party;
use crate::service::settings::BatchLimits;
use crate::service::{AppState, Error, ErrorKind};
use axum::body::Body;
use std::time::Duration;

/// The largest answer a bulk request can get with these limits (for a broker whose
/// public URL is `public_url`): what an `Idempotency-Key` must be able to keep for
/// replay.
pub fn largest_answer(limits: &BatchLimits, public_url: &str) -> usize {
    let reports = limits.max_records.max(MAX_PASSENGERS) * RecordReport::largest(public_url);
    reports + MAX_PASSENGERS * MAX_STATEMENT_JSON + 4096
}

/// The most an SSR passenger's statement to sign takes as JSON: its fields are all
/// bounded by their types (at most 32 segments, short words, 64-character names).
const MAX_STATEMENT_JSON: usize = 16 * 1024;

/// The formats of `POST /v1/consents/batch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JsonArray,
    Ndjson,
    Csv,
}

impl Format {
    /// The format a body's media type names.
    pub fn of_media_type(media_type: &str) -> Result<Format, Error> {
        format_parse(media_type)
    }
}

fn format_parse(media_type: &str) -> Result<Format, Error> {
    match media_type {
        "application/json" => Ok(Format::JsonArray),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Ok(Format::Ndjson),
        "text/csv" => Ok(Format::Csv),
        _ => Err(Error::new(
            ErrorKind::UnsupportedMediaType,
            "Send a JSON array (application/json), NDJSON (application/x-ndjson) or CSV (text/csv).",
        )),
    }
}

/// A bulk upload that has its turn (see `UploadTurns`): what the agency's upload page
/// runs too. The body must be in within the request timeout.
pub async fn upload_in_turn(
    state: &AppState,
    turn: Turn,
    agency: &Party,
    request_id: &str,
    atomic: bool,
    format: Format,
    body: Body,
) -> Result<BatchReport, Error> {
    let uploader = Uploader::new(state, agency, request_id).await?;
    let iata = uploader.iata.as_str().to_string();
    let mut run = Run::new(state, uploader, atomic);
    let mut reader = read::BodyReader::new(body);
    let reading = async {
        match format {
            Format::JsonArray => read::json_array(&mut reader, &mut run).await,
            Format::Ndjson => read::ndjson(&mut reader, &mut run).await,
            Format::Csv => super::csv::csv(&mut reader, &mut run, &iata).await,
        }
    };
    let timeout = state.settings.request_timeout;
    let read = tokio::time::timeout(timeout, reading)
        .await
        .map_err(|_| too_slow(timeout))?;
    // Reading may stop early (a record past the cap, too many rejected): what is left
    // is dropped unread.
    let _ = tokio::time::timeout(timeout, reader.drain()).await;
    run.finish(read?, turn).await
}

/// The body did not come in within the request timeout: nothing was stored.
pub fn too_slow(timeout: Duration) -> Error {
    Error::new(
        ErrorKind::RequestTimeout,
        format!(
            "The body did not come in within {} s; nothing was stored.",
            timeout.as_secs()
        ),
    )
}
