//! The compliance console: the audit trail with its filters, each entry with its
//! inclusion proof, the log's integrity (with a verification run from the page), the
//! reports as tables, charts and CSV, and the policies in force.

use super::charts::{self, Bar, Series};
use super::form;
use super::i18n::Lang;
use super::session::OfficerSession;
use super::{ok, problem_page, search_refused, Frame, Search};
use crate::audit::{Action, AuditEntry, Outcome};
use crate::domain::time::format_time;
use crate::http::problem::{Problem, ProblemKind};
use crate::service::audit_entries::{self as audit_api, EntryPage, EntryQuery, ListedEntry};
use crate::service::export::spreadsheet_safe;
use crate::service::policies::{self, PoliciesInForce};
use crate::service::proofs::{self, InclusionQuery};
use crate::service::reports::{self, CoverageRow, PeriodQuery, Report};
use crate::service::AppState;
use crate::store::{audit, verifications};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use std::collections::BTreeMap;

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
            tree_size,
        }) => {
            page.rows = entries.iter().map(|e| EntryRow::from(&e.entry)).collect();
            page.total = total;
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
        Ok(proof) => {
            let checked = proof.check(state.checkpointer.log_key());
            (
                Some(ProofView {
                    tree_size: proof.tree_size,
                    hashes: proof.hashes.clone(),
                    checkpoint: proof.checkpoint.clone(),
                    holds: checked.is_ok(),
                    why_not: checked.err().unwrap_or_default(),
                }),
                None,
            )
        }
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

/// `GET /console/integrity`: latest checkpoint, tree size, last verification, and the
/// verification under way.
#[derive(Template)]
#[template(path = "console/integrity.html")]
pub struct IntegrityPage {
    frame: Frame,
    tree_size: i64,
    origin: String,
    log_key: String,
    checkpoint: Option<CheckpointView>,
    last: Option<VerificationView>,
    running: Option<RunningView>,
}

/// The latest checkpoint as shown.
pub struct CheckpointView {
    size: u64,
    signed_at: String,
    root: String,
    note: String,
}

/// The last verification as shown.
pub struct VerificationView {
    finished_at: String,
    seconds: String,
    entries: i64,
    checkpoints: i64,
    root: String,
    intact: bool,
    finding: String,
    finding_index: Option<i64>,
}

/// A verification under way.
pub struct RunningView {
    checked: u64,
    total: u64,
    percent: u64,
}

/// The integrity panel.
pub async fn integrity(
    State(state): State<AppState>,
    lang: Lang,
    OfficerSession(session): OfficerSession,
) -> Response {
    let frame = Frame::new(lang, "/console/integrity", Some(&session), "integrity");
    let read = async {
        let mut conn = state.store.reader().acquire().await?;
        let size = audit::size(&mut conn).await?;
        let checkpoint = audit::latest_checkpoint(&mut conn).await?;
        let last = verifications::latest(&mut conn).await?;
        Ok::<_, Problem>((size, checkpoint, last))
    };
    let (tree_size, checkpoint, last) = match read.await {
        Ok(read) => read,
        Err(problem) => return problem_page(frame, problem),
    };
    let page = IntegrityPage {
        tree_size,
        origin: state.checkpointer.settings().origin.clone(),
        log_key: state.checkpointer.log_key().to_string(),
        checkpoint: checkpoint.map(|c| CheckpointView {
            size: c.tree_size,
            signed_at: format_time(c.signed_at),
            root: STANDARD.encode(c.root),
            note: c.note,
        }),
        last: last.map(|v| VerificationView {
            finished_at: format_time(v.finished_at),
            seconds: format!(
                "{:.1}",
                (v.finished_at - v.started_at).as_seconds_f64().max(0.0)
            ),
            entries: v.entries,
            checkpoints: v.checkpoints,
            root: STANDARD.encode(&v.root),
            intact: v.finding.is_none(),
            finding: v.finding.unwrap_or_default(),
            finding_index: v.finding_index,
        }),
        running: state.verifications.running().map(|run| RunningView {
            checked: run.checked(),
            total: run.total(),
            percent: run.percent(),
        }),
        frame,
    };
    ok(&page)
}

/// The verification form.
#[derive(Deserialize)]
pub struct VerifyForm {
    csrf: String,
}

/// `POST /console/integrity/verify`: starts a verification and goes back to the panel,
/// which shows its progress.
pub async fn verify(
    State(state): State<AppState>,
    lang: Lang,
    OfficerSession(session): OfficerSession,
    body: Bytes,
) -> Response {
    let checked = form::parse::<VerifyForm>(&body).and_then(|f| session.check_csrf(&f.csrf));
    if let Err(problem) = checked {
        let frame = Frame::new(lang, "/console/integrity", Some(&session), "integrity");
        return problem_page(frame, problem);
    }
    state.verifications.start(&state, &session.party.id);
    Redirect::to("/console/integrity").into_response()
}

/// The form that signs a checkpoint from an entry's page.
#[derive(Deserialize)]
pub struct CheckpointForm {
    csrf: String,
    /// The entry to go back to.
    entry: u64,
}

/// `POST /console/checkpoints`: signs a checkpoint of the log as it is now (as
/// `POST /v1/audit/checkpoints` does), then goes back to the entry, whose proof it
/// now covers.
pub async fn sign_checkpoint(
    State(state): State<AppState>,
    lang: Lang,
    OfficerSession(session): OfficerSession,
    body: Bytes,
) -> Response {
    let frame = || Frame::new(lang, "/console", Some(&session), "audit");
    let form = match form::parse::<CheckpointForm>(&body) {
        Ok(form) => form,
        Err(problem) => return problem_page(frame(), problem),
    };
    if let Err(problem) = session.check_csrf(&form.csrf) {
        return problem_page(frame(), problem);
    }
    let signed = proofs::sign(&state).await;
    match signed {
        Ok(_) => Redirect::to(&format!("/console/entries/{}", form.entry)).into_response(),
        Err(problem) => problem_page(frame(), problem),
    }
}

/// `GET /console/reports`: the reports of a period as tables and charts.
#[derive(Template)]
#[template(path = "console/reports.html")]
pub struct ReportsPage {
    frame: Frame,
    since: String,
    until: String,
    period_query: String,
    report: Report,
    coverage_agency_chart: String,
    coverage_airline_chart: String,
    over_time_chart: String,
    refusals_chart: String,
}

/// The period a report page names; by default the 30 days up to and including today.
fn period_of(
    state: &AppState,
    query: Option<&str>,
) -> Result<crate::store::reports::Period, Problem> {
    let mut prepared = form::filters(query);
    if form::field(Some(&prepared), "until").is_empty() {
        let today = state.clock.now().date();
        let mut defaults = format!("until={}T00:00:00Z", today.next_day().unwrap_or(today));
        if form::field(Some(&prepared), "since").is_empty() {
            defaults.push_str(&format!(
                "&since={}T00:00:00Z",
                today - time::Duration::days(29)
            ));
        }
        prepared = if prepared.is_empty() {
            defaults
        } else {
            format!("{prepared}&{defaults}")
        };
    }
    let period: PeriodQuery = form::query(&prepared)?;
    period.period(state.clock.now())
}

/// The reports page.
pub async fn reports(
    State(state): State<AppState>,
    lang: Lang,
    OfficerSession(session): OfficerSession,
    uri: Uri,
) -> Response {
    let frame = Frame::new(lang, "/console/reports", Some(&session), "reports");
    let report = match period_of(&state, uri.query()) {
        Ok(period) => reports::build(&state, period).await,
        Err(problem) => Err(problem),
    };
    let report = match report {
        Ok(report) => report,
        Err(problem) => return problem_page(frame, problem),
    };
    let t = frame.t;
    let coverage = |rows: &[CoverageRow]| -> Vec<Bar> {
        rows.iter()
            .map(|r| Bar {
                label: r.party.clone(),
                value: r.share * 100.0,
                text: format!(
                    "{:.1} % ({}/{})",
                    r.share * 100.0,
                    r.with_contact,
                    r.travellers
                ),
            })
            .collect()
    };
    let coverage_agency_chart = charts::bars(
        t.chart_coverage_agency,
        &coverage(&report.coverage.by_agency),
        Some(100.0),
    );
    let coverage_airline_chart = charts::bars(
        t.chart_coverage_airline,
        &coverage(&report.coverage.by_airline),
        Some(100.0),
    );
    let mut refusals: BTreeMap<String, i64> = BTreeMap::new();
    for r in &report.refusals {
        *refusals
            .entry(r.reason.clone().unwrap_or_else(|| "—".into()))
            .or_default() += r.count;
    }
    let refusal_bars: Vec<Bar> = refusals
        .into_iter()
        .map(|(reason, count)| Bar {
            label: reason,
            value: count as f64,
            text: count.to_string(),
        })
        .collect();
    let refusals_chart = charts::bars(t.chart_refusals, &refusal_bars, None);
    let mut days: Vec<String> = report
        .releases_by_day
        .iter()
        .map(|d| d.day.clone())
        .collect();
    days.dedup();
    let mut series: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for d in &report.releases_by_day {
        let event = d.event_category.clone().unwrap_or_else(|| "—".into());
        let column = days.iter().position(|day| *day == d.day).expect("listed");
        series.entry(event).or_insert_with(|| vec![0; days.len()])[column] += d.releases;
    }
    let series: Vec<Series> = series
        .into_iter()
        .map(|(name, values)| Series { name, values })
        .collect();
    let over_time_chart = charts::columns(t.chart_over_time, &days, &series);
    let since = report.since.get(..10).unwrap_or_default().to_string();
    // The form's `until` names the last day included; the report's is exclusive.
    let until = time::OffsetDateTime::parse(
        &report.until,
        &time::format_description::well_known::Rfc3339,
    )
    .map(|u| (u - time::Duration::nanoseconds(1)).date().to_string())
    .unwrap_or_default();
    let period_query = format!("since={since}&until={until}");
    ok(&ReportsPage {
        frame,
        since,
        until,
        period_query,
        report,
        coverage_agency_chart,
        coverage_airline_chart,
        over_time_chart,
        refusals_chart,
    })
}

/// `GET /console/reports/{name}.csv`: one table of the report, as CSV.
pub async fn report_csv(
    State(state): State<AppState>,
    lang: Lang,
    OfficerSession(session): OfficerSession,
    Path(name): Path<String>,
    uri: Uri,
) -> Response {
    let frame = || Frame::new(lang, "/console/reports", Some(&session), "reports");
    let report = match period_of(&state, uri.query()) {
        Ok(period) => reports::build(&state, period).await,
        Err(problem) => Err(problem),
    };
    let report = match report {
        Ok(report) => report,
        Err(problem) => return problem_page(frame(), problem),
    };
    let Some(table) = name
        .strip_suffix(".csv")
        .and_then(|n| report_table(&report, n))
    else {
        return problem_page(
            frame(),
            Problem::new(
                ProblemKind::NotFound,
                "There is no report table by that name.",
            ),
        );
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in table {
        let row = row.iter().map(|cell| spreadsheet_safe(cell).into_owned());
        if writer.write_record(row).is_err() {
            return problem_page(frame(), Problem::internal("CSV writer failed"));
        }
    }
    let bytes = writer.into_inner().unwrap_or_default();
    let disposition = format!(
        "attachment; filename=\"passerelle-{}-{}-{}.csv\"",
        name.trim_end_matches(".csv"),
        report.since.get(..10).unwrap_or_default(),
        report.until.get(..10).unwrap_or_default(),
    );
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        bytes,
    )
        .into_response();
    if let Ok(value) = disposition.parse() {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// The rows of one report table, header first.
fn report_table(report: &Report, name: &str) -> Option<Vec<Vec<String>>> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let coverage = |rows: &[CoverageRow]| {
        let mut out = vec![vec![
            "party".into(),
            "travellers".into(),
            "with_contact".into(),
            "share".into(),
        ]];
        out.extend(rows.iter().map(|r| {
            vec![
                r.party.clone(),
                r.travellers.to_string(),
                r.with_contact.to_string(),
                format!("{:.4}", r.share),
            ]
        }));
        out
    };
    let header = |names: &[&str]| vec![names.iter().map(|n| n.to_string()).collect::<Vec<_>>()];
    Some(match name {
        "coverage-by-agency" => coverage(&report.coverage.by_agency),
        "coverage-by-airline" => coverage(&report.coverage.by_airline),
        "releases" => {
            let mut out = header(&["purpose", "event_category", "grants", "releases", "relays"]);
            out.extend(report.releases.iter().map(|r| {
                vec![
                    text(&r.purpose),
                    text(&r.event_category),
                    r.grants.to_string(),
                    r.releases.to_string(),
                    r.relays.to_string(),
                ]
            }));
            out
        }
        "releases-by-day" => {
            let mut out = header(&["day", "event_category", "releases"]);
            out.extend(report.releases_by_day.iter().map(|r| {
                vec![
                    r.day.clone(),
                    text(&r.event_category),
                    r.releases.to_string(),
                ]
            }));
            out
        }
        "refusals" => {
            let mut out = header(&["action", "reason", "count"]);
            out.extend(
                report
                    .refusals
                    .iter()
                    .map(|r| vec![text(&r.action), text(&r.reason), r.count.to_string()]),
            );
            out
        }
        "disruptions" => {
            let mut out = header(&[
                "airline",
                "event_reference",
                "first_request_at",
                "first_release_at",
                "last_release_at",
                "seconds_to_first_release",
                "seconds_to_last_release",
                "releases",
            ]);
            let secs = |v: Option<f64>| v.map(|s| format!("{s:.3}")).unwrap_or_default();
            out.extend(report.disruptions.iter().map(|d| {
                vec![
                    text(&d.airline),
                    d.event_reference.clone(),
                    text(&d.first_request_at),
                    text(&d.first_release_at),
                    text(&d.last_release_at),
                    secs(d.seconds_to_first_release),
                    secs(d.seconds_to_last_release),
                    d.releases.to_string(),
                ]
            }));
            out
        }
        "relay" => {
            let mut out = header(&["channel", "outcome", "reason", "count"]);
            out.extend(report.relay.iter().map(|r| {
                vec![
                    text(&r.channel),
                    text(&r.outcome),
                    text(&r.reason),
                    r.count.to_string(),
                ]
            }));
            out
        }
        _ => return None,
    })
}

/// `GET /console/policies`: the policies in force, readable.
#[derive(Template)]
#[template(path = "console/policies.html")]
pub struct PoliciesPage {
    frame: Frame,
    policies: PoliciesInForce,
    tunables: String,
}

/// The policies page.
pub async fn policies(
    State(state): State<AppState>,
    lang: Lang,
    OfficerSession(session): OfficerSession,
) -> Response {
    let frame = Frame::new(lang, "/console/policies", Some(&session), "policies");
    match policies::read(&state, &session.party).await {
        Ok(policies) => {
            let tunables = toml::to_string_pretty(&policies.tunables).unwrap_or_default();
            ok(&PoliciesPage {
                frame,
                policies,
                tunables,
            })
        }
        Err(problem) => problem_page(frame, problem),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::i18n::Lang;

    fn panel(running: Option<RunningView>) -> String {
        IntegrityPage {
            frame: Frame::new(Lang::En, "/console/integrity", None, "integrity"),
            tree_size: 10,
            origin: "example/audit".into(),
            log_key: "example/audit+00000000+AA==".into(),
            checkpoint: None,
            last: None,
            running,
        }
        .render()
        .unwrap()
    }

    #[test]
    fn a_running_verification_shows_its_progress_and_the_page_refreshes_itself() {
        let html = panel(Some(RunningView {
            checked: 4_000,
            total: 10_000,
            percent: 40,
        }));
        assert!(html.contains(r#"<progress id="progress" max="100" value="40">"#));
        assert!(html.contains("4000 / 10000"));
        assert!(html.contains(r#"<meta http-equiv="refresh" content="1">"#));
        assert!(
            !html.contains(r#"id="verify""#),
            "no second run while one runs"
        );
    }

    #[test]
    fn a_cell_that_reads_as_a_formula_is_defused() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("-1-1"), "'-1-1");
        assert_eq!(spreadsheet_safe("IRR-2026"), "IRR-2026");
        assert_eq!(spreadsheet_safe("0.5000"), "0.5000");
    }

    #[test]
    fn an_idle_panel_offers_the_button_and_does_not_refresh() {
        let html = panel(None);
        assert!(html.contains(r#"id="verify""#));
        assert!(!html.contains("http-equiv"));
    }
}
