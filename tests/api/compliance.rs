//! What compliance officers ask of the log: searches with totals, exports with their
//! checkpoint, and reports over a period. Nothing personal appears in any of them.

use crate::helpers::{assert_problem, TestApp, AGENCY_IATA, EMAIL, FLIGHT_DATE, MOBILE};
use crate::log::{busy_log, log_key};
use crate::on_both_engines;
use base64::Engine;
use passerelle::audit::checkpoint::Checkpoint;
use passerelle::audit::AuditEntry;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_engines!(
    officers_search_by_each_filter_and_get_the_total,
    the_search_pages_by_cursor_and_refuses_bad_filters_by_name,
    an_export_streams_the_period_with_the_checkpoint_that_covers_it,
    a_report_counts_coverage_releases_refusals_disruptions_and_relay_outcomes,
    an_export_defuses_the_cells_a_spreadsheet_would_run,
);

async fn total(app: &TestApp, query: &str) -> i64 {
    let page = app
        .get_json(&format!("/v1/audit/entries?{query}"), &app.officer.api_key)
        .await;
    let total = page["total"].as_i64().unwrap();
    if total <= 100 {
        assert_eq!(
            page["entries"].as_array().unwrap().len() as i64,
            total,
            "{query}"
        );
    }
    total
}

async fn officers_search_by_each_filter_and_get_the_total(app: TestApp) {
    let release = busy_log(&app).await;
    let entries = app.audit_entries().await;
    let traveller = release["traveller_id"]
        .as_str()
        .unwrap_or_else(|| entries[6]["traveller_id"].as_str().unwrap());
    let booking = entries[6]["booking_id"].as_str().unwrap();
    assert_eq!(total(&app, "").await, 8);
    assert_eq!(total(&app, "action=consent_upload").await, 2);
    assert_eq!(total(&app, "action=disruption_declaration").await, 1);
    assert_eq!(total(&app, "action=token_request").await, 3);
    assert_eq!(total(&app, "outcome=refused").await, 2);
    assert_eq!(total(&app, "action=token_request&outcome=refused").await, 1);
    assert_eq!(total(&app, "airline=AF").await, 6);
    assert_eq!(total(&app, "airline=KL").await, 0);
    assert_eq!(
        total(&app, "airline=ZZ").await,
        0,
        "an unknown airline matches nothing"
    );
    let count =
        |field: &str, value: &str| entries.iter().filter(|e| e[field] == value).count() as i64;
    let agency_entries = count("agency_id", &app.agency.party.id);
    assert!(
        agency_entries >= 6,
        "uploads, grants, the release and its replay"
    );
    assert_eq!(
        total(&app, &format!("agency={AGENCY_IATA}")).await,
        agency_entries
    );
    assert_eq!(
        total(&app, &format!("booking_id={booking}")).await,
        count("booking_id", booking)
    );
    let traveller_entries = count("traveller_id", traveller);
    assert!(traveller_entries >= 3, "upload, grant, release");
    assert_eq!(
        total(&app, &format!("traveller_id={traveller}")).await,
        traveller_entries
    );
    assert_eq!(total(&app, "purpose=cancellation").await, 4);
    assert_eq!(total(&app, "purpose=marketing").await, 1);
    assert_eq!(total(&app, "event_category=cancellation").await, 6);
    let disruption = app.disruption().await;
    assert_eq!(
        total(&app, &format!("event_reference={disruption}")).await,
        6,
        "the declaration, the asks and the uses under it"
    );
    assert_eq!(
        total(
            &app,
            "since=2026-11-24T10:00:00Z&until=2026-11-24T10:00:01Z"
        )
        .await,
        8
    );
    assert_eq!(total(&app, "since=2026-11-25T00:00:00Z").await, 0);
    let body = app
        .get("/v1/audit/entries", &app.officer.api_key)
        .await
        .text()
        .await
        .unwrap();
    for secret in [MOBILE, EMAIL, "Dupont", "DUPONT"] {
        assert!(!body.contains(secret), "`{secret}` appears in the search");
    }
}

async fn the_search_pages_by_cursor_and_refuses_bad_filters_by_name(app: TestApp) {
    busy_log(&app).await;
    let first = app
        .get_json(
            "/v1/audit/entries?action=token_request&limit=2",
            &app.officer.api_key,
        )
        .await;
    assert_eq!(first["total"], 3);
    assert_eq!(first["entries"].as_array().unwrap().len(), 2);
    let after = first["next_after"].as_i64().unwrap();
    let second = app
        .get_json(
            &format!("/v1/audit/entries?action=token_request&limit=2&after={after}"),
            &app.officer.api_key,
        )
        .await;
    assert_eq!(second["entries"].as_array().unwrap().len(), 1);
    assert!(second.get("next_after").is_none());
    for (query, field) in [
        ("action=sell", "action"),
        ("outcome=maybe", "outcome"),
        ("since=yesterday", "since"),
        (
            "since=2026-11-25T00:00:00Z&until=2026-11-24T00:00:00Z",
            "until",
        ),
    ] {
        let body = assert_problem(
            app.get(&format!("/v1/audit/entries?{query}"), &app.officer.api_key)
                .await,
            422,
            "invalid-field",
        )
        .await;
        assert_eq!(body["errors"][0]["field"], field, "{query}");
    }
    assert_problem(
        app.get("/v1/audit/entries", &app.agency.party.api_key)
            .await,
        403,
        "wrong-party-kind",
    )
    .await;
}

async fn an_export_streams_the_period_with_the_checkpoint_that_covers_it(app: TestApp) {
    busy_log(&app).await;
    let period = "since=2026-11-01T00:00:00Z&until=2026-12-01T00:00:00Z";
    // An export is proved against a checkpoint; reading one never signs it.
    assert_problem(
        app.get(&format!("/v1/audit/export?{period}"), &app.officer.api_key)
            .await,
        404,
        "no-checkpoint",
    )
    .await;
    app.checkpoint().await;
    let response = app
        .get(&format!("/v1/audit/export?{period}"), &app.officer.api_key)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let note = base64::engine::general_purpose::STANDARD
        .decode(response.headers()["passerelle-checkpoint"].as_bytes())
        .unwrap();
    let checkpoint =
        Checkpoint::open(std::str::from_utf8(&note).unwrap(), &log_key(&app).await).unwrap();
    assert_eq!(checkpoint.size, 8);
    assert_eq!(response.headers()["passerelle-checkpoint-size"], "8");
    let body = response.text().await.unwrap();
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8);
    for line in &lines {
        let leaf = line["leaf_hash"].as_str().unwrap().to_string();
        let mut entry = line.clone();
        entry.as_object_mut().unwrap().remove("leaf_hash");
        let entry: AuditEntry = serde_json::from_value(entry).unwrap();
        assert_eq!(passerelle::domain::ids::hex(&entry.leaf_hash()), leaf);
    }
    for secret in [MOBILE, EMAIL, "Dupont"] {
        assert!(!body.contains(secret));
    }

    let csv = app
        .get(
            &format!("/v1/audit/export?{period}&format=csv"),
            &app.officer.api_key,
        )
        .await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(reader.headers().unwrap().get(0), Some("index"));
    assert_eq!(reader.records().count(), 8);

    let empty = app
        .get(
            "/v1/audit/export?since=2027-01-01T00:00:00Z&until=2027-02-01T00:00:00Z",
            &app.officer.api_key,
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(empty, "");
    let body = assert_problem(
        app.get("/v1/audit/export?format=xml", &app.officer.api_key)
            .await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "format");
}

async fn a_report_counts_coverage_releases_refusals_disruptions_and_relay_outcomes(app: TestApp) {
    busy_log(&app).await;
    // One of the two travellers withdraws: one of two remains reachable.
    let records = app
        .get_json("/v1/consents?limit=10", &app.agency.party.api_key)
        .await;
    let id = records["records"][0]["consent_id"]
        .as_str()
        .or_else(|| records["consents"][0]["consent_id"].as_str())
        .expect("a record id")
        .to_string();
    let withdrawn = app
        .post(
            &format!("/v1/consents/{id}/withdrawal"),
            &app.agency.party.api_key,
            &json!({}),
        )
        .await;
    assert_eq!(withdrawn.status(), StatusCode::OK);

    let report = app
        .get_json(
            "/v1/audit/reports?since=2026-11-01T00:00:00Z&until=2026-12-31T00:00:00Z",
            &app.officer.api_key,
        )
        .await;
    assert_eq!(
        report["coverage"]["by_agency"],
        json!([{"party": AGENCY_IATA, "travellers": 2, "with_contact": 1, "share": 0.5, "reached": 0, "unreachable": 0}])
    );
    // By flight, a consent counts only where it names the carrier (Marie's names AF, not
    // KL), and the flights whose travellers can least be reached come first.
    assert_eq!(
        report["coverage"]["by_flight"],
        json!([
            {"party": format!("KL1002/{FLIGHT_DATE}"), "travellers": 2, "with_contact": 0, "share": 0.0, "reached": 0, "unreachable": 0},
            {"party": format!("AF1234/{FLIGHT_DATE}"), "travellers": 2, "with_contact": 1, "share": 0.5, "reached": 0, "unreachable": 0}
        ])
    );
    assert_eq!(
        report["coverage"]["by_airline"],
        json!([
            {"party": "AF", "travellers": 2, "with_contact": 1, "share": 0.5, "reached": 0, "unreachable": 0},
            {"party": "KL", "travellers": 2, "with_contact": 1, "share": 0.5, "reached": 0, "unreachable": 0}
        ])
    );
    assert_eq!(
        report["releases"],
        json!([{"purpose": "cancellation", "event_category": "cancellation", "grants": 2, "releases": 1, "relays": 0}])
    );
    assert_eq!(
        report["refusals"],
        json!([
            {"action": "token_redemption", "reason": "token_used", "count": 1},
            {"action": "token_request", "reason": "purpose_not_operational", "count": 1}
        ])
    );
    let disruption = &report["disruptions"][0];
    assert_eq!(disruption["airline"], "AF");
    assert_eq!(disruption["event_reference"], app.disruption().await);
    assert_eq!(disruption["releases"], 1);
    assert_eq!(disruption["seconds_to_first_release"], 0.0);
    assert_eq!(report["relay"], json!([]));

    let outside = app
        .get_json(
            "/v1/audit/reports?since=2027-01-01T00:00:00Z&until=2027-02-01T00:00:00Z",
            &app.officer.api_key,
        )
        .await;
    assert_eq!(outside["coverage"]["by_agency"], json!([]));
    assert_eq!(outside["refusals"], json!([]));
    assert_problem(
        app.get("/v1/audit/reports", &app.airline.api_key).await,
        403,
        "wrong-party-kind",
    )
    .await;
}

async fn an_export_defuses_the_cells_a_spreadsheet_would_run(app: TestApp) {
    // A caller names its own request id, and an id may start with `-`: in a
    // spreadsheet, `-HYPERLINK(…)`-like cells run.
    let signed = app.signed(&app.agency.jwk, &app.statement());
    let response = app
        .client
        .post(format!("{}/v1/consents", app.url))
        .bearer_auth(&app.agency.party.api_key)
        .header("x-request-id", "-2-3")
        .json(&signed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    app.checkpoint().await;
    let csv = app
        .get(
            "/v1/audit/export?since=2026-11-01T00:00:00Z&until=2026-12-01T00:00:00Z&format=csv",
            &app.officer.api_key,
        )
        .await
        .text()
        .await
        .unwrap();
    let row = csv.lines().nth(1).expect("the upload's row");
    assert!(row.contains(",'-2-3,"), "{row}");
    assert!(!row.contains(",-2-3,"), "{row}");
}

/// A broker that counts a search's matching entries no further than five.
mod counted {
    use super::*;
    use crate::helpers::Engine;
    use crate::pages::Visitor;
    use passerelle::service::Settings;

    crate::on_both_engines_with_engine!(
        a_search_counts_its_total_up_to_the_brokers_limit_and_says_when_more_match,
    );

    async fn a_search_counts_its_total_up_to_the_brokers_limit_and_says_when_more_match(
        engine: Engine,
    ) {
        let settings = Settings {
            search_total_limit: 5,
            ..crate::helpers::test_settings()
        };
        let Some(app) = TestApp::with(engine, settings).await else {
            return;
        };
        busy_log(&app).await;
        let search = |query: &'static str| {
            let app = &app;
            async move {
                app.get_json(&format!("/v1/audit/entries?{query}"), &app.officer.api_key)
                    .await
            }
        };

        // Eight entries match: the total stops at five and says there are more.
        let all = search("").await;
        assert_eq!(all["total"], 5);
        assert_eq!(all["total_exact"], false);
        assert_eq!(all["tree_size"], 8);
        assert_eq!(
            all["entries"].as_array().unwrap().len(),
            8,
            "every entry is still listed: only the count stops"
        );
        // Within the limit the count is exact.
        let grants = search("action=token_request").await;
        assert_eq!(grants["total"], 3);
        assert_eq!(grants["total_exact"], true);
        let four = search("purpose=cancellation").await;
        assert_eq!(
            (four["total"].as_i64(), four["total_exact"].as_bool()),
            (Some(4), Some(true))
        );
        let six = search("airline=AF&limit=2").await;
        assert_eq!(six["total"], 5, "six match");
        assert_eq!(six["total_exact"], false);
        assert_eq!(six["entries"].as_array().unwrap().len(), 2);
        assert!(six["next_after"].is_i64(), "the pages go on past the count");
        let none = search("airline=ZZ").await;
        assert_eq!(
            (none["total"].as_i64(), none["total_exact"].as_bool()),
            (Some(0), Some(true))
        );

        // The console says the same: "5+".
        let mut officer = Visitor::new(&app);
        officer.sign_in(&app.officer.api_key).await;
        let page = officer.get("/console").await.text().await.unwrap();
        assert!(page.contains("<strong>5+</strong>"), "{page}");
        let page = officer
            .get("/console?action=token_request")
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains("<strong>3</strong>"), "{page}");
    }
}
