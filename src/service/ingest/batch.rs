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
use super::ssr::MAX_PASSENGERS;
use super::turns::Turn;

use super::{BatchResults, Checked, RecordOutcome, Submission, Uploader, Verifieds};
use crate::domain::party::Party;
use crate::service::ingest;
use crate::service::settings::BatchLimits;
use crate::service::{AppState, Error, ErrorKind};
use axum::body::Body;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Records stored in one transaction of a batch that is not atomic.
const CHUNK: usize = 256;
/// The longest text a record's report repeats (a reason, a field path).
const MAX_REPORT_TEXT: usize = 300;

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

/// Query parameters of the bulk routes.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BatchQuery {
    /// All or nothing: if any record is rejected, none is stored.
    #[serde(default)]
    pub atomic: bool,
}

/// One record's outcome in the response.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct RecordReport {
    /// Position in the batch (0-based; for CSV, the data row, header excluded).
    pub index: usize,
    /// stored, duplicate, rejected, or not_stored (a batch of which nothing was stored).
    pub outcome: String,
    /// The agency's record id, when the record got that far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    /// The broker's record id (stored or duplicate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_id: Option<String>,
    /// Version (stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// The traveller's withdrawal code (stored consents only; shown once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawal_code: Option<String>,
    /// The traveller's page, where the code opens their record (stored consents only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traveller_page: Option<String>,
    /// The audit entry (stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_index: Option<i64>,
    /// The problem type (rejected).
    #[serde(skip_serializing_if = "Option::is_none", rename = "type")]
    pub problem_type: Option<String>,
    /// The field at fault (rejected), as a path and as a JSON pointer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// JSON pointer of the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// Why (rejected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For an SSR passenger without a signature: the statement to sign.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<Value>,
}

impl RecordReport {
    /// The most a report takes as JSON, beside an SSR statement to sign (whose
    /// import holds at most [`MAX_PASSENGERS`]): each of its four texts from the input
    /// (record id, field, pointer, reason) is bounded and holds no control character,
    /// so JSON at most doubles it; the rest is the broker's own.
    pub fn largest(public_url: &str) -> usize {
        4 * 2 * MAX_REPORT_TEXT + 512 + public_url.len()
    }

    fn new(index: usize, outcome: &str) -> Self {
        Self {
            index,
            outcome: outcome.into(),
            record_id: None,
            consent_id: None,
            version: None,
            withdrawal_code: None,
            traveller_page: None,
            audit_index: None,
            problem_type: None,
            field: None,
            pointer: None,
            reason: None,
            statement: None,
        }
    }

    fn rejected(index: usize, problem: &Error) -> Self {
        let error = problem.errors().first();
        let reason = error.map_or_else(|| problem.detail(), |e| e.reason.as_str());
        Self {
            problem_type: Some(problem.kind().type_uri()),
            field: error.map(|e| bounded(&e.field)),
            pointer: error.map(|e| bounded(&e.pointer)),
            reason: Some(bounded(reason)),
            ..Self::new(index, "rejected")
        }
    }

    fn not_stored(index: usize, record_id: Option<&str>) -> Self {
        Self {
            record_id: record_id.map(bounded),
            ..Self::new(index, "not_stored")
        }
    }
}

/// A text cut to [`MAX_REPORT_TEXT`] bytes (at a character boundary), control
/// characters shown as `?`, so that a report's size never follows its input.
fn bounded(text: &str) -> String {
    let cut = text.len() > MAX_REPORT_TEXT;
    let mut end = if cut { MAX_REPORT_TEXT - 3 } else { text.len() };
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out: String = text[..end]
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if cut {
        out.push_str("...");
    }
    out
}

/// Counts of a batch's outcomes.
#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Stored.
    pub stored: usize,
    /// Already stored.
    pub duplicate: usize,
    /// Rejected.
    pub rejected: usize,
}

/// The answer to a bulk upload.
#[derive(Serialize, Deserialize, Debug)]
pub struct BatchReport {
    /// Whether the batch was all-or-nothing.
    pub atomic: bool,
    /// Outcome counts.
    pub counts: Counts,
    /// One report per record, in order.
    pub results: Vec<RecordReport>,
}

/// What a reader does after handing a record over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read on.
    More,
    /// Stop reading: too many records were rejected.
    Stop,
}

/// A batch being read: its records, checked as they arrive, waiting for the end of
/// the body to be verified and stored.
pub struct Run<'a> {
    state: &'a AppState,
    uploader: Uploader,
    atomic: bool,
    limits: BatchLimits,
    /// Every record read, in order: checked, or why it was refused.
    records: Vec<Result<Checked, Error>>,
    /// How many of them failed their checks.
    rejected: usize,
    /// For an SSR import: the statements of passengers sent without a signature.
    pub(super) to_sign: HashMap<usize, Value>,
}

impl<'a> Run<'a> {
    pub(super) fn new(state: &'a AppState, uploader: Uploader, atomic: bool) -> Self {
        Self {
            state,
            uploader,
            atomic,
            limits: state.settings.batch,
            records: Vec::new(),
            rejected: 0,
            to_sign: HashMap::new(),
        }
    }

    /// Takes the next record: checks it at once, keeps what storing it needs. The
    /// record after the last one allowed is refused with the whole request.
    pub(crate) fn push(&mut self, item: Result<Submission, Error>) -> Result<Flow, Error> {
        let max = self.limits.max_records;
        if self.records.len() >= max {
            return Err(Error::new(
                ErrorKind::BatchTooLarge,
                format!(
                    "The batch holds more than {max} records, the most one request may hold; \
                     nothing was stored. Send it in requests of at most {max} records."
                ),
            )
            .with_extension("max_records", json!(max)));
        }
        let checked = item.and_then(|s| ingest::check(&self.uploader, s));
        if checked.is_err() {
            self.rejected += 1;
        }
        self.records.push(checked);
        Ok(if self.rejected > self.limits.max_rejected {
            Flow::Stop
        } else {
            Flow::More
        })
    }

    /// Ends the batch once the body is read (or could not be): verifies the
    /// signatures and stores the records, or, when nothing may be stored (an atomic
    /// batch with a rejected record, a batch stopped for too many rejections, an
    /// atomic batch whose body broke off), audits the refused signatures and answers
    /// `422` with every record's outcome.
    pub(super) async fn finish(
        self,
        unread: Option<Error>,
        turn: Turn,
    ) -> Result<BatchReport, Error> {
        let stopped = self.rejected > self.limits.max_rejected;
        if stopped || (self.atomic && unread.is_some()) {
            let reports = self.reports_unverified();
            let detail = match &unread {
                Some(p) if !stopped => format!("Nothing was stored: {}", p.detail()),
                _ => format!(
                    "Nothing was stored: reading stopped after {} rejected records; fix them \
                     and send the batch again.",
                    self.limits.max_rejected
                ),
            };
            return Err(not_stored(detail, reports));
        }
        let Run {
            state,
            uploader,
            atomic,
            records,
            to_sign,
            ..
        } = self;
        let verified = ingest::verify_checked(state, &uploader, records).await?;
        if atomic && verified.rejected() > 0 {
            let refusals = verified.refusals(&uploader);
            if !refusals.is_empty() {
                let tx = state.store.begin().await?;
                state.commit_with_audits(tx, refusals).await?;
            }
            let reports = verified
                .verdicts()
                .enumerate()
                .map(|(i, (record_id, problem))| match problem {
                    Some(problem) => RecordReport::rejected(i, problem),
                    None => RecordReport::not_stored(i, record_id),
                })
                .map(|r| with_statement(r, &to_sign))
                .collect();
            let rejected = verified.rejected();
            return Err(not_stored(
                format!("Nothing was stored: {rejected} record(s) were rejected; see `results`."),
                reports,
            ));
        }
        let task_state = state.clone();
        let stored = tokio::spawn(async move {
            let _turn = turn;
            store(&task_state, &uploader, atomic, verified, &to_sign).await
        });
        let report = stored
            .await
            .map_err(|e| Error::internal(format!("the batch's storing task failed: {e}")))??;
        if let Some(problem) = unread {
            // The records before the fault are stored and reported; the rest of the
            // body was not read.
            return Err(problem
                .with_extension("counts", json!(report.counts))
                .with_extension("results", json!(report.results)));
        }
        Ok(report)
    }

    /// Every record's outcome when nothing is stored and no signature was verified.
    fn reports_unverified(&self) -> Vec<RecordReport> {
        self.records
            .iter()
            .enumerate()
            .map(|(i, record)| match record {
                Ok(checked) => RecordReport::not_stored(i, Some(checked.record_id())),
                Err(problem) => RecordReport::rejected(i, problem),
            })
            .map(|r| with_statement(r, &self.to_sign))
            .collect()
    }
}

/// `422 batch-rejected`, with every record's outcome.
fn not_stored(detail: String, results: Vec<RecordReport>) -> Error {
    let counts = Counts {
        rejected: results.iter().filter(|r| r.outcome == "rejected").count(),
        ..Counts::default()
    };
    Error::new(ErrorKind::BatchRejected, detail)
        .with_extension("counts", json!(counts))
        .with_extension("results", json!(results))
}

/// Stores a verified batch: a chunk per transaction, or all in one when atomic.
async fn store(
    state: &AppState,
    uploader: &Uploader,
    atomic: bool,
    verified: Verifieds,
    to_sign: &HashMap<usize, Value>,
) -> Result<BatchReport, Error> {
    let mut report = BatchReport {
        atomic,
        counts: Counts::default(),
        results: Vec::new(),
    };
    let mut atomic_tx = None;
    let mut labels = Vec::new();
    for chunk in verified.into_chunks(CHUNK) {
        let mut tx = match atomic_tx.take() {
            Some(tx) => tx,
            None => state.store.begin().await?,
        };
        let BatchResults {
            results,
            refusals,
            appended,
        } = ingest::process(state, uploader, &mut tx, chunk).await?;
        labels.extend(appended);
        labels.extend(refusals.iter().map(crate::audit::NewEntry::labels));
        state.append_audits(&mut tx, refusals).await?;
        for result in results {
            let index = report.results.len();
            let line = match result.outcome {
                RecordOutcome::Stored(s) => {
                    report.counts.stored += 1;
                    RecordReport {
                        consent_id: Some(s.consent_id),
                        version: Some(s.version),
                        traveller_page: s.withdrawal_code.as_ref().map(|_| {
                            crate::service::settings::page_link(&state.settings.public_url)
                        }),
                        withdrawal_code: s.withdrawal_code,
                        audit_index: Some(s.audit_index),
                        ..RecordReport::new(index, "stored")
                    }
                }
                RecordOutcome::Duplicate { consent_id } => {
                    report.counts.duplicate += 1;
                    RecordReport {
                        consent_id: Some(consent_id),
                        ..RecordReport::new(index, "duplicate")
                    }
                }
                RecordOutcome::Rejected(problem) => {
                    report.counts.rejected += 1;
                    with_statement(RecordReport::rejected(index, &problem), to_sign)
                }
            };
            report.results.push(RecordReport {
                record_id: result.record_id.as_deref().map(bounded),
                ..line
            });
        }
        if atomic {
            atomic_tx = Some(tx);
        } else {
            state.commit_audited(tx).await?;
        }
    }
    if let Some(tx) = atomic_tx {
        state.commit_audited(tx).await?;
    }
    for (action, outcome, reason) in labels {
        state.metrics.observe_decision(action, outcome, reason);
    }
    Ok(report)
}

/// For an SSR passenger sent without a signature, the statement to sign, on its
/// refusal for want of one.
fn with_statement(mut report: RecordReport, to_sign: &HashMap<usize, Value>) -> RecordReport {
    if let Some(statement) = to_sign.get(&report.index) {
        if report.outcome == "rejected" && report.field.as_deref() == Some("signature") {
            report.field = Some(format!("passengers[{}].signature", report.index));
            report.pointer = Some(format!("/passengers/{}/signature", report.index));
            report.statement = Some(statement.clone());
        }
    }
    report
}

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
            Format::Csv => read::csv(&mut reader, &mut run, &iata).await,
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
