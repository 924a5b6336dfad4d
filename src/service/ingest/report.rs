//! What a bulk upload answers: each record's outcome (stored, duplicate, rejected
//! with its field and reason, or not stored), the counts, and the refusal of a batch
//! of which nothing was stored. Every text a report repeats from the input is
//! bounded, so that an answer's size follows the record cap, never the input.

use crate::service::{Error, ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;

/// The longest text a record's report repeats (a reason, a field path).
const MAX_REPORT_TEXT: usize = 300;

/// Query parameters of the bulk routes.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BatchQuery {
    /// All or nothing: if any record is rejected, none is stored.
    #[serde(default)]
    pub atomic: bool,
}

/// What became of one record of a batch.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Reported {
    /// Stored now.
    Stored,
    /// The same statement was stored before.
    Duplicate,
    /// Refused, with the field and the reason.
    Rejected,
    /// Valid, but not stored: the batch was all-or-nothing and something was refused.
    NotStored,
}

impl Reported {
    /// The outcome's name, as the answer spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Duplicate => "duplicate",
            Self::Rejected => "rejected",
            Self::NotStored => "not_stored",
        }
    }
}

/// One record's outcome in the response.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct RecordReport {
    /// Position in the batch (0-based; for CSV, the data row, header excluded).
    pub index: usize,
    /// What became of it.
    pub outcome: Reported,
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
    /// import holds at most [`MAX_PASSENGERS`](super::ssr::MAX_PASSENGERS)): each of its four texts from the input
    /// (record id, field, pointer, reason) is bounded and holds no control character,
    /// so JSON at most doubles it; the rest is the broker's own.
    pub fn largest(public_url: &str) -> usize {
        4 * 2 * MAX_REPORT_TEXT + 512 + public_url.len()
    }

    pub(super) fn new(index: usize, outcome: Reported) -> Self {
        Self {
            index,
            outcome,
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

    pub(super) fn rejected(index: usize, problem: &Error) -> Self {
        let error = problem.errors().first();
        let reason = error.map_or_else(|| problem.detail(), |e| e.reason.as_str());
        Self {
            problem_type: Some(problem.kind().type_uri()),
            field: error.map(|e| bounded(&e.field)),
            pointer: error.map(|e| bounded(&e.pointer)),
            reason: Some(bounded(reason)),
            ..Self::new(index, Reported::Rejected)
        }
    }

    pub(super) fn not_stored(index: usize, record_id: Option<&str>) -> Self {
        Self {
            record_id: record_id.map(bounded),
            ..Self::new(index, Reported::NotStored)
        }
    }
}

/// A text cut to [`MAX_REPORT_TEXT`] bytes (at a character boundary), control
/// characters shown as `?`, so that a report's size never follows its input.
pub(super) fn bounded(text: &str) -> String {
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

/// `422 batch-rejected`, with every record's outcome.
pub(super) fn not_stored(detail: String, results: Vec<RecordReport>) -> Error {
    let counts = Counts {
        rejected: results
            .iter()
            .filter(|r| r.outcome == Reported::Rejected)
            .count(),
        ..Counts::default()
    };
    Error::new(ErrorKind::BatchRejected, detail)
        .with_extension("counts", json!(counts))
        .with_extension("results", json!(results))
}

/// For an SSR passenger sent without a signature, the statement to sign, on its
/// refusal for want of one.
pub(super) fn with_statement(
    mut report: RecordReport,
    to_sign: &HashMap<usize, Value>,
) -> RecordReport {
    if let Some(statement) = to_sign.get(&report.index) {
        if report.outcome == Reported::Rejected && report.field.as_deref() == Some("signature") {
            report.field = Some(format!("passengers[{}].signature", report.index));
            report.pointer = Some(format!("/passengers/{}/signature", report.index));
            report.statement = Some(statement.clone());
        }
    }
    report
}
