//! Exporting a period of the log as NDJSON or CSV, with the signed checkpoint that
//! covers it (the API's `GET /v1/audit/export`).
//!
//! The broker takes the latest signed checkpoint (a read never signs one: `POST
//! /v1/audit/checkpoints` first to cover the newest entries), then streams the
//! period's entries up to that checkpoint's size, a page at a time, so memory stays
//! flat whatever the period. The checkpoint travels in the headers
//! (`Passerelle-Checkpoint`, base64 of the signed note, and
//! `Passerelle-Checkpoint-Size`): with each line's leaf hash, every exported entry
//! can be proved against it later.

use crate::domain::ids::hex;
use crate::service::audit_entries::ListedEntry;
use crate::service::reports::PeriodQuery;
use crate::service::{AppState, Error, ErrorKind};
use crate::store::audit::{self, EntryFilter};
use crate::store::Store;
use serde::Deserialize;
use time::OffsetDateTime;

/// Entries read per page while streaming.
const PAGE: i64 = 1000;

/// The CSV columns, in order.
pub const CSV_COLUMNS: [&str; 23] = [
    "index",
    "at",
    "request_id",
    "actor_kind",
    "actor_id",
    "action",
    "outcome",
    "reason",
    "agency_id",
    "airline_id",
    "booking_id",
    "traveller_id",
    "consent_id",
    "token_id",
    "purpose",
    "event_category",
    "event_reference",
    "flight",
    "message_id",
    "channel",
    "policies",
    "policy_digest",
    "leaf_hash",
];

/// Export format.
#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON entry per line, as the search returns them.
    #[default]
    Ndjson,
    /// A header line, then one row per entry.
    Csv,
}

/// What to export.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Start, inclusive (RFC 3339); default 30 days before `until`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    /// End, exclusive (RFC 3339); default now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    /// `ndjson` (default) or `csv`.
    #[serde(default)]
    pub format: Format,
}

/// An export ready to stream: what the answer says of it, and its pages.
pub struct Export {
    /// The media type of the body.
    pub content_type: &'static str,
    /// The file name offered for download.
    pub filename: String,
    /// The signed checkpoint that proves the export (its C2SP note).
    pub checkpoint_note: String,
    /// The entries the checkpoint covers: the export ends there.
    pub checkpoint_size: u64,
    /// The body, a page at a time.
    pub pages: Pages,
}

/// Prepares the period's entries for streaming, up to the latest signed checkpoint.
pub async fn export(state: &AppState, query: ExportQuery) -> Result<Export, Error> {
    let period = PeriodQuery {
        since: query.since,
        until: query.until,
    }
    .period(state.clock.now())?;
    let checkpoint = {
        let mut conn = state.store.reader().acquire().await?;
        audit::latest_checkpoint(&mut conn).await?
    }
    .ok_or_else(|| {
        Error::new(
            ErrorKind::NoCheckpoint,
            "No checkpoint was signed yet, so no export can be proved; sign one with \
             POST /v1/audit/checkpoints.",
        )
    })?;
    let filter = EntryFilter {
        since: Some(period.since),
        until: Some(period.until),
        ..EntryFilter::default()
    };
    let (content_type, extension) = match query.format {
        Format::Ndjson => ("application/x-ndjson", "ndjson"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    Ok(Export {
        content_type,
        filename: format!(
            "audit-{}-{}.{extension}",
            period.since.date(),
            period.until.date()
        ),
        checkpoint_note: checkpoint.note,
        checkpoint_size: checkpoint.tree_size,
        pages: Pages {
            store: state.store.clone(),
            filter,
            format: query.format,
            after: None,
            end: checkpoint.tree_size,
            header_sent: false,
            done: false,
        },
    })
}

/// The export's pages, read one at a time as the client consumes them.
pub struct Pages {
    store: Store,
    filter: EntryFilter,
    format: Format,
    after: Option<i64>,
    end: u64,
    header_sent: bool,
    done: bool,
}

impl Pages {
    /// The next chunk of the body; `Ok(None)` at the end. A database failure mid-way
    /// ends the body with an error, so the client sees a broken transfer, never a
    /// silently short export.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, std::io::Error> {
        if self.done {
            return Ok(None);
        }
        let mut out = Vec::new();
        if !self.header_sent && self.format == Format::Csv {
            out.extend_from_slice(CSV_COLUMNS.join(",").as_bytes());
            out.push(b'\n');
        }
        self.header_sent = true;
        let mut conn = self
            .store
            .reader()
            .acquire()
            .await
            .map_err(std::io::Error::other)?;
        let rows = audit::list_filtered(&mut conn, &self.filter, self.after, PAGE)
            .await
            .map_err(std::io::Error::other)?;
        let full = rows.len() as i64 == PAGE;
        for (entry, leaf) in rows {
            if entry.index as u64 >= self.end {
                self.done = true;
                break;
            }
            self.after = Some(entry.index);
            let listed = ListedEntry {
                entry,
                leaf_hash: hex(&leaf),
            };
            match self.format {
                Format::Ndjson => {
                    serde_json::to_writer(&mut out, &listed).map_err(std::io::Error::other)?;
                    out.push(b'\n');
                }
                Format::Csv => csv_row(&mut out, &listed)?,
            }
        }
        if !full {
            self.done = true;
        }
        if out.is_empty() && self.done {
            return Ok(None);
        }
        Ok(Some(out))
    }
}

/// A cell a spreadsheet will not run as a formula: one starting with `=`, `+`, `-`, `@`
/// or a control character is prefixed with `'` (OWASP's advice on CSV injection).
/// Every CSV the broker writes goes through it: an airline's event reference or a
/// caller's request id could otherwise run in an officer's spreadsheet.
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

fn csv_row(out: &mut Vec<u8>, listed: &ListedEntry) -> Result<(), std::io::Error> {
    let e = &listed.entry;
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut writer = csv::Writer::from_writer(out);
    let cells = [
        e.index.to_string(),
        e.at.clone(),
        e.request_id.clone(),
        e.actor_kind.clone(),
        e.actor_id.clone(),
        e.action.clone(),
        e.outcome.clone(),
        o(&e.reason),
        o(&e.agency_id),
        o(&e.airline_id),
        o(&e.booking_id),
        o(&e.traveller_id),
        o(&e.consent_id),
        o(&e.token_id),
        o(&e.purpose),
        o(&e.event_category),
        o(&e.event_reference),
        o(&e.flight),
        o(&e.message_id),
        o(&e.channel),
        o(&e.policies),
        o(&e.policy_digest),
        listed.leaf_hash.clone(),
    ];
    writer
        .write_record(cells.iter().map(|c| spreadsheet_safe(c).into_owned()))
        .map_err(std::io::Error::other)?;
    writer.flush()
}
