//! Bulk uploads: `POST /v1/consents/batch` (a JSON array, NDJSON or CSV, streamed) and
//! `POST /v1/consents/ssr` (a PNR's contact elements as a GDS prints them).
//!
//! The body is read as it arrives and handled a chunk of records at a time, so memory
//! stays flat however many records a request holds: only the per-record outcomes are
//! kept. Each record is checked on its own and reported as stored, duplicate or
//! rejected (with its field and reason). Without `atomic=true`, each chunk commits as
//! it is done; with it, the whole batch is one transaction that commits only if no
//! record is rejected.

use super::extract::{media_type, parse_json, AgencyCaller, ApiQuery, RequestId};
use super::ingest::{self, BatchResults, RecordOutcome, Submission, Uploader};
use super::problem::{Problem, ProblemKind};
use super::AppState;
use crate::audit::NewEntry;
use crate::domain::consent::SCHEMA_VERSION;
use crate::domain::ssr::{self, ContactValue, Gds};
use crate::store::Tx;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::Json;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Records handled (checked, verified, stored) together.
const CHUNK: usize = 256;
/// The longest NDJSON line or CSV row accepted.
const MAX_LINE: usize = 64 * 1024;

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
    /// stored, duplicate, rejected, or not_stored (an atomic batch that failed).
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
    /// The traveller's page, opened by the code (stored consents only; shown once).
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

    fn rejected(index: usize, problem: &Problem) -> Self {
        let error = problem.errors().first();
        Self {
            problem_type: Some(problem.kind().type_uri()),
            field: error.map(|e| e.field.clone()),
            pointer: error.map(|e| e.pointer.clone()),
            reason: Some(error.map_or_else(|| problem.detail().to_string(), |e| e.reason.clone())),
            ..Self::new(index, "rejected")
        }
    }
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

/// A batch being handled: its transaction (one for an atomic batch, one per chunk
/// otherwise) and what was reported so far.
struct Run<'a> {
    state: &'a AppState,
    uploader: Uploader<'a>,
    atomic: bool,
    tx: Option<Tx>,
    reports: Vec<RecordReport>,
    counts: Counts,
    refusals: Vec<crate::audit::NewEntry>,
    appended: Vec<(&'static str, &'static str, &'static str)>,
    pending: Vec<(usize, Result<Submission, Problem>)>,
}

impl<'a> Run<'a> {
    fn new(state: &'a AppState, uploader: Uploader<'a>, atomic: bool) -> Self {
        Self {
            state,
            uploader,
            atomic,
            tx: None,
            reports: Vec::new(),
            counts: Counts::default(),
            refusals: Vec::new(),
            appended: Vec::new(),
            pending: Vec::with_capacity(CHUNK),
        }
    }

    async fn push(&mut self, item: Result<Submission, Problem>) -> Result<(), Problem> {
        let index = self.reports.len() + self.pending.len();
        self.pending.push((index, item));
        if self.pending.len() >= CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    /// Handles the pending records; commits them unless the batch is atomic.
    async fn flush(&mut self) -> Result<(), Problem> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let mut indexes = Vec::new();
        let mut submissions = Vec::new();
        let mut early: Vec<(usize, Problem)> = Vec::new();
        for (index, item) in pending {
            match item {
                Ok(s) => {
                    indexes.push(index);
                    submissions.push(s);
                }
                Err(problem) => early.push((index, problem)),
            }
        }
        let verified = ingest::verify(self.state, &self.uploader, submissions).await?;
        if self.tx.is_none() {
            self.tx = Some(self.state.store.begin().await?);
        }
        let tx = self.tx.as_mut().expect("just begun");
        let BatchResults {
            results,
            refusals,
            appended,
        } = ingest::process(self.state, &self.uploader, tx, verified).await?;
        self.refusals.extend(refusals);
        self.appended.extend(appended);
        let mut reports: Vec<RecordReport> = early
            .iter()
            .map(|(i, p)| RecordReport::rejected(*i, p))
            .collect();
        for (index, result) in indexes.into_iter().zip(results) {
            let report = match result.outcome {
                RecordOutcome::Stored(s) => RecordReport {
                    consent_id: Some(s.consent_id),
                    version: Some(s.version),
                    traveller_page: s.withdrawal_code.as_deref().map(|code| {
                        super::traveller::page_link(&self.state.settings.public_url, code)
                    }),
                    withdrawal_code: s.withdrawal_code,
                    audit_index: Some(s.audit_index),
                    ..RecordReport::new(index, "stored")
                },
                RecordOutcome::Duplicate { consent_id } => RecordReport {
                    consent_id: Some(consent_id),
                    ..RecordReport::new(index, "duplicate")
                },
                RecordOutcome::Rejected(problem) => RecordReport::rejected(index, &problem),
            };
            reports.push(RecordReport {
                record_id: result.record_id,
                ..report
            });
        }
        reports.sort_by_key(|r| r.index);
        for r in &reports {
            match r.outcome.as_str() {
                "stored" => self.counts.stored += 1,
                "duplicate" => self.counts.duplicate += 1,
                _ => self.counts.rejected += 1,
            }
        }
        self.reports.extend(reports);
        if !self.atomic {
            self.commit().await?;
        }
        Ok(())
    }

    /// Appends the refusals' audit entries and commits.
    async fn commit(&mut self) -> Result<(), Problem> {
        let Some(mut tx) = self.tx.take() else {
            return Ok(());
        };
        let refusals = std::mem::take(&mut self.refusals);
        self.appended.extend(refusals.iter().map(NewEntry::labels));
        self.state.append_audits(&mut tx, refusals).await?;
        self.state.commit_audited(tx).await?;
        for (action, outcome, reason) in std::mem::take(&mut self.appended) {
            self.state.metrics.observe_decision(action, outcome, reason);
        }
        Ok(())
    }

    /// Ends the batch: commits what is left, or, for an atomic batch with a rejected
    /// record, rolls everything back (auditing the signature refusals anew) and
    /// answers 422 with every record's outcome.
    async fn finish(
        mut self,
        unread: Option<Problem>,
    ) -> Result<(StatusCode, Json<BatchReport>), Problem> {
        self.flush().await?;
        if self.atomic && (self.counts.rejected > 0 || unread.is_some()) {
            if let Some(tx) = self.tx.take() {
                tx.rollback().await.ok();
            }
            self.appended.clear();
            if !self.refusals.is_empty() {
                let tx = self.state.store.begin().await?;
                self.state
                    .commit_with_audits(tx, std::mem::take(&mut self.refusals))
                    .await?;
            }
            for r in &mut self.reports {
                if r.outcome == "stored" || r.outcome == "duplicate" {
                    *r = RecordReport {
                        record_id: r.record_id.take(),
                        ..RecordReport::new(r.index, "not_stored")
                    };
                }
            }
            let counts = Counts {
                stored: 0,
                duplicate: 0,
                rejected: self.counts.rejected,
            };
            let detail = match &unread {
                Some(p) => format!("Nothing was stored: {}", p.detail()),
                None => format!(
                    "Nothing was stored: {} record(s) were rejected; see `results`.",
                    counts.rejected
                ),
            };
            return Err(Problem::new(ProblemKind::BatchRejected, detail)
                .with_extension("counts", json!(counts))
                .with_extension("results", json!(self.reports)));
        }
        self.commit().await?;
        if let Some(problem) = unread {
            // The records before the fault are stored and reported; the rest of the
            // body was not read.
            return Err(problem
                .with_extension("counts", json!(self.counts))
                .with_extension("results", json!(self.reports)));
        }
        Ok((
            StatusCode::OK,
            Json(BatchReport {
                atomic: self.atomic,
                counts: self.counts,
                results: self.reports,
            }),
        ))
    }
}

/// The formats of `POST /v1/consents/batch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    JsonArray,
    Ndjson,
    Csv,
}

fn format_of(request: &Request) -> Result<Format, Problem> {
    match media_type(request.headers()).as_str() {
        "application/json" => Ok(Format::JsonArray),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Ok(Format::Ndjson),
        "text/csv" => Ok(Format::Csv),
        _ => Err(Problem::new(
            ProblemKind::UnsupportedMediaType,
            "Send a JSON array (application/json), NDJSON (application/x-ndjson) or CSV (text/csv).",
        )),
    }
}

/// Takes many signed records in one request, streamed.
pub async fn upload(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AgencyCaller(agency): AgencyCaller,
    ApiQuery(query): ApiQuery<BatchQuery>,
    request: Request,
) -> Result<(StatusCode, Json<BatchReport>), Problem> {
    let format = format_of(&request)?;
    let uploader = Uploader::new(&state, &agency, &request_id).await?;
    let iata = uploader.iata.as_str().to_string();
    let mut run = Run::new(&state, uploader, query.atomic);
    let mut reader = BodyReader::new(request.into_body());
    let unread = match format {
        Format::JsonArray => read_json_array(&mut reader, &mut run).await?,
        Format::Ndjson => read_ndjson(&mut reader, &mut run).await?,
        Format::Csv => read_csv(&mut reader, &mut run, &iata).await?,
    };
    run.finish(unread).await
}

/// The request body as a stream of bytes, read a byte at a time from buffered chunks.
struct BodyReader {
    stream: axum::body::BodyDataStream,
    buffer: axum::body::Bytes,
    position: usize,
}

impl BodyReader {
    fn new(body: Body) -> Self {
        Self {
            stream: body.into_data_stream(),
            buffer: axum::body::Bytes::new(),
            position: 0,
        }
    }

    /// The next byte, `None` at the end of the body.
    async fn next(&mut self) -> Result<Option<u8>, Problem> {
        while self.position >= self.buffer.len() {
            match self.stream.next().await {
                None => return Ok(None),
                Some(Ok(bytes)) => {
                    self.buffer = bytes;
                    self.position = 0;
                }
                Some(Err(error)) => return Err(body_error(error)),
            }
        }
        let byte = self.buffer[self.position];
        self.position += 1;
        Ok(Some(byte))
    }

    /// The next line without its end (`\n` or `\r\n`), `None` at the end of the body.
    async fn line(&mut self) -> Result<Option<Vec<u8>>, Problem> {
        let mut line = Vec::new();
        loop {
            match self.next().await? {
                None if line.is_empty() => return Ok(None),
                None => break,
                Some(b'\n') => break,
                Some(byte) => {
                    if line.len() >= MAX_LINE {
                        return Err(Problem::new(
                            ProblemKind::BatchUnreadable,
                            format!("A line is longer than {MAX_LINE} bytes."),
                        ));
                    }
                    line.push(byte);
                }
            }
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some(line))
    }
}

fn body_error(error: axum::Error) -> Problem {
    let too_large = std::error::Error::source(&error)
        .is_some_and(|e| e.is::<http_body_util::LengthLimitError>())
        || error.to_string().contains("length limit");
    if too_large {
        Problem::of(ProblemKind::BodyTooLarge)
    } else {
        Problem::new(ProblemKind::BadRequest, "The body could not be read.")
    }
}

/// A record of a JSON array or NDJSON line: `{"statement": …, "signature": …}`.
fn submission_of(bytes: &[u8], index: usize) -> Result<Submission, Problem> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        statement: Value,
        signature: String,
    }
    let prefix = |p: Problem| {
        let field = match p.errors().first() {
            Some(e) if e.field != "body" => format!("[{index}].{}", e.field),
            _ => format!("[{index}]"),
        };
        let reason = p
            .errors()
            .first()
            .map_or_else(|| p.detail().to_string(), |e| e.reason.clone());
        Problem::field(p.kind(), field, reason)
    };
    let item: Item = parse_json(bytes).map_err(prefix)?;
    Ok(Submission {
        statement: item.statement,
        signature: Some(item.signature),
    })
}

/// Splits a JSON array into its elements as the bytes arrive: it tracks nesting and
/// strings, and hands each complete element to the run.
async fn read_json_array(
    reader: &mut BodyReader,
    run: &mut Run<'_>,
) -> Result<Option<Problem>, Problem> {
    let unreadable = |what: &str| {
        Problem::new(
            ProblemKind::BatchUnreadable,
            format!("The body is not a JSON array of records: {what}."),
        )
    };
    // Opening bracket.
    loop {
        match reader.next().await? {
            Some(b) if b.is_ascii_whitespace() => continue,
            Some(b'[') => break,
            _ => return Ok(Some(unreadable("it must start with `[`"))),
        }
    }
    let mut element = Vec::new();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut index = 0;
    loop {
        let Some(byte) = reader.next().await? else {
            return Ok(Some(unreadable("it ends before its closing `]`")));
        };
        if in_string {
            element.push(byte);
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => {
                in_string = true;
                element.push(byte);
            }
            b'{' | b'[' => {
                depth += 1;
                element.push(byte);
            }
            b'}' | b']' if depth > 0 => {
                depth -= 1;
                element.push(byte);
            }
            b',' | b']' if depth == 0 => {
                let text = std::mem::take(&mut element);
                let blank = text.iter().all(u8::is_ascii_whitespace);
                if blank && byte == b']' && index == 0 {
                    break;
                }
                if blank {
                    return Ok(Some(unreadable(&format!("element {index} is empty"))));
                }
                if text.len() > MAX_LINE {
                    run.push(Err(Problem::field(
                        ProblemKind::InvalidField,
                        format!("[{index}]"),
                        format!("is larger than {MAX_LINE} bytes"),
                    )))
                    .await?;
                } else {
                    run.push(submission_of(&text, index)).await?;
                }
                index += 1;
                if byte == b']' {
                    break;
                }
            }
            _ => {
                if element.len() > MAX_LINE {
                    // Keep reading to the element's end without holding it.
                    continue;
                }
                element.push(byte);
            }
        }
    }
    // Only white space may follow.
    while let Some(byte) = reader.next().await? {
        if !byte.is_ascii_whitespace() {
            return Ok(Some(unreadable("something follows its closing `]`")));
        }
    }
    Ok(None)
}

/// One record per line; blank lines are skipped.
async fn read_ndjson(
    reader: &mut BodyReader,
    run: &mut Run<'_>,
) -> Result<Option<Problem>, Problem> {
    let mut index = 0;
    while let Some(line) = reader.line().await? {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        run.push(submission_of(&line, index)).await?;
        index += 1;
    }
    Ok(None)
}

/// The CSV header, in order. Lists within a cell are separated by spaces.
pub const CSV_HEADER: [&str; 20] = [
    "record_id",
    "record_locator",
    "segments",
    "surname",
    "given_name",
    "mobile",
    "email",
    "language",
    "decision",
    "purposes",
    "data_categories",
    "recipients",
    "notice_version",
    "notice_language",
    "notice_sha256",
    "collection_method",
    "collected_at",
    "valid_until",
    "jurisdiction",
    "signature",
];

/// Reads CSV: a header row naming the columns (any order, all of `CSV_HEADER`), then
/// one record per row. A row becomes the statement it describes; its `signature`
/// column signs that statement's canonical form.
async fn read_csv(
    reader: &mut BodyReader,
    run: &mut Run<'_>,
    iata: &str,
) -> Result<Option<Problem>, Problem> {
    let unreadable = |what: String| {
        Problem::new(
            ProblemKind::BatchUnreadable,
            format!("The CSV cannot be read: {what}."),
        )
    };
    let Some(header_line) = reader.line().await? else {
        return Ok(Some(unreadable(
            "the body is empty; the first row must be the header".into(),
        )));
    };
    let header = match csv_row(&header_line) {
        Ok(h) => h,
        Err(e) => return Ok(Some(unreadable(format!("the header row {e}")))),
    };
    let header: Vec<String> = header
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let missing: Vec<&str> = CSV_HEADER
        .iter()
        .filter(|c| !header.iter().any(|h| h == *c))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Ok(Some(unreadable(format!(
            "the header lacks {}",
            missing.join(", ")
        ))));
    }
    if let Some(extra) = header.iter().find(|h| !CSV_HEADER.contains(&h.as_str())) {
        return Ok(Some(unreadable(format!(
            "the header names an unknown column `{extra}`"
        ))));
    }
    let mut index = 0;
    while let Some(line) = reader.line().await? {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let item = csv_row(&line)
            .map_err(|e| {
                Problem::field(
                    ProblemKind::InvalidField,
                    format!("[{index}]"),
                    format!("the row {e}"),
                )
            })
            .and_then(|cells| {
                if cells.len() != header.len() {
                    return Err(Problem::field(
                        ProblemKind::InvalidField,
                        format!("[{index}]"),
                        format!("has {} cells; the header has {}", cells.len(), header.len()),
                    ));
                }
                let cell = |name: &str| {
                    let i = header
                        .iter()
                        .position(|h| h == name)
                        .expect("checked header");
                    cells[i].trim().to_string()
                };
                csv_submission(&cell, iata, index)
            });
        run.push(item).await?;
        index += 1;
    }
    Ok(None)
}

fn csv_row(line: &[u8]) -> Result<Vec<String>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line);
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => Ok(record.iter().map(str::to_string).collect()),
        Ok(false) => Ok(Vec::new()),
        Err(e) => Err(format!(
            "is not valid CSV ({e}); a record must fit on one line"
        )),
    }
}

/// The CSV row of a signed statement, in `CSV_HEADER`'s order: what an agency's export
/// writes, and the inverse of the reading below (the demo's `upload.csv` uses it).
pub fn csv_record(statement: &Value, signature: &str) -> Vec<String> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let traveller = &statement["traveller"];
    let consent = &statement["consent"];
    let segments = statement["booking"]["segments"]
        .as_array()
        .map(|segments| {
            segments
                .iter()
                .map(|s| {
                    format!(
                        "{}{}/{}",
                        text(&s["carrier"]),
                        text(&s["flight_number"]),
                        text(&s["date"])
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    vec![
        text(&statement["record_id"]),
        text(&statement["booking"]["record_locator"]),
        segments,
        text(&traveller["surname"]),
        text(&traveller["given_name"]),
        text(&traveller["mobile"]),
        text(&traveller["email"]),
        text(&traveller["language"]),
        text(&statement["decision"]),
        text(&consent["purposes"]),
        text(&consent["data_categories"]),
        text(&consent["recipients"]),
        text(&consent["notice"]["version"]),
        text(&consent["notice"]["language"]),
        text(&consent["notice"]["sha256"]),
        text(&consent["collection_method"]),
        text(&consent["collected_at"]),
        text(&consent["valid_until"]),
        text(&statement["jurisdiction"]),
        signature.to_string(),
    ]
}

/// The statement a CSV row describes.
fn csv_submission(
    cell: &dyn Fn(&str) -> String,
    iata: &str,
    index: usize,
) -> Result<Submission, Problem> {
    let words =
        |name: &str| -> Vec<String> { cell(name).split_whitespace().map(str::to_string).collect() };
    let optional = |name: &str| -> Option<String> { Some(cell(name)).filter(|v| !v.is_empty()) };
    let mut segments = Vec::new();
    for (i, label) in words("segments").iter().enumerate() {
        let bad = || {
            Problem::field(
                ProblemKind::InvalidField,
                format!("[{index}].segments"),
                format!("segment {} must read like AF1234/2026-12-01", i + 1),
            )
        };
        let (flight, date) = label.split_once('/').ok_or_else(bad)?;
        if flight.len() < 3 {
            return Err(bad());
        }
        let (carrier, number) = flight.split_at(2);
        segments.push(json!({"carrier": carrier, "flight_number": number, "date": date}));
    }
    let mut traveller = json!({"surname": cell("surname"), "given_name": cell("given_name")});
    for column in ["mobile", "email", "language"] {
        if let Some(v) = optional(column) {
            traveller[column] = json!(v);
        }
    }
    let recipients = match cell("recipients").as_str() {
        "itinerary" => json!("itinerary"),
        _ => json!(words("recipients")),
    };
    let mut consent = json!({
        "purposes": words("purposes"),
        "data_categories": words("data_categories"),
        "recipients": recipients,
        "notice": {
            "version": cell("notice_version"),
            "language": cell("notice_language"),
            "sha256": cell("notice_sha256"),
        },
        "collection_method": cell("collection_method"),
        "collected_at": cell("collected_at"),
    });
    if let Some(v) = optional("valid_until") {
        consent["valid_until"] = json!(v);
    }
    let statement = json!({
        "schema_version": SCHEMA_VERSION,
        "record_id": cell("record_id"),
        "agency": iata,
        "jurisdiction": cell("jurisdiction"),
        "booking": {"record_locator": cell("record_locator"), "segments": segments},
        "traveller": traveller,
        "decision": cell("decision"),
        "consent": consent,
    });
    Ok(Submission {
        statement,
        signature: optional("signature"),
    })
}

/// A PNR's contact elements, with what the SSR lines do not say.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsrImport {
    /// The GDS whose form the lines are in.
    pub gds: Gds,
    /// The booking: locator and segments.
    pub booking: Value,
    /// Whose law governs the consents.
    pub jurisdiction: Value,
    /// The terms shown to every passenger (purposes, recipients, notice, collection
    /// method, collected_at, valid_until); data categories follow from the elements.
    pub consent: serde_json::Map<String, Value>,
    /// The passengers of the PNR.
    pub passengers: Vec<SsrPassenger>,
    /// The SSR lines, as printed (one element per line).
    pub elements: String,
}

/// A passenger of the imported PNR.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsrPassenger {
    /// The association the GDS uses for them (`P1`, `1.1`).
    #[serde(rename = "ref")]
    pub reference: String,
    /// Family name.
    pub surname: Value,
    /// Given name(s).
    pub given_name: Value,
    /// The agency's record id for this passenger's record.
    pub record_id: Value,
    /// The agency's detached JWS over the statement derived for this passenger; leave
    /// it out to get that statement back in the outcome, to sign.
    #[serde(default)]
    pub signature: Option<String>,
}

/// Imports a PNR's CTCM/CTCE/CTCR elements: one record per passenger.
pub async fn import_ssr(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    AgencyCaller(agency): AgencyCaller,
    ApiQuery(query): ApiQuery<BatchQuery>,
    super::extract::ApiJson(import): super::extract::ApiJson<SsrImport>,
) -> Result<(StatusCode, Json<BatchReport>), Problem> {
    let uploader = Uploader::new(&state, &agency, &request_id).await?;
    let iata = uploader.iata.as_str().to_string();
    let statements = ssr_statements(&import, &iata)?;
    let mut run = Run::new(&state, uploader, query.atomic);
    let mut unsigned = Vec::new();
    for (i, (statement, signature)) in statements.into_iter().enumerate() {
        if signature.is_none() {
            unsigned.push((i, statement.clone()));
        }
        run.push(Ok(Submission {
            statement,
            signature,
        }))
        .await?;
    }
    run.flush().await?;
    for (i, statement) in unsigned {
        if let Some(report) = run.reports.get_mut(i) {
            if report.outcome == "rejected" && report.field.as_deref() == Some("signature") {
                report.field = Some(format!("passengers[{i}].signature"));
                report.pointer = Some(format!("/passengers/{i}/signature"));
                report.statement = Some(statement);
            }
        }
    }
    run.finish(None).await
}

/// The statement for each passenger, built from their elements. A line that does not
/// parse, or names no known passenger, rejects the whole import: it is one PNR.
fn ssr_statements(import: &SsrImport, iata: &str) -> Result<Vec<(Value, Option<String>)>, Problem> {
    if import.passengers.is_empty() {
        return Err(Problem::field(
            ProblemKind::InvalidField,
            "passengers",
            "must list at least one passenger",
        ));
    }
    let mut per_passenger: Vec<Vec<ssr::ContactElement>> =
        vec![Vec::new(); import.passengers.len()];
    for (n, line) in import.elements.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let field = format!("elements[{n}]");
        let element = ssr::parse_line(import.gds, line)
            .map_err(|reason| Problem::field(ProblemKind::InvalidField, field.clone(), reason))?;
        let target = match &element.passenger {
            Some(reference) => import
                .passengers
                .iter()
                .position(|p| p.reference.eq_ignore_ascii_case(reference))
                .ok_or_else(|| {
                    Problem::field(
                        ProblemKind::InvalidField,
                        field.clone(),
                        format!("names passenger `{reference}`, who is not in `passengers`"),
                    )
                })?,
            None if import.passengers.len() == 1 => 0,
            None => {
                return Err(Problem::field(
                    ProblemKind::InvalidField,
                    field,
                    "has no passenger association, and the PNR has several passengers",
                ))
            }
        };
        per_passenger[target].push(element);
    }
    let mut out = Vec::new();
    for (i, (passenger, elements)) in import.passengers.iter().zip(per_passenger).enumerate() {
        let mut traveller =
            json!({"surname": passenger.surname, "given_name": passenger.given_name});
        let mut categories = Vec::new();
        let mut refused = false;
        for element in &elements {
            match &element.value {
                ContactValue::Mobile(m) => {
                    traveller["mobile"] = json!(m.as_str());
                    categories.push("mobile");
                }
                ContactValue::Email(e) => {
                    traveller["email"] = json!(e.as_str());
                    categories.push("email");
                }
                ContactValue::Refused => refused = true,
            }
            if let Some(language) = &element.language {
                traveller["language"] = json!(language.as_str());
            }
        }
        if refused && !categories.is_empty() {
            return Err(Problem::field(
                ProblemKind::InvalidField,
                format!("passengers[{i}]"),
                "has both a CTCR refusal and a contact element",
            ));
        }
        if elements.is_empty() {
            return Err(Problem::field(
                ProblemKind::InvalidField,
                format!("passengers[{i}]"),
                "has no CTCM, CTCE or CTCR element",
            ));
        }
        if refused {
            categories = vec!["mobile", "email"];
        }
        let mut consent = import.consent.clone();
        consent.insert("data_categories".into(), json!(categories));
        let statement = json!({
            "schema_version": SCHEMA_VERSION,
            "record_id": passenger.record_id,
            "agency": iata,
            "jurisdiction": import.jurisdiction,
            "booking": import.booking,
            "traveller": traveller,
            "decision": if refused { "refused" } else { "given" },
            "consent": consent,
        });
        out.push((statement, passenger.signature.clone()));
    }
    Ok(out)
}
