//! The compliance console: the audit trail with its filters, each entry with its
//! inclusion proof, the log's integrity (with a verification run from the page), the
//! reports as tables, charts and CSV, and the policies in force.

pub mod integrity;
pub mod policies;
pub mod reports;

use super::form;
use super::i18n::Lang;
use super::session::OfficerSession;
use super::{ok, problem_page, search_refused, Frame, Search};
use crate::audit::{Action, AuditEntry, Outcome};
use crate::service::audit_entries::{self as audit_api, EntryPage, EntryQuery, ListedEntry};
use crate::service::proofs::{self, InclusionQuery};
use crate::service::AppState;
use crate::wire::problem::{Problem, ProblemKind};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Entries per page of the audit trail.
const PAGE: i64 = 50;

/// One row of the audit trail.
pub struct EntryRow {
    index: i64,
    at: String,
    actor: String,
    action: String,
    outcome: String,
    reason: String,
    purpose: String,
    event: String,
    flight: String,
}

impl From<&AuditEntry> for EntryRow {
    fn from(e: &AuditEntry) -> Self {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        Self {
            index: e.index,
            at: e.at.clone(),
            actor: format!("{} {}", e.actor_kind, e.actor_id),
            action: e.action.clone(),
            outcome: e.outcome.clone(),
            reason: text(&e.reason),
            purpose: text(&e.purpose),
            event: text(&e.event_category),
            flight: text(&e.flight),
        }
    }
}

/// The audit trail's filter form, as typed.
pub struct Filters {
    since: String,
    until: String,
    agency: String,
    airline: String,
    booking_id: String,
    traveller_id: String,
    action: String,
    outcome: String,
    purpose: String,
    event_category: String,
    event_reference: String,
}

impl Filters {
    fn of(query: Option<&str>) -> Self {
        let f = |name| form::field(query, name);
        Self {
            since: f("since"),
            until: f("until"),
            agency: f("agency"),
            airline: f("airline"),
            booking_id: f("booking_id"),
            traveller_id: f("traveller_id"),
            action: f("action"),
            outcome: f("outcome"),
            purpose: f("purpose"),
            event_category: f("event_category"),
            event_reference: f("event_reference"),
        }
    }
}

/// `GET /console`: the audit trail.
#[derive(Template)]
#[template(path = "console/search.html")]
pub struct SearchPage {
    frame: Frame,
    filters: Filters,
    actions: Vec<&'static str>,
    outcomes: Vec<&'static str>,
    error: Option<String>,
    rows: Vec<EntryRow>,
    total: i64,
    total_exact: bool,
    tree_size: i64,
    next: Option<String>,
    first: Option<String>,
}

impl Search for SearchPage {
    fn refused(&mut self, why: String) {
        self.error = Some(why);
    }
    fn into_frame(self) -> Frame {
        self.frame
    }
}

/// The audit trail, filtered like `GET /v1/audit/entries`.
pub async fn search(
    State(state): State<AppState>,
    lang: Lang,
    OfficerSession(session): OfficerSession,
    uri: Uri,
) -> Response {
    let query = uri.query();
    let mut page = SearchPage {
        frame: Frame::new(lang, "/console", Some(&session), "audit"),
        filters: Filters::of(query),
        actions: Action::ALL.iter().map(|a| a.as_str()).collect(),
        outcomes: Outcome::ALL.iter().map(|o| o.as_str()).collect(),
        error: None,
        rows: Vec::new(),
        total: 0,
        total_exact: true,
        tree_size: 0,
        next: None,
        first: None,
    };
    let listed = match form::query::<EntryQuery>(&form::page_query(query, PAGE)) {
        Ok(q) => audit_api::list(&state, &q).await,
        Err(problem) => Err(problem),
    };
    match listed {
        Ok(EntryPage {
            entries,
            next_after,
            total,
            total_exact,
            tree_size,
        }) => {
            page.rows = entries.iter().map(|e| EntryRow::from(&e.entry)).collect();
            page.total = total;
            page.total_exact = total_exact;
            page.tree_size = tree_size;
            (page.next, page.first) = form::pager(query, next_after.map(|a| a.to_string()));
            ok(&page)
        }
        Err(problem) => search_refused(page, problem),
    }
}

/// `GET /console/entries/{index}`: one entry, its proof, and whether the proof holds.
#[derive(Template)]
#[template(path = "console/entry.html")]
pub struct EntryDetail {
    frame: Frame,
    index: i64,
    fields: Vec<(String, String)>,
    leaf_hash: String,
    proof: Option<ProofView>,
    proof_error: Option<String>,
    /// No checkpoint covers the entry yet: the page offers to sign one.
    not_checkpointed: bool,
}

/// An inclusion proof as the page shows it.
pub struct ProofView {
    tree_size: u64,
    hashes: Vec<String>,
    checkpoint: String,
    holds: bool,
    why_not: String,
}

fn entry_fields(e: &AuditEntry) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = [
        ("index", e.index.to_string()),
        ("at", e.at.clone()),
        ("request_id", e.request_id.clone()),
        ("actor_kind", e.actor_kind.clone()),
        ("actor_id", e.actor_id.clone()),
        ("action", e.action.clone()),
        ("outcome", e.outcome.clone()),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v))
    .collect();
    // Every other field the entry carries, by its JSON name: the page shows what the
    // log holds, no more (entries never hold a contact or a name).
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(e) {
        for (name, value) in map {
            if fields.iter().any(|(n, _)| *n == name) || value.is_null() {
                continue;
            }
            let text = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            fields.push((name, text));
        }
    }
    fields
}

/// One entry with its proof.
pub async fn entry(
    State(state): State<AppState>,
    lang: Lang,
    OfficerSession(session): OfficerSession,
    Path(index): Path<String>,
) -> Response {
    let frame = Frame::new(
        lang,
        &format!("/console/entries/{index}"),
        Some(&session),
        "audit",
    );
    let ListedEntry { entry, leaf_hash } = match audit_api::read(&state, &index).await {
        Ok(listed) => listed,
        Err(problem) => return problem_page(frame, problem),
    };
    let (proof, proof_error) = match inclusion(&state, &session, &index).await {
        Ok(proof) => (Some(ProofView::checked(&state, &proof)), None),
        Err(problem) => (None, Some(problem)),
    };
    ok(&EntryDetail {
        frame,
        index: entry.index,
        fields: entry_fields(&entry),
        leaf_hash,
        proof,
        not_checkpointed: proof_error
            .as_ref()
            .is_some_and(|p| p.kind() == ProblemKind::NoCheckpoint),
        proof_error: proof_error.map(|p| p.detail().to_string()),
    })
}

impl ProofView {
    /// A proof as shown, checked here against the log's key.
    fn checked(state: &AppState, proof: &crate::audit::proof::InclusionProof) -> Self {
        let checked = proof.check(state.checkpointer.log_key());
        Self {
            tree_size: proof.tree_size,
            hashes: proof.hashes.clone(),
            checkpoint: proof.checkpoint.clone(),
            holds: checked.is_ok(),
            why_not: checked.err().unwrap_or_default(),
        }
    }
}

async fn inclusion(
    state: &AppState,
    session: &super::session::PageSession,
    index: &str,
) -> Result<crate::audit::proof::InclusionProof, Problem> {
    let query = InclusionQuery {
        index: index.to_string(),
        tree_size: None,
    };
    proofs::inclusion(state, &session.party, &query).await
}

/// `GET /console/entries/{index}/proof.json`: the proof as a file, to check offline
/// with `passerelle audit check-proof`.
pub async fn proof_file(
    State(state): State<AppState>,
    lang: Lang,
    OfficerSession(session): OfficerSession,
    Path(index): Path<String>,
) -> Response {
    match inclusion(&state, &session, &index).await {
        Ok(proof) => {
            let name = format!(
                "attachment; filename=\"passerelle-proof-{}.json\"",
                proof.entry.index
            );
            let mut response = Json(proof).into_response();
            if let Ok(value) = name.parse() {
                response
                    .headers_mut()
                    .insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Err(problem) => problem_page(
            Frame::new(lang, "/console", Some(&session), "audit"),
            problem,
        ),
    }
}
