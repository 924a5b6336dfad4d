//! Per-flight token bursts: one request for a whole flight gives a token per traveller
//! whose consent allows it and, for every other traveller, the reason; each decision is
//! its own audit entry.

use crate::helpers::{assert_problem, TestApp, FLIGHT_DATE};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Seven travellers of AF1234 in every state, and one on another flight.
async fn seed_a_flight(app: &TestApp) -> BTreeMap<&'static str, String> {
    let mut ids = BTreeMap::new();
    let upload = |name: &'static str, statement: Value| async move {
        let response = app.upload(&statement).await;
        assert_eq!(response.status(), 201, "{name}");
        let body: Value = response.json().await.unwrap();
        (name, body)
    };
    let given = app.statement_for("R-1", "Dupont", "+33611111111");
    let mut refused = app.statement_for("R-2", "Martin", "+33622222222");
    refused["decision"] = json!("refused");
    refused["traveller"]
        .as_object_mut()
        .unwrap()
        .remove("mobile");
    refused["traveller"]
        .as_object_mut()
        .unwrap()
        .remove("email");
    let withdrawn = app.statement_for("R-3", "Bernard", "+33633333333");
    let mut expiring = app.statement_for("R-4", "Petit", "+33644444444");
    expiring["consent"]["valid_until"] = json!("2026-11-25T00:00:00Z");
    let mut other_airline = app.statement_for("R-5", "Robert", "+33655555555");
    other_airline["consent"]["recipients"] = json!(["KL"]);
    let mut delay_only = app.statement_for("R-6", "Richard", "+33666666666");
    delay_only["consent"]["purposes"] = json!(["delay"]);
    let mut email_only = app.statement_for("R-7", "Durand", "+33677777777");
    email_only["traveller"]
        .as_object_mut()
        .unwrap()
        .remove("mobile");
    email_only["consent"]["data_categories"] = json!(["email"]);
    let mut elsewhere = app.statement_for("R-8", "Leroy", "+33688888888");
    elsewhere["booking"]["record_locator"] = json!("XYZ789");
    elsewhere["booking"]["segments"] =
        json!([{"carrier": "AF", "flight_number": "2000", "date": FLIGHT_DATE}]);
    for (name, statement) in [
        ("given", given),
        ("refused", refused),
        ("withdrawn", withdrawn),
        ("expired", expiring),
        ("other_airline", other_airline),
        ("delay_only", delay_only),
        ("email_only", email_only),
        ("elsewhere", elsewhere),
    ] {
        let (name, body) = upload(name, statement).await;
        ids.insert(name, body["consent_id"].as_str().unwrap().to_string());
        if name == "withdrawn" {
            let path = format!("/v1/consents/{}/withdrawal", ids[name]);
            let r = app.post(&path, &app.agency.party.api_key, &json!({})).await;
            assert_eq!(r.status(), 200);
        }
    }
    app.clock.advance(time::Duration::days(2));
    ids
}

async fn one_request_answers_for_every_traveller_of_the_flight(app: TestApp) {
    seed_a_flight(&app).await;
    let request = app.flight_request("cancellation").await;
    let before = app.audit_entries().await.len();
    let response = app.flight_tokens(&app.airline.api_key, &request).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["counts"],
        json!({"travellers": 7, "granted": 2, "refused": 5})
    );
    let granted = body["granted"].as_array().unwrap();
    let channels: Vec<&Value> = granted.iter().map(|g| &g["channels"]).collect();
    assert!(channels.contains(&&json!(["sms", "email"])));
    assert!(
        channels.contains(&&json!(["email"])),
        "the email-only traveller gets an email token"
    );
    for token in granted {
        assert!(token["token"].as_str().unwrap().starts_with("pas_token_"));
        assert_eq!(token["record_locator"], "ABC123");
        assert_eq!(token["delivery"], "reveal");
        assert_eq!(token["uses"], 1);
    }
    let mut reasons: Vec<&str> = body["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    reasons.sort_unstable();
    assert_eq!(
        reasons,
        [
            "carrier_not_covered",
            "consent_expired",
            "consent_refused",
            "consent_withdrawn",
            "purpose_not_covered"
        ]
    );
    let refused = &body["refused"][0];
    assert!(refused["type"]
        .as_str()
        .unwrap()
        .starts_with("urn:passerelle:problem:"));
    assert!(refused["rule"].as_str().unwrap().starts_with("consent-"));

    // One audit entry per traveller, each naming the index the answer gave.
    let entries = app.audit_entries().await;
    assert_eq!(entries.len(), before + 7);
    for answer in granted.iter().chain(body["refused"].as_array().unwrap()) {
        let entry = &entries[answer["audit_index"].as_u64().unwrap() as usize];
        assert_eq!(entry["traveller_id"], answer["traveller_id"]);
        assert_eq!(entry["flight"], format!("AF1234/{FLIGHT_DATE}"));
        assert!(entry["policies"].is_string());
    }
    // A granted token redeems like any other.
    let token = granted[0]["token"].as_str().unwrap();
    assert_eq!(app.redeem(&app.airline.api_key, token).await.status(), 200);
}

async fn travellers_of_every_agency_on_the_flight_are_answered(app: TestApp) {
    app.upload_default().await;
    let mut other = app.statement();
    other["agency"] = json!(crate::helpers::OTHER_AGENCY_IATA);
    other["booking"]["record_locator"] = json!("QWE456");
    let signed = app.signed(&app.other_agency.jwk, &other);
    let r = app
        .post("/v1/consents", &app.other_agency.party.api_key, &signed)
        .await;
    assert_eq!(r.status(), 201);
    let body: Value = app
        .flight_tokens_json(
            &app.airline.api_key,
            &app.flight_request("cancellation").await,
        )
        .await;
    assert_eq!(body["counts"]["granted"], 2);
}

async fn a_flight_the_airline_does_not_operate_or_a_marketing_ask_is_refused_whole(app: TestApp) {
    seed_a_flight(&app).await;
    // Another airline cannot name AF's disruption (nor declare one of AF's flights).
    let problem = assert_problem(
        app.flight_tokens(
            &app.other_airline.api_key,
            &app.flight_request("cancellation").await,
        )
        .await,
        404,
        "disruption-not-found",
    )
    .await;
    assert_eq!(problem["rule"], "disruption-declared");
    let problem = assert_problem(
        app.flight_tokens(&app.airline.api_key, &app.flight_request("marketing").await)
            .await,
        422,
        "purpose-not-operational",
    )
    .await;
    assert_eq!(problem["rule"], "no-marketing-for-a-flight");
    let entries = app.audit_entries().await;
    let last = &entries[entries.len() - 1];
    assert_eq!(last["reason"], "purpose_not_operational");
    assert!(
        last["traveller_id"].is_null(),
        "a whole-flight refusal names no traveller"
    );
}

async fn an_empty_flight_gets_an_empty_answer(app: TestApp) {
    let body: Value = app
        .flight_tokens_json(&app.airline.api_key, &app.flight_request("delay").await)
        .await;
    assert_eq!(
        body["counts"],
        json!({"travellers": 0, "granted": 0, "refused": 0})
    );
}

async fn channels_asked_narrow_the_tokens(app: TestApp) {
    app.upload_default().await;
    let mut request = app.flight_request("cancellation").await;
    request["channels"] = json!(["sms"]);
    let body: Value = app.flight_tokens_json(&app.airline.api_key, &request).await;
    assert_eq!(body["granted"][0]["channels"], json!(["sms"]));
    let token = body["granted"][0]["token"].as_str().unwrap();
    let released: Value = app
        .redeem(&app.airline.api_key, token)
        .await
        .json()
        .await
        .unwrap();
    assert!(released["contact"]["mobile"].is_string());
    assert!(
        released["contact"].get("email").is_none(),
        "the email was not asked for"
    );
    request["channels"] = json!([]);
    let problem = assert_problem(
        app.flight_tokens(&app.airline.api_key, &request).await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "channels");
}

crate::on_both_engines!(
    one_request_answers_for_every_traveller_of_the_flight,
    travellers_of_every_agency_on_the_flight_are_answered,
    a_flight_the_airline_does_not_operate_or_a_marketing_ask_is_refused_whole,
    an_empty_flight_gets_an_empty_answer,
    channels_asked_narrow_the_tokens,
    a_record_withdrawn_while_the_grant_waits_for_the_writer_gets_no_token,
);

/// The flight is read and decided beside the writer; a record withdrawn after that
/// read, while the grant waits for the writer, must get no token (its withdrawal
/// revoked only the tokens already stored): the writer finds the record changed and
/// decides the flight again.
async fn a_record_withdrawn_while_the_grant_waits_for_the_writer_gets_no_token(app: TestApp) {
    let ids = seed_a_flight(&app).await;
    let request = app.flight_request("cancellation").await;
    let grant = app.flight_tokens(&app.airline.api_key, &request);
    let response = app.withdrawn_while_waiting(&ids["given"], grant).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["counts"],
        json!({"travellers": 7, "granted": 1, "refused": 6})
    );
    let withdrawn = body["refused"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["reason"] == "consent_withdrawn")
        .count();
    assert_eq!(withdrawn, 2, "{body}");
}
