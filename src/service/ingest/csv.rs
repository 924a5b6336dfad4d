//! CSV uploads: a header row naming the columns (any order, all of [`CSV_HEADER`]),
//! then one record per row, which becomes the statement it describes; its
//! `signature` column signs that statement's canonical form. `csv_record` is the
//! inverse (the demo's `upload.csv` uses it).

use super::read::BodyReader;
use super::run::{Flow, Run};
use super::Submission;
use crate::domain::consent::SCHEMA_VERSION;
use crate::service::{Error, ErrorKind};
use serde_json::{json, Value};

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
                    let flight = format!(
                        "{}{}/{}",
                        text(&s["carrier"]),
                        text(&s["flight_number"]),
                        text(&s["date"])
                    );
                    // `AF1234/2026-12-01/CDG-JFK` when the segment names its airports.
                    match (s.get("origin"), s.get("destination")) {
                        (None, None) => flight,
                        (origin, destination) => format!(
                            "{flight}/{}-{}",
                            origin.map(text).unwrap_or_default(),
                            destination.map(text).unwrap_or_default()
                        ),
                    }
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
                format!(
                    "segment {} must read like AF1234/2026-12-01, or AF1234/2026-12-01/CDG-JFK with its airports",
                    i + 1
                ),
            )
        };
        let mut parts = label.split('/');
        let (Some(flight), Some(date)) = (parts.next(), parts.next()) else {
            return Err(bad());
        };
        let airports = parts.next();
        if flight.len() < 3 || parts.next().is_some() {
            return Err(bad());
        }
        let (carrier, number) = flight.split_at(2);
        let mut segment = json!({"carrier": carrier, "flight_number": number, "date": date});
        if let Some(airports) = airports {
            let (origin, destination) = airports.split_once('-').ok_or_else(bad)?;
            if origin.is_empty() && destination.is_empty() {
                return Err(bad());
            }
            if !origin.is_empty() {
                segment["origin"] = json!(origin);
            }
            if !destination.is_empty() {
                segment["destination"] = json!(destination);
            }
        }
        segments.push(segment);
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
