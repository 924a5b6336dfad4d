//! `GET /console/reports`: the reports of a period as tables and charts, and each
//! table as CSV.

use crate::service::export::spreadsheet_safe;
use crate::service::reports::{self, CoverageRow, Period, PeriodQuery, Report};
use crate::service::AppState;
use crate::web::charts::{self, Bar, Series};
use crate::web::form;
use crate::web::i18n::Lang;
use crate::web::session::OfficerSession;
use crate::web::{ok, problem_page, Frame};
use crate::wire::problem::{Problem, ProblemKind};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;

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

impl ReportsPage {
    /// The page of a report: its tables, and its charts drawn.
    fn of(frame: Frame, report: Report) -> Self {
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
        Self {
            frame,
            since,
            until,
            period_query,
            report,
            coverage_agency_chart,
            coverage_airline_chart,
            over_time_chart,
            refusals_chart,
        }
    }
}

/// The period a report page names; by default the 30 days up to and including today.
fn period_of(state: &AppState, query: Option<&str>) -> Result<Period, Problem> {
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
    ok(&ReportsPage::of(frame, report))
}

/// `GET /console/reports/{name}.csv`: one table of the report, as CSV.
pub async fn report_csv(
    State(state): State<AppState>,
    lang: Lang,
    OfficerSession(session): OfficerSession,
    Path(name): Path<String>,
    uri: Uri,
) -> Response {
    let table = async {
        let report = reports::build(&state, period_of(&state, uri.query())?).await?;
        let rows = name
            .strip_suffix(".csv")
            .and_then(|n| report_table(&report, n));
        let no_such = "There is no report table by that name.";
        let rows = rows.ok_or_else(|| Problem::new(ProblemKind::NotFound, no_such))?;
        let filename = format!(
            "passerelle-{}-{}-{}.csv",
            name.trim_end_matches(".csv"),
            report.since.get(..10).unwrap_or_default(),
            report.until.get(..10).unwrap_or_default(),
        );
        Ok::<_, Problem>((filename, csv_of(&rows)?))
    };
    match table.await {
        Ok((filename, bytes)) => {
            let disposition = format!("attachment; filename=\"{filename}\"");
            let headers = [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, disposition),
            ];
            (StatusCode::OK, headers, bytes).into_response()
        }
        Err(problem) => {
            let frame = Frame::new(lang, "/console/reports", Some(&session), "reports");
            problem_page(frame, problem)
        }
    }
}

/// A table as CSV, each cell defused for spreadsheets.
fn csv_of(rows: &[Vec<String>]) -> Result<Vec<u8>, Problem> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        let row = row.iter().map(|cell| spreadsheet_safe(cell).into_owned());
        writer
            .write_record(row)
            .map_err(|_| Problem::internal("CSV writer failed"))?;
    }
    Ok(writer.into_inner().unwrap_or_default())
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
            "reached".into(),
            "unreachable".into(),
        ]];
        out.extend(rows.iter().map(|r| {
            vec![
                r.party.clone(),
                r.travellers.to_string(),
                r.with_contact.to_string(),
                format!("{:.4}", r.share),
                r.reached.to_string(),
                r.unreachable.to_string(),
            ]
        }));
        out
    };
    let header = |names: &[&str]| vec![names.iter().map(|n| n.to_string()).collect::<Vec<_>>()];
    Some(match name {
        "coverage-by-agency" => coverage(&report.coverage.by_agency),
        "coverage-by-airline" => coverage(&report.coverage.by_airline),
        "coverage-by-flight" => coverage(&report.coverage.by_flight),
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
                "declared_at",
                "first_request_at",
                "first_release_at",
                "last_release_at",
                "seconds_to_first_release",
                "seconds_to_last_release",
                "first_message_delivered_at",
                "last_message_delivered_at",
                "last_redeemed_at",
                "seconds_to_first_message",
                "seconds_to_last_message",
                "seconds_to_last_redemption",
                "releases",
            ]);
            let secs = |v: Option<f64>| v.map(|s| format!("{s:.3}")).unwrap_or_default();
            out.extend(report.disruptions.iter().map(|d| {
                vec![
                    text(&d.airline),
                    d.event_reference.clone(),
                    text(&d.declared_at),
                    text(&d.first_request_at),
                    text(&d.first_release_at),
                    text(&d.last_release_at),
                    secs(d.seconds_to_first_release),
                    secs(d.seconds_to_last_release),
                    text(&d.first_message_delivered_at),
                    text(&d.last_message_delivered_at),
                    text(&d.last_redeemed_at),
                    secs(d.seconds_to_first_message),
                    secs(d.seconds_to_last_message),
                    secs(d.seconds_to_last_redemption),
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
        "budget-alerts" => {
            let mut out = header(&["airline", "day", "budget", "used", "limit", "alerted_at"]);
            out.extend(report.budget_alerts.iter().map(|a| {
                vec![
                    a.airline_id.clone(),
                    a.day.clone(),
                    a.budget.as_str().to_string(),
                    a.used.to_string(),
                    a.limit.to_string(),
                    a.alerted_at.clone(),
                ]
            }));
            out
        }
        "erasures-overdue" => {
            let mut out = header(&[
                "airline_id",
                "traveller_id",
                "token_id",
                "reason",
                "requested_at",
                "deadline",
                "audit_index",
            ]);
            out.extend(report.erasures_overdue.iter().map(|e| {
                vec![
                    e.airline_id.clone(),
                    e.traveller_id.clone(),
                    e.token_id.clone(),
                    e.reason.as_str().to_string(),
                    e.requested_at.clone(),
                    e.deadline.clone(),
                    e.audit_index.to_string(),
                ]
            }));
            out
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_that_reads_as_a_formula_is_defused() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("-1-1"), "'-1-1");
        assert_eq!(spreadsheet_safe("IRR-2026"), "IRR-2026");
        assert_eq!(spreadsheet_safe("0.5000"), "0.5000");
    }
}
