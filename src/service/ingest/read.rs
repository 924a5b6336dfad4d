//! Reading a bulk upload's body as it arrives: a JSON array split into its elements,
//! NDJSON lines, or CSV rows, each handed to the run as one record. No line, element
//! or row is held beyond [`MAX_LINE`] bytes.

use super::run::{Flow, Run};
use super::Submission;
use crate::domain::consent::SCHEMA_VERSION;
use crate::service::input::parse_json;
use crate::service::{Error, ErrorKind};
use axum::body::Body;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

/// The longest NDJSON line, JSON array element or CSV row accepted.
pub const MAX_LINE: usize = 64 * 1024;

/// The request body as a stream of bytes, read a byte at a time from buffered chunks.
pub(crate) struct BodyReader {
    stream: axum::body::BodyDataStream,
    buffer: axum::body::Bytes,
    position: usize,
}

impl BodyReader {
    pub(crate) fn new(body: Body) -> Self {
        Self {
            stream: body.into_data_stream(),
            buffer: axum::body::Bytes::new(),
            position: 0,
        }
    }

    /// The next byte, `None` at the end of the body.
    async fn next(&mut self) -> Result<Option<u8>, Error> {
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

    /// Reads what is left of the body and drops it (at most the body cap), so that a
    /// client still sending gets the answer rather than a reset connection.
    pub(crate) async fn drain(&mut self) {
        self.position = self.buffer.len();
        while let Some(Ok(_)) = self.stream.next().await {}
    }

    /// The next line without its end (`\n` or `\r\n`), `None` at the end of the body.
    async fn line(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let mut line = Vec::new();
        loop {
            match self.next().await? {
                None if line.is_empty() => return Ok(None),
                None => break,
                Some(b'\n') => break,
                Some(byte) => {
                    if line.len() >= MAX_LINE {
                        return Err(Error::new(
                            ErrorKind::BatchUnreadable,
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

fn body_error(error: axum::Error) -> Error {
    let too_large = std::error::Error::source(&error)
        .is_some_and(|e| e.is::<http_body_util::LengthLimitError>())
        || error.to_string().contains("length limit");
    if too_large {
        Error::of(ErrorKind::BodyTooLarge)
    } else {
        Error::new(ErrorKind::BadRequest, "The body could not be read.")
    }
}

/// A record of a JSON array or NDJSON line: `{"statement": …, "signature": …}`.
fn submission_of(bytes: &[u8], index: usize) -> Result<Submission, Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        statement: Value,
        signature: String,
    }
    let prefix = |p: Error| {
        let field = match p.errors().first() {
            Some(e) if e.field != "body" => format!("[{index}].{}", e.field),
            _ => format!("[{index}]"),
        };
        let reason = p
            .errors()
            .first()
            .map_or_else(|| p.detail().to_string(), |e| e.reason.clone());
        Error::field(p.kind(), field, reason)
    };
    let item: Item = parse_json(bytes).map_err(prefix)?;
    Ok(Submission {
        statement: item.statement,
        signature: Some(item.signature),
    })
}

/// Splits a JSON array into its elements as the bytes arrive: it tracks nesting and
/// strings, and hands each complete element to the run.
pub(crate) async fn json_array(
    reader: &mut BodyReader,
    run: &mut Run<'_>,
) -> Result<Option<Error>, Error> {
    let unreadable = |what: &str| {
        Error::new(
            ErrorKind::BatchUnreadable,
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
                let item = if text.len() > MAX_LINE {
                    Err(Error::field(
                        ErrorKind::InvalidField,
                        format!("[{index}]"),
                        format!("is larger than {MAX_LINE} bytes"),
                    ))
                } else {
                    submission_of(&text, index)
                };
                if run.push(item)? == Flow::Stop {
                    return Ok(None);
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
pub(crate) async fn ndjson(
    reader: &mut BodyReader,
    run: &mut Run<'_>,
) -> Result<Option<Error>, Error> {
    let mut index = 0;
    while let Some(line) = reader.line().await? {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if run.push(submission_of(&line, index))? == Flow::Stop {
            break;
        }
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
pub(crate) async fn csv(
    reader: &mut BodyReader,
    run: &mut Run<'_>,
    iata: &str,
) -> Result<Option<Error>, Error> {
    let unreadable = |what: String| {
        Error::new(
            ErrorKind::BatchUnreadable,
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
                Error::field(
                    ErrorKind::InvalidField,
                    format!("[{index}]"),
                    format!("the row {e}"),
                )
            })
            .and_then(|cells| {
                if cells.len() != header.len() {
                    return Err(Error::field(
                        ErrorKind::InvalidField,
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
        if run.push(item)? == Flow::Stop {
            break;
        }
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
) -> Result<Submission, Error> {
    let words =
        |name: &str| -> Vec<String> { cell(name).split_whitespace().map(str::to_string).collect() };
    let optional = |name: &str| -> Option<String> { Some(cell(name)).filter(|v| !v.is_empty()) };
    let mut segments = Vec::new();
    for (i, label) in words("segments").iter().enumerate() {
        let bad = || {
            Error::field(
                ErrorKind::InvalidField,
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
