//! Consent records a data-protection authority would accept: receipts, versions,
//! refusals, the closed purpose vocabulary, reads scoped to the agency, key
//! revocation, idempotency and SSR rendering.

use crate::helpers::{assert_problem, TestApp, MOBILE};
use crate::on_both_engines;
use passerelle::crypto::countersign::{self, Countersigned};
use passerelle::crypto::jws::Jwk;
use passerelle::domain::ids::hex;
use serde_json::{json, Value};

on_both_engines!(
    an_upload_returns_a_receipt_anyone_can_verify_with_the_published_key,
    re_sending_the_same_record_is_a_duplicate_not_a_copy,
    a_changed_contact_makes_a_new_version_and_the_history_stays_readable,
    a_refusal_is_a_record_and_airlines_asking_later_learn_refused,
    a_refusal_that_carries_a_contact_is_refused,
    itinerary_recipients_cover_every_carrier_of_the_booking,
    a_purpose_outside_the_vocabulary_is_refused_naming_it,
    a_fixed_line_number_is_refused_because_it_cannot_take_sms,
    contacts_must_match_the_data_categories,
    the_agency_lists_and_reads_only_its_own_records,
    listing_pages_with_a_cursor_and_filters_by_state,
    a_revoked_key_signs_nothing_new_but_its_records_still_verify,
    an_idempotency_key_replays_the_first_answer,
    the_record_renders_as_ssr_lines_for_each_gds,
);

async fn an_upload_returns_a_receipt_anyone_can_verify_with_the_published_key(app: TestApp) {
    let body = app.upload_default().await;
    let signed: Countersigned = serde_json::from_value(body["receipt"].clone()).unwrap();
    let jwks: Value = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = countersign::parse_key_set(&jwks).unwrap();
    assert_eq!(countersign::verify(&signed, &keys), Ok(()));
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "only the public key is published"
    );

    let receipt = &signed.receipt;
    assert_eq!(receipt["version"], "KI-CR-v1.1.0");
    assert_eq!(receipt["consentReceiptID"], body["consent_id"]);
    assert_eq!(receipt["piiPrincipalId"], body["traveller_id"]);
    assert_eq!(receipt["jurisdiction"], "FR");
    assert_eq!(
        receipt["piiControllers"][0]["piiController"],
        "Voyages Dupuis"
    );
    let purpose = &receipt["services"][0]["purposes"][0];
    assert_eq!(purpose["purposeId"], "cancellation");
    assert_eq!(purpose["purposeCategory"][0], "dpv:CommunicationManagement");
    assert_eq!(purpose["thirdPartyName"], "AF");
    let code = body["withdrawal_code"].as_str().unwrap();
    assert!(code.starts_with("pas_wd_"));
    assert_eq!(
        receipt["passerelle"]["withdrawal"]["codeSha256"],
        hex(&passerelle::crypto::sha256(code.as_bytes()))
    );
    assert_eq!(receipt["passerelle"]["purgeAfter"], "2027-01-01T00:00:00Z");
    let text = receipt.to_string();
    assert!(!text.contains(MOBILE) && !text.contains("Dupont") && !text.contains(code));

    let mut forged = signed.clone();
    forged.receipt["jurisdiction"] = json!("US");
    assert!(countersign::verify(&forged, &keys).is_err());

    // The same receipt can be fetched again later, without the code.
    let again: Value = app
        .get(
            &format!(
                "/v1/consents/{}/receipt",
                body["consent_id"].as_str().unwrap()
            ),
            &app.agency.party.api_key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again, body["receipt"]);
}

async fn re_sending_the_same_record_is_a_duplicate_not_a_copy(app: TestApp) {
    let first = app.upload_default().await;
    let response = app.upload(&app.statement()).await;
    assert_eq!(response.status(), 200);
    let again: Value = response.json().await.unwrap();
    assert_eq!(again["outcome"], "duplicate");
    assert_eq!(again["consent_id"], first["consent_id"]);
    assert!(again.get("withdrawal_code").is_none());
    let page: Value = app
        .get_json("/v1/consents", &app.agency.party.api_key)
        .await;
    assert_eq!(page["records"].as_array().unwrap().len(), 1);
}

async fn a_changed_contact_makes_a_new_version_and_the_history_stays_readable(app: TestApp) {
    let first = app.upload_default().await;
    app.clock.advance(time::Duration::hours(1));
    let mut statement = app.statement();
    statement["traveller"]["mobile"] = json!("+33698765432");
    let second: Value = app.upload(&statement).await.json().await.unwrap();
    assert_eq!(second["version"], 2);
    assert_eq!(second["record_id"], "CRM-0001");
    assert_eq!(second["supersedes"], json!([first["consent_id"]]));

    let key = &app.agency.party.api_key;
    let old: Value = app
        .get(
            &format!("/v1/consents/{}", first["consent_id"].as_str().unwrap()),
            key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(old["state"], "superseded");
    assert_eq!(old["superseded_by"], second["consent_id"]);
    assert_eq!(
        old["statement"]["traveller"]["mobile"], MOBILE,
        "the old version is kept as signed"
    );
    assert_eq!(old["signature_check"]["verified"], true);
    let history: Value = app.get_json("/v1/consents?record_id=CRM-0001", key).await;
    let states: Vec<&str> = history["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["superseded", "given"]);
}

fn refusal(app: &TestApp) -> Value {
    let mut statement = app.statement();
    statement["decision"] = json!("refused");
    let traveller = statement["traveller"].as_object_mut().unwrap();
    traveller.remove("mobile");
    traveller.remove("email");
    statement
}

async fn a_refusal_is_a_record_and_airlines_asking_later_learn_refused(app: TestApp) {
    let response = app.upload(&refusal(&app)).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["decision"], "refused");
    assert!(
        body.get("withdrawal_code").is_none(),
        "there is nothing to withdraw"
    );
    assert_eq!(
        body["receipt"]["receipt"]["passerelle"]["decision"],
        "refused"
    );
    let problem = assert_problem(
        app.request_token(&app.airline.api_key, &app.token_request().await)
            .await,
        403,
        "consent-refused",
    )
    .await;
    assert_eq!(problem["rule"], "consent-not-refused");
    let entries = app.audit_entries().await;
    assert_eq!(entries.last().unwrap()["reason"], "consent_refused");
}

async fn a_refusal_that_carries_a_contact_is_refused(app: TestApp) {
    let mut statement = refusal(&app);
    statement["traveller"]["email"] = json!("marie@example.fr");
    let problem = assert_problem(app.upload(&statement).await, 422, "invalid-field").await;
    assert_eq!(problem["errors"][0]["field"], "statement.traveller.email");
    assert_eq!(
        problem["errors"][0]["pointer"],
        "/statement/traveller/email"
    );
}

async fn itinerary_recipients_cover_every_carrier_of_the_booking(app: TestApp) {
    let mut statement = app.statement();
    statement["consent"]["recipients"] = json!("itinerary");
    let body: Value = app.upload(&statement).await.json().await.unwrap();
    assert_eq!(
        body["receipt"]["receipt"]["passerelle"]["recipients"],
        json!(["AF", "KL"])
    );
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
    assert_eq!(response.status(), 201);
}

async fn a_purpose_outside_the_vocabulary_is_refused_naming_it(app: TestApp) {
    let mut statement = app.statement();
    statement["consent"]["purposes"] = json!(["delay", "sell_data"]);
    let problem = assert_problem(app.upload(&statement).await, 422, "invalid-field").await;
    assert_eq!(
        problem["errors"][0]["field"],
        "statement.consent.purposes[1]"
    );
    assert_eq!(
        problem["errors"][0]["pointer"],
        "/statement/consent/purposes/1"
    );
    assert!(problem["errors"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("sell_data"));

    statement["consent"]["purposes"] = json!(["delay", "direct_marketing"]);
    let problem =
        assert_problem(app.upload(&statement).await, 422, "purpose-not-operational").await;
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("dpv:DirectMarketing"));
}

async fn a_fixed_line_number_is_refused_because_it_cannot_take_sms(app: TestApp) {
    let mut statement = app.statement();
    statement["traveller"]["mobile"] = json!("+33 1 42 68 53 00");
    let problem = assert_problem(app.upload(&statement).await, 422, "invalid-field").await;
    assert_eq!(problem["errors"][0]["field"], "statement.traveller.mobile");
    assert!(problem["errors"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("SMS"));
}

async fn contacts_must_match_the_data_categories(app: TestApp) {
    let mut statement = app.statement();
    statement["consent"]["data_categories"] = json!(["email"]);
    let problem = assert_problem(app.upload(&statement).await, 422, "invalid-field").await;
    assert_eq!(problem["errors"][0]["field"], "statement.traveller.mobile");
    statement["consent"]["data_categories"] = json!(["email", "email"]);
    let problem = assert_problem(app.upload(&statement).await, 422, "invalid-field").await;
    assert_eq!(
        problem["errors"][0]["field"],
        "statement.consent.data_categories[1]"
    );
    statement["consent"]["notice"]["sha256"] = json!("not-a-digest");
    let problem = assert_problem(app.upload(&statement).await, 422, "invalid-field").await;
    assert_eq!(
        problem["errors"][0]["field"],
        "statement.consent.notice.sha256"
    );
}

async fn the_agency_lists_and_reads_only_its_own_records(app: TestApp) {
    let mine = app.upload_default().await;
    let id = mine["consent_id"].as_str().unwrap();
    let other_key = &app.other_agency.party.api_key;
    assert_problem(
        app.get(&format!("/v1/consents/{id}"), other_key).await,
        404,
        "consent-not-found",
    )
    .await;
    assert_problem(
        app.get(&format!("/v1/consents/{id}/receipt"), other_key)
            .await,
        404,
        "consent-not-found",
    )
    .await;
    assert_problem(
        app.post(
            &format!("/v1/consents/{id}/withdrawal"),
            other_key,
            &json!({}),
        )
        .await,
        404,
        "consent-not-found",
    )
    .await;
    let theirs: Value = app.get_json("/v1/consents", other_key).await;
    assert_eq!(theirs["records"], json!([]));
    assert_problem(
        app.get("/v1/consents", &app.airline.api_key).await,
        403,
        "wrong-party-kind",
    )
    .await;

    let read: Value = app
        .get_json(&format!("/v1/consents/{id}"), &app.agency.party.api_key)
        .await;
    assert_eq!(read["state"], "given");
    assert_eq!(read["record_locator"], "ABC123");
    assert_eq!(read["notice"]["sha256"], crate::helpers::NOTICE_SHA256);
}

async fn listing_pages_with_a_cursor_and_filters_by_state(app: TestApp) {
    for (i, mobile) in ["+33611111111", "+33622222222", "+33633333333"]
        .iter()
        .enumerate()
    {
        let response = app
            .upload(&app.statement_for(
                &format!("R{i}"),
                &format!("Name{}", "abc".as_bytes()[i] as char),
                mobile,
            ))
            .await;
        assert_eq!(response.status(), 201);
    }
    app.upload(&refusal(&app)).await;
    let key = &app.agency.party.api_key;
    let first: Value = app.get_json("/v1/consents?limit=2", key).await;
    assert_eq!(first["records"].as_array().unwrap().len(), 2);
    let after = first["next_after"].as_str().unwrap();
    let second: Value = app
        .get_json(&format!("/v1/consents?limit=2&after={after}"), key)
        .await;
    assert_eq!(second["records"].as_array().unwrap().len(), 2);
    assert!(second.get("next_after").is_none());
    let refused: Value = app.get_json("/v1/consents?state=refused", key).await;
    assert_eq!(refused["records"].as_array().unwrap().len(), 1);
    let given: Value = app
        .get_json("/v1/consents?state=given&record_locator=abc123", key)
        .await;
    assert_eq!(given["records"].as_array().unwrap().len(), 3);
    assert_problem(
        app.get("/v1/consents?state=happy", key).await,
        422,
        "invalid-field",
    )
    .await;
    assert_problem(
        app.get("/v1/consents?after=nonsense", key).await,
        422,
        "invalid-field",
    )
    .await;
}

async fn a_revoked_key_signs_nothing_new_but_its_records_still_verify(app: TestApp) {
    let old = app.upload_default().await;
    let k2 = Jwk::generate("k2");
    passerelle::service::parties::add_agency_key(
        &app.store,
        crate::helpers::AGENCY_IATA,
        &k2.public(),
        crate::helpers::START,
    )
    .await
    .unwrap();
    passerelle::service::parties::revoke_agency_key(
        &app.store,
        crate::helpers::AGENCY_IATA,
        "k1",
        crate::helpers::START,
    )
    .await
    .unwrap();
    let statement = app.statement_for("CRM-0002", "Martin", "+33611111111");
    let response = app
        .post(
            "/v1/consents",
            &app.agency.party.api_key,
            &app.signed(&app.agency.jwk, &statement),
        )
        .await;
    assert_problem(response, 422, "unknown-key-id").await;
    let response = app
        .post(
            "/v1/consents",
            &app.agency.party.api_key,
            &app.signed(&k2, &statement),
        )
        .await;
    assert_eq!(response.status(), 201);
    let read: Value = app
        .get(
            &format!("/v1/consents/{}", old["consent_id"].as_str().unwrap()),
            &app.agency.party.api_key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        read["signature_check"],
        json!({"key_id": "k1", "key_state": "revoked", "verified": true})
    );
    assert!(
        passerelle::service::parties::add_agency_key(
            &app.store,
            crate::helpers::AGENCY_IATA,
            &Jwk::generate("k1").public(),
            crate::helpers::START
        )
        .await
        .is_err(),
        "a revoked key id is never reused"
    );
}

async fn an_idempotency_key_replays_the_first_answer(app: TestApp) {
    let body = app.signed(&app.agency.jwk, &app.statement());
    let send = |body: &Value, key: &str| {
        app.client
            .post(format!("{}/v1/consents", app.url))
            .bearer_auth(&app.agency.party.api_key)
            .header("idempotency-key", key)
            .json(body)
            .send()
    };
    let first = send(&body, "upload-42").await.unwrap();
    assert_eq!(first.status(), 201);
    let first_text = first.text().await.unwrap();
    let again = send(&body, "upload-42").await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        again.text().await.unwrap(),
        first_text,
        "byte for byte, withdrawal code included"
    );
    let other = app.signed(
        &app.agency.jwk,
        &app.statement_for("CRM-9", "Martin", "+33611111111"),
    );
    assert_problem(
        send(&other, "upload-42").await.unwrap(),
        422,
        "idempotency-key-reused",
    )
    .await;
    let entries = app.audit_entries().await;
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["action"] == "consent_upload")
            .count(),
        1
    );
}

async fn ssr_text(app: &TestApp, id: &str, gds: &str, passenger: &str) -> String {
    let path = format!("/v1/consents/{id}/ssr?gds={gds}&passenger={passenger}&language=fr");
    app.get(&path, &app.agency.party.api_key)
        .await
        .text()
        .await
        .unwrap()
}

async fn the_record_renders_as_ssr_lines_for_each_gds(app: TestApp) {
    let body = app.upload_default().await;
    let id = body["consent_id"].as_str().unwrap();
    let key = &app.agency.party.api_key;
    assert_eq!(
        ssr_text(&app, id, "amadeus", "P1").await,
        "SRCTCM-33612345678/FR/P1\nSRCTCE-MARIE.DUPONT//EXAMPLE.FR/FR/P1\n"
    );
    assert_eq!(
        ssr_text(&app, id, "sabre", "1.1").await,
        "3CTCM/33612345678/FR-1.1\n3CTCE/MARIE.DUPONT//EXAMPLE.FR/FR-1.1\n"
    );
    assert!(ssr_text(&app, id, "travelport", "P1")
        .await
        .starts_with("SI.P1/SSRCTCMYYHK1/33612345678/FR\n"));
    assert!(ssr_text(&app, id, "travelsky", "P1")
        .await
        .starts_with("SSR CTCM YY HK1 33612345678/FR/P1\n"));
    assert_problem(
        app.get(&format!("/v1/consents/{id}/ssr?gds=worldspan2"), key)
            .await,
        422,
        "invalid-field",
    )
    .await;
}
