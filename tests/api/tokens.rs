//! An airline asks for a release token; it gets one only for an operational
//! notification to a consenting traveller on a flight it carries.

use crate::helpers::{assert_problem, TestApp};
use crate::on_both_engines;
use serde_json::{json, Value};
use time::Duration;

on_both_engines!(
    an_airline_gets_a_token_for_a_consenting_traveller_on_its_flight,
    a_name_written_the_pnr_way_still_matches,
    an_airline_that_does_not_carry_the_flight_learns_nothing,
    an_unknown_booking_gets_the_same_answer,
    a_marketing_purpose_is_refused_and_audited,
    a_consent_that_does_not_name_the_airline_is_refused,
    a_purpose_outside_the_consent_is_refused,
    an_expired_consent_is_refused,
    an_unknown_purpose_is_an_invalid_field,
    a_record_withdrawn_while_the_request_waits_for_the_writer_gets_no_token,
);

async fn an_airline_gets_a_token_for_a_consenting_traveller_on_its_flight(app: TestApp) {
    app.upload_default().await;
    let response = app
        .request_token(&app.airline.api_key, &app.token_request().await)
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert!(body["token"].as_str().unwrap().starts_with("pas_token_"));
    assert_eq!(
        body["expires_at"], "2026-11-24T10:15:00Z",
        "tokens live 15 minutes"
    );
    assert_eq!(body["purpose"], "cancellation");
    let entry = &app.audit_entries().await[2];
    assert_eq!(entry["action"], "token_request");
    assert_eq!(entry["outcome"], "granted");
    assert_eq!(entry["token_id"], body["token_id"]);
    assert_eq!(entry["event_reference"], app.disruption().await);
    assert_eq!(entry["event_category"], "cancellation");
    assert_eq!(entry["flight"], "AF1234/2026-12-01");
}

async fn a_name_written_the_pnr_way_still_matches(app: TestApp) {
    app.upload_default().await;
    let mut request = app.token_request().await;
    request["traveller"] = json!({"surname": "dupont", "given_name": "Marie Mrs"});
    request["flight"]["flight_number"] = json!("01234");
    let response = app.request_token(&app.airline.api_key, &request).await;
    assert_eq!(response.status(), 201);
}

async fn an_airline_that_does_not_carry_the_flight_learns_nothing(app: TestApp) {
    app.upload_default().await;
    let response = app
        .request_token(&app.other_airline.api_key, &app.token_request().await)
        .await;
    // KLM cannot name AF's disruption, nor declare one of AF's flights.
    let problem = assert_problem(response, 404, "disruption-not-found").await;
    assert_eq!(problem["rule"], "disruption-declared");
    let entries = app.audit_entries().await;
    let entry = entries.last().unwrap();
    assert_eq!(entry["actor_id"], app.other_airline.id);
    assert_eq!(entry["outcome"], "refused");
    assert_eq!(entry["reason"], "disruption_not_found");
    assert!(
        entry["traveller_id"].is_null(),
        "nothing of the traveller is looked up"
    );
}

async fn an_unknown_booking_gets_the_same_answer(app: TestApp) {
    app.upload_default().await;
    let mut request = app.token_request().await;
    request["record_locator"] = json!("ZZZ999");
    let unknown = assert_problem(
        app.request_token(&app.airline.api_key, &request).await,
        404,
        "booking-not-found",
    )
    .await;
    // KLM, under its own disruption of a flight Marie's booking does not hold.
    let klm_flight =
        json!({"carrier": "KL", "flight_number": "9999", "date": crate::helpers::FLIGHT_DATE});
    let mut not_carried = app.token_request().await;
    not_carried["disruption_id"] =
        json!(app.declared(&app.other_airline.api_key, &klm_flight).await);
    not_carried["flight"] = klm_flight;
    let not_carried = assert_problem(
        app.request_token(&app.other_airline.api_key, &not_carried)
            .await,
        404,
        "booking-not-found",
    )
    .await;
    assert_eq!(unknown["detail"], not_carried["detail"]);
}

async fn a_marketing_purpose_is_refused_and_audited(app: TestApp) {
    app.upload_default().await;
    let mut request = app.token_request().await;
    request["purpose"] = json!("marketing");
    let problem = assert_problem(
        app.request_token(&app.airline.api_key, &request).await,
        422,
        "purpose-not-operational",
    )
    .await;
    assert_eq!(problem["rule"], "no-marketing-for-a-flight");
    let entry = &app.audit_entries().await[2];
    assert_eq!(entry["reason"], "purpose_not_operational");
    assert_eq!(entry["purpose"], "marketing");
}

async fn a_consent_that_does_not_name_the_airline_is_refused(app: TestApp) {
    app.upload_default().await;
    let mut request = app.token_request().await;
    request["flight"] =
        json!({"carrier": "KL", "flight_number": "1002", "date": crate::helpers::FLIGHT_DATE});
    request["disruption_id"] = json!(
        app.declared(&app.other_airline.api_key, &request["flight"])
            .await
    );
    let response = app
        .request_token(&app.other_airline.api_key, &request)
        .await;
    let problem = assert_problem(response, 403, "consent-does-not-cover").await;
    assert_eq!(problem["rule"], "consent-covers-carrier");
    let entries = app.audit_entries().await;
    let entry = entries.last().unwrap();
    assert_eq!(entry["reason"], "carrier_not_covered");
    assert!(
        entry["traveller_id"].as_str().unwrap().starts_with("trv_"),
        "the refusal names the agency's client"
    );
}

async fn a_purpose_outside_the_consent_is_refused(app: TestApp) {
    app.upload_default().await;
    let mut request = app.token_request().await;
    request["purpose"] = json!("gate_change");
    let problem = assert_problem(
        app.request_token(&app.airline.api_key, &request).await,
        403,
        "consent-does-not-cover",
    )
    .await;
    assert_eq!(problem["rule"], "consent-covers-purpose");
}

async fn an_expired_consent_is_refused(app: TestApp) {
    let mut statement = app.statement();
    statement["consent"]["valid_until"] = json!("2026-11-24T11:00:00Z");
    assert_eq!(app.upload(&statement).await.status(), 201);
    assert_eq!(
        app.request_token(&app.airline.api_key, &app.token_request().await)
            .await
            .status(),
        201
    );
    app.clock.advance(Duration::hours(2));
    let problem = assert_problem(
        app.request_token(&app.airline.api_key, &app.token_request().await)
            .await,
        403,
        "consent-inactive",
    )
    .await;
    assert_eq!(problem["rule"], "consent-unexpired");
}

async fn an_unknown_purpose_is_an_invalid_field(app: TestApp) {
    let mut request = app.token_request().await;
    request["purpose"] = json!("upsell");
    let problem = assert_problem(
        app.request_token(&app.airline.api_key, &request).await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "purpose");
}

/// A traveller's token is decided on what the readers see, before the request joins
/// the writer; a record withdrawn after that read, while the request waits for the
/// writer, must get no token (its withdrawal revoked only the tokens already stored):
/// the writer finds the record changed and decides the traveller again.
async fn a_record_withdrawn_while_the_request_waits_for_the_writer_gets_no_token(app: TestApp) {
    app.upload_default().await;
    let listed = app
        .get_json("/v1/consents", &app.agency.party.api_key)
        .await;
    let record = listed["records"][0]["consent_id"]
        .as_str()
        .unwrap()
        .to_string();
    let request = app.token_request().await;
    let asked = app.request_token(&app.airline.api_key, &request);
    let response = app.withdrawn_while_waiting(&record, asked).await;
    assert_problem(response, 403, "consent-inactive").await;
    let entries = app.audit_entries().await;
    let last = entries.last().unwrap();
    assert_eq!(last["action"], "token_request");
    assert_eq!(last["outcome"], "refused");
    assert_eq!(last["reason"], "consent_withdrawn");
    assert!(last["token_id"].is_null(), "{last}");
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM release_tokens")
        .fetch_one(app.store.reader())
        .await
        .unwrap();
    assert_eq!(stored, 0, "no token was stored");
}
