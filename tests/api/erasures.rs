//! Erasure pushed to every recipient: an airline shown a contact is asked to erase it
//! when the traveller withdraws, the agency replaces the contact or the record is
//! purged, acknowledges it once, and an
//! unacknowledged request past its deadline is listed to officers and the agency.

use crate::fakes::FakeHttp;
use crate::helpers::{assert_problem, Engine, HeldLog, TestApp};
use crate::relay::with_relay;
use crate::telling::webhook_of;
use passerelle::policy::engine::Policies;
use serde_json::{json, Value};

crate::on_both_engines_with_engine!(
    a_withdrawal_after_a_reveal_asks_the_airline_to_erase_and_it_acknowledges_once,
    an_unacknowledged_request_is_listed_to_officers_and_the_agency_past_its_deadline,
    a_purge_asks_the_airline_to_erase_what_it_was_shown,
    a_new_version_with_another_contact_asks_the_airline_to_erase_the_old_one,
);

/// The period of the officer's report around the test clock.
const REPORT: &str = "/v1/audit/reports?since=2026-11-01T00:00:00Z&until=2027-01-31T00:00:00Z";

/// Marie's contact revealed to AF: the token's id.
async fn revealed(app: &TestApp) -> String {
    let token = app.granted_token().await;
    let released = app.redeem(&app.airline.api_key, &token).await;
    assert_eq!(released.status(), 200);
    let released: Value = released.json().await.unwrap();
    released["token_id"].as_str().unwrap().to_string()
}

async fn requests_of(app: &TestApp, key: &str) -> Vec<Value> {
    let listed = app.get_json("/v1/erasure-requests", key).await;
    listed["erasure_requests"].as_array().unwrap().clone()
}

async fn acknowledge(app: &TestApp, key: &str, id: &str) -> reqwest::Response {
    app.post(
        &format!("/v1/erasure-requests/{id}/acknowledgement"),
        key,
        &json!({}),
    )
    .await
}

async fn a_withdrawal_after_a_reveal_asks_the_airline_to_erase_and_it_acknowledges_once(
    engine: Engine,
) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    let hook = FakeHttp::start().await;
    let registered = app
        .put(
            "/v1/airline/webhook",
            &app.airline.api_key,
            &json!({"url": hook.url}),
        )
        .await;
    assert_eq!(registered.status(), 201);
    let secret: Value = registered.json().await.unwrap();
    let secret = secret["secret"].as_str().unwrap().to_string();
    let token_id = revealed(app).await;

    app.withdraw_first_record().await;
    r.deliver().await;

    // The airline's webhook gets one signed event: the token, the traveller's
    // pseudonymous id, the reason and the deadline, never the contact.
    let pushes: Vec<_> = hook
        .received()
        .into_iter()
        .filter(|p| p.body.contains("contact.erasure_required"))
        .collect();
    assert_eq!(pushes.len(), 1, "one request per contact shown");
    let header = pushes[0].headers["passerelle-signature"].to_str().unwrap();
    let at: i64 = header.split(',').next().unwrap()[2..].parse().unwrap();
    assert!(passerelle::workers::relay::webhook::verify(
        secret.as_bytes(),
        header,
        &pushes[0].body,
        at,
        300
    ));
    assert!(
        !pushes[0].body.contains(crate::helpers::MOBILE),
        "never the contact"
    );
    let event: Value = serde_json::from_str(&pushes[0].body).unwrap();
    assert_eq!(event["type"], "contact.erasure_required");
    let request = &event["erasure_request"];
    assert_eq!(request["token_id"], token_id.as_str());
    assert_eq!(request["reason"], "consent_withdrawn");
    assert_eq!(request["overdue"], false);
    let requested = time::OffsetDateTime::parse(
        request["requested_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let deadline = time::OffsetDateTime::parse(
        request["deadline"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(deadline - requested, time::Duration::hours(72));

    // The airline lists it; another airline neither sees nor acknowledges it.
    let listed = requests_of(app, &app.airline.api_key).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], request["id"]);
    let id = request["id"].as_str().unwrap();
    assert!(requests_of(app, &app.other_airline.api_key)
        .await
        .is_empty());
    assert_problem(
        acknowledge(app, &app.other_airline.api_key, id).await,
        404,
        "erasure-request-not-found",
    )
    .await;

    // Acknowledged once: the second call changes nothing.
    let first = acknowledge(app, &app.airline.api_key, id).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["recorded"], true);
    assert!(first["erasure_request"]["acknowledged_at"].is_string());
    let again: Value = acknowledge(app, &app.airline.api_key, id)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["recorded"], false);
    assert!(again.get("audit_index").is_none());
    assert_eq!(
        again["erasure_request"]["acknowledged_at"],
        first["erasure_request"]["acknowledged_at"]
    );

    // Both audited, with the token and the traveller and no contact.
    let entries = app.audit_entries().await;
    let asked: Vec<_> = entries
        .iter()
        .filter(|e| e["action"] == "erasure_request")
        .collect();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["reason"], "consent_withdrawn");
    assert_eq!(asked[0]["token_id"], token_id.as_str());
    assert_eq!(asked[0]["airline_id"], app.airline.id.as_str());
    assert_eq!(asked[0]["index"], request["audit_index"]);
    let acknowledged: Vec<_> = entries
        .iter()
        .filter(|e| e["action"] == "erasure_acknowledgement")
        .collect();
    assert_eq!(acknowledged.len(), 1, "acknowledged once");
    assert_eq!(acknowledged[0]["index"], first["audit_index"]);
    assert!(!serde_json::to_string(&entries)
        .unwrap()
        .contains(crate::helpers::MOBILE));
}

async fn an_unacknowledged_request_is_listed_to_officers_and_the_agency_past_its_deadline(
    engine: Engine,
) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    // The agency's webhook is registered; the airline has none and reads its list.
    let agency_hook = FakeHttp::start().await;
    webhook_of(app, &app.agency.party.api_key, &agency_hook).await;
    revealed(app).await;
    app.withdraw_first_record().await;
    let id = requests_of(app, &app.airline.api_key).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let report = app.get_json(REPORT, &app.officer.api_key).await;
    assert_eq!(report["erasures_overdue"], json!([]), "not yet due");

    app.clock.advance(time::Duration::hours(73));
    let report = app.get_json(REPORT, &app.officer.api_key).await;
    let overdue = report["erasures_overdue"].as_array().unwrap();
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0]["id"], id.as_str());
    assert_eq!(overdue[0]["overdue"], true);
    let receipts = app
        .get_json("/v1/receipts", &app.agency.party.api_key)
        .await;
    assert_eq!(receipts["erasures_overdue"][0]["id"], id.as_str());
    let others = app
        .get_json("/v1/receipts", &app.other_agency.party.api_key)
        .await;
    assert_eq!(
        others["erasures_overdue"],
        json!([]),
        "only its own clients"
    );

    // The officer's console lists it too, and its table downloads.
    let mut officer = crate::pages::Visitor::new(app);
    officer.sign_in(&app.officer.api_key).await;
    let period = "since=2026-11-01&until=2027-01-31";
    let page = officer.text(&format!("/console/reports?{period}")).await;
    let section = page
        .split("id=\"erasures-overdue\"")
        .nth(1)
        .expect("the section");
    assert!(
        section.contains(overdue[0]["traveller_id"].as_str().unwrap()),
        "{section}"
    );
    let csv = officer
        .get(&format!("/console/reports/erasures-overdue.csv?{period}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        csv.contains(overdue[0]["token_id"].as_str().unwrap()),
        "{csv}"
    );

    // Acknowledged late, it leaves the lists.
    assert_eq!(
        acknowledge(app, &app.airline.api_key, &id).await.status(),
        200
    );
    let report = app.get_json(REPORT, &app.officer.api_key).await;
    assert_eq!(report["erasures_overdue"], json!([]));
}

async fn a_purge_asks_the_airline_to_erase_what_it_was_shown(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    let token_id = revealed(app).await;
    app.clock.advance(time::Duration::days(40));
    passerelle::workers::sweeper::sweep(&app.state)
        .await
        .unwrap();
    let listed = requests_of(app, &app.airline.api_key).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["reason"], "record_purged");
    assert_eq!(listed[0]["token_id"], token_id.as_str());
    // A token granted but never redeemed showed nothing: no request for it.
    assert!(requests_of(app, &app.other_airline.api_key)
        .await
        .is_empty());
}

async fn a_new_version_with_another_contact_asks_the_airline_to_erase_the_old_one(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    let token_id = revealed(app).await;

    // A new version with the same contact (a later validity) asks nothing.
    let mut same = app.statement();
    same["consent"]["valid_until"] = json!("2027-06-01T00:00:00Z");
    let stored = app.upload(&same).await;
    assert_eq!(stored.status(), 201);
    let stored: Value = stored.json().await.unwrap();
    assert_eq!(stored["supersedes"].as_array().unwrap().len(), 1);
    assert!(requests_of(app, &app.airline.api_key).await.is_empty());

    // A new number: the airline holds the old one, and is asked to erase it, once.
    let mut moved = app.statement();
    moved["traveller"]["mobile"] = json!("+33698765432");
    assert_eq!(app.upload(&moved).await.status(), 201);
    let listed = requests_of(app, &app.airline.api_key).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["reason"], "contact_changed");
    assert_eq!(listed[0]["token_id"], token_id.as_str());
    passerelle::workers::sweeper::sweep(&app.state)
        .await
        .unwrap();
    assert_eq!(
        requests_of(app, &app.airline.api_key).await.len(),
        1,
        "the sweeper's catch-up asks nothing twice"
    );
}

/// The log's `erasure_request` entries about `token_id`.
async fn erasure_entries(app: &TestApp, token_id: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_entries WHERE action = 'erasure_request' AND token_id = $1",
    )
    .bind(token_id)
    .fetch_one(app.store.reader())
    .await
    .unwrap()
}

#[tokio::test]
async fn two_brokers_catching_up_at_once_ask_once_and_log_it_once() {
    let Some(app) = TestApp::postgres().await else {
        return;
    };
    let (_, second) = app.another_broker().await;
    let token_id = revealed(&app).await;
    let mut moved = app.statement();
    moved["traveller"]["mobile"] = json!("+33698765432");
    assert_eq!(app.upload(&moved).await.status(), 201);
    // As a broker stopped between the upload and its asking leaves it: not asked yet.
    sqlx::query("DELETE FROM erasure_requests")
        .execute(app.store.reader())
        .await
        .unwrap();
    let logged = erasure_entries(&app, &token_id).await;

    // Both brokers' catch-ups look while another write holds the log.
    let held = HeldLog::take(&app).await;
    let (a, b, ()) = tokio::join!(
        passerelle::service::erasures::ask_for_changed_contacts(&app.state, "catch-up-a", None),
        passerelle::service::erasures::ask_for_changed_contacts(&second, "catch-up-b", None),
        held.release_once_waited_on(&app, 2)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1, "one of the two asks");
    assert_eq!(requests_of(&app, &app.airline.api_key).await.len(), 1);
    assert_eq!(
        erasure_entries(&app, &token_id).await,
        logged + 1,
        "the log records the one request, not one per broker"
    );
}
