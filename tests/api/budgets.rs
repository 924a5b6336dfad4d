//! No pretext harvesting: each UTC day an airline may declare only a share of its
//! schedule disrupted and have only so many contacts revealed (`[budgets]` in the
//! tunables). Beyond a budget it is refused with the budget's rule; past the alert
//! level, officers (report, metric) and the agencies concerned (webhook event) are told.

use crate::helpers::{assert_problem, Engine, TestApp, FLIGHT_DATE};
use crate::pages::Visitor;
use crate::relay::with_relay;
use crate::telling::{disruption_events, webhook_of};
use passerelle::policy::engine::Policies;
use passerelle::service::Settings;
use serde_json::{json, Value};
use std::sync::Arc;

crate::on_both_engines_with_engine!(
    an_airline_declaring_beyond_its_days_budget_is_refused_and_officers_and_agencies_are_alerted,
    a_grant_beyond_the_days_reveal_budget_is_refused_whole,
    brokers_on_one_database_count_one_budget,
    travellers_asked_at_once_at_two_brokers_are_revealed_up_to_the_budget_exactly,
);

/// The shipped policies with a small schedule's budgets: two disrupted flights a day
/// (alerting at the first), and `reveals` reveals.
fn tight(reveals: u32) -> Policies {
    let mut policies = Policies::built_in().unwrap();
    let budgets = &mut policies.tunables.budgets;
    budgets.disrupted_flights_percent = 1;
    budgets.disrupted_flights_min = 2;
    budgets.alert_percent = 50;
    budgets.reveals_per_day = reveals;
    policies
}

/// A broker with [`tight`] budgets.
async fn tight_broker(engine: Engine, reveals: u32) -> Option<TestApp> {
    let settings = Settings {
        policies: Arc::new(tight(reveals)),
        ..crate::helpers::test_settings()
    };
    TestApp::with(engine, settings).await
}

fn af(number: &str) -> Value {
    json!({"carrier": "AF", "flight_number": number, "date": FLIGHT_DATE})
}

/// The period of the officer's report around the test clock.
const REPORT: &str = "/v1/audit/reports?since=2026-11-01T00:00:00Z&until=2026-12-31T00:00:00Z";

async fn an_airline_declaring_beyond_its_days_budget_is_refused_and_officers_and_agencies_are_alerted(
    engine: Engine,
) {
    let Some(r) = with_relay(engine, tight(1000)).await else {
        return;
    };
    let app = &r.app;
    app.upload_default().await;
    let hook = crate::fakes::FakeHttp::start().await;
    let secret = webhook_of(app, &app.agency.party.api_key, &hook).await;

    // Two flights fit the day's budget; the first passes the alert level.
    app.declared(&app.airline.api_key, &af("1234")).await;
    app.declared(&app.airline.api_key, &af("1240")).await;
    let third = app
        .post(
            "/v1/disruptions",
            &app.airline.api_key,
            &json!({
                "flights": [af("1250")],
                "category": "cancellation",
                "reference": "IRR-THIRD",
                "occurred_at": "2026-11-24T09:00:00Z"
            }),
        )
        .await;
    assert!(third.headers().contains_key("retry-after"));
    let problem = assert_problem(third, 429, "disruption-budget-exceeded").await;
    assert_eq!(problem["rule"], "disrupted-flights-per-day");
    assert_eq!(problem["used_today"], 2);
    assert_eq!(problem["budget"], 2);

    // Nothing of the refused declaration is stored; its refusal is audited.
    let listed = app.get_json("/v1/disruptions", &app.airline.api_key).await;
    assert_eq!(listed["disruptions"].as_array().unwrap().len(), 2);
    let report = app.get_json(REPORT, &app.officer.api_key).await;
    let refusals = report["refusals"].as_array().unwrap();
    assert!(
        refusals
            .iter()
            .any(|r| r["action"] == "disruption_declaration"
                && r["reason"] == "disruption_budget_exceeded"
                && r["count"] == 1),
        "{refusals:?}"
    );

    // Officers: the alert in the report and the metric.
    let alerts = report["budget_alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["airline_id"], app.airline.id.as_str());
    assert_eq!(alerts[0]["budget"], "disrupted_flights");
    assert_eq!(alerts[0]["used"], 2);
    assert_eq!(alerts[0]["limit"], 2);
    assert_eq!(alerts[0]["day"], "2026-11-24");
    let metrics = app.get("/metrics", &app.officer.api_key).await;
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("passerelle_budget_alerts_total{budget=\"disrupted_flights\"} 1"),
        "{metrics}"
    );

    // The console's reports page lists it, and its table downloads.
    let mut officer = Visitor::new(app);
    officer.sign_in(&app.officer.api_key).await;
    let period = "since=2026-11-01&until=2026-12-31";
    let page = officer.text(&format!("/console/reports?{period}")).await;
    let section = &page[page
        .find("id=\"budget-alerts\"")
        .expect("the alerts' section")..];
    assert!(section.contains("disrupted_flights"), "{section}");
    let csv = officer
        .get(&format!("/console/reports/budget-alerts.csv?{period}"))
        .await;
    let csv = csv.text().await.unwrap();
    assert!(
        csv.starts_with("airline,day,budget,used,limit,alerted_at"),
        "{csv}"
    );
    assert!(csv.contains(",2026-11-24,disrupted_flights,2,2,"), "{csv}");

    // The agency sees the flag on its page of open disruptions…
    let mut agency = Visitor::new(app);
    agency.sign_in(&app.agency.party.api_key).await;
    let page = agency
        .get("/agency/disruptions")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("budget-alert"), "{page}");

    // …and the agency whose client is on the first flight is told with its event.
    r.deliver().await;
    let events = disruption_events(&hook, &secret);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["budget_alerts"][0]["budget"], "disrupted_flights");

    // Another airline's budget is its own; and the next UTC day starts again.
    let klm = app
        .declared(
            &app.other_airline.api_key,
            &json!({"carrier": "KL", "flight_number": "1002", "date": FLIGHT_DATE}),
        )
        .await;
    assert!(klm.starts_with("dis_"), "{klm}");
    app.clock.advance(time::Duration::days(1));
    app.declared(&app.airline.api_key, &af("1250")).await;
}

async fn a_grant_beyond_the_days_reveal_budget_is_refused_whole(engine: Engine) {
    let Some(app) = tight_broker(engine, 2).await else {
        return;
    };
    app.upload_default().await;
    let first = app
        .request_token(&app.airline.api_key, &app.token_request().await)
        .await;
    assert_eq!(first.status(), 201, "the day's first reveal");
    let flight = app
        .post(
            "/v1/flights/release-tokens",
            &app.airline.api_key,
            &app.flight_request("cancellation").await,
        )
        .await;
    assert_eq!(flight.status(), 200, "the flight's one reveal: the second");

    // The same traveller again, alone or with the whole flight: refused, audited.
    let again = app
        .request_token(&app.airline.api_key, &app.token_request().await)
        .await;
    let problem = assert_problem(again, 429, "reveal-budget-exceeded").await;
    assert_eq!(problem["rule"], "reveals-per-day");
    let flight = app
        .post(
            "/v1/flights/release-tokens",
            &app.airline.api_key,
            &app.flight_request("cancellation").await,
        )
        .await;
    assert!(flight.headers().contains_key("retry-after"));
    let problem = assert_problem(flight, 429, "reveal-budget-exceeded").await;
    assert_eq!(problem["used_today"], 2, "both grants were counted");
    let report = app.get_json(REPORT, &app.officer.api_key).await;
    let refused: i64 = report["refusals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["reason"] == "reveal_budget_exceeded")
        .map(|r| r["count"].as_i64().unwrap())
        .sum();
    assert_eq!(refused, 2);
    let alerts = report["budget_alerts"].as_array().unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a["budget"] == "reveals" && a["used"] == 2 && a["limit"] == 2),
        "{alerts:?}"
    );
}

/// A declaration of flight `number` as AF, at the broker at `url`.
async fn declare_at(app: &TestApp, url: &str, number: &str) -> reqwest::Response {
    app.client
        .post(format!("{url}/v1/disruptions"))
        .bearer_auth(&app.airline.api_key)
        .json(&json!({
            "flights": [af(number)],
            "category": "cancellation",
            "reference": format!("IRR-{number}"),
            "occurred_at": "2026-11-24T09:00:00Z",
            "tell": false
        }))
        .send()
        .await
        .unwrap()
}

async fn brokers_on_one_database_count_one_budget(engine: Engine) {
    let Some(app) = tight_broker(engine, 1000).await else {
        return;
    };
    let (second, _) = app.another_broker().await;
    // Three declarations at once, at two brokers, against a budget of two flights.
    let (a, b, c) = tokio::join!(
        declare_at(&app, &app.url, "1234"),
        declare_at(&app, &second, "1240"),
        declare_at(&app, &second, "1250"),
    );
    let mut statuses = [
        a.status().as_u16(),
        b.status().as_u16(),
        c.status().as_u16(),
    ];
    statuses.sort();
    assert_eq!(statuses, [201, 201, 429], "exactly the budget is declared");
    let listed = app.get_json("/v1/disruptions", &app.airline.api_key).await;
    assert_eq!(listed["disruptions"].as_array().unwrap().len(), 2);
}

/// A traveller's token request is checked against the day's reveal budget on the read
/// and charged in the write only while the budget holds a reveal. Six travellers asked
/// for at once, at two brokers on one database, against a budget of four: exactly
/// four tokens, two refusals naming the day's use, and the use stays at the budget.
async fn travellers_asked_at_once_at_two_brokers_are_revealed_up_to_the_budget_exactly(
    engine: Engine,
) {
    let Some(app) = tight_broker(engine, 4).await else {
        return;
    };
    let (second, _) = app.another_broker().await;
    let surnames = ["Dupont", "Martin", "Bernard", "Petit", "Robert", "Richard"];
    for (i, surname) in surnames.iter().enumerate() {
        let statement = app.statement_for(&format!("R-{i}"), surname, &format!("+336123450{i:02}"));
        assert_eq!(app.upload(&statement).await.status(), 201);
    }
    let template = app.token_request().await;
    let asks = surnames.iter().enumerate().map(|(i, surname)| {
        let mut request = template.clone();
        request["traveller"] = json!({"surname": surname.to_uppercase(), "given_name": "MARIE"});
        let url = if i % 2 == 0 { &app.url } else { &second };
        app.client
            .post(format!("{url}/v1/release-tokens"))
            .bearer_auth(&app.airline.api_key)
            .json(&request)
            .send()
    });
    let answers = futures_util::future::join_all(asks).await;
    let mut granted = 0;
    for answer in answers {
        let answer = answer.unwrap();
        if answer.status() == 201 {
            granted += 1;
            continue;
        }
        let problem = assert_problem(answer, 429, "reveal-budget-exceeded").await;
        assert_eq!(problem["used_today"], 4, "{problem}");
        assert_eq!(problem["budget"], 4, "{problem}");
    }
    assert_eq!(granted, 4, "exactly the budget is revealed");
    let used: i64 = sqlx::query_scalar("SELECT used FROM airline_budgets WHERE budget = 'reveals'")
        .fetch_one(app.store.reader())
        .await
        .unwrap();
    assert_eq!(used, 4, "refusals take nothing from the budget");
    let tokens: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM release_tokens")
        .fetch_one(app.store.reader())
        .await
        .unwrap();
    assert_eq!(tokens, 4);
}
