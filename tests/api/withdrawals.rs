//! Withdrawal as easy as consent, expiry, retention purge and key rotation.

use crate::helpers::{assert_problem, TestApp};
use crate::on_both_engines;
use serde_json::{json, Value};

on_both_engines!(
    the_traveller_withdraws_with_the_code_alone_and_tokens_stop_working,
    the_agency_withdraws_and_a_second_withdrawal_changes_nothing,
    a_withdrawal_code_that_was_never_issued_opens_nothing,
    a_new_version_is_withdrawn_by_the_code_of_an_older_one,
    a_consent_past_its_validity_reads_expired_and_grants_nothing,
    the_sweeper_destroys_the_contact_after_the_trip_and_keeps_the_record,
    key_rotation_rewraps_every_record_key_while_the_broker_runs,
    a_wrong_code_is_refused_without_waiting_for_the_writer,
    guessing_codes_at_speed_is_refused_per_address,
);

async fn withdraw_with(app: &TestApp, code: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/withdrawals", app.url))
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap()
}

async fn the_traveller_withdraws_with_the_code_alone_and_tokens_stop_working(app: TestApp) {
    let uploaded = app.upload_default().await;
    let token: Value = app
        .request_token(&app.airline.api_key, &app.token_request().await)
        .await
        .json()
        .await
        .unwrap();
    let code = uploaded["withdrawal_code"].as_str().unwrap();

    let response = withdraw_with(&app, code).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["state"], "withdrawn");
    assert_eq!(body["withdrawn_by"], "traveller");
    assert_eq!(body["consent_id"], uploaded["consent_id"]);

    let problem = assert_problem(
        app.redeem(&app.airline.api_key, token["token"].as_str().unwrap())
            .await,
        410,
        "token-revoked",
    )
    .await;
    assert_eq!(problem["rule"], "token-not-revoked");
    assert_problem(
        app.request_token(&app.airline.api_key, &app.token_request().await)
            .await,
        403,
        "consent-inactive",
    )
    .await;
    let entries = app.audit_entries().await;
    let withdrawal = entries
        .iter()
        .find(|e| e["action"] == "consent_withdrawal")
        .unwrap();
    assert_eq!(withdrawal["actor_kind"], "traveller");
    assert_eq!(withdrawal["actor_id"], uploaded["traveller_id"]);
    assert!(
        !entries.iter().any(|e| e.to_string().contains(code)),
        "the code never reaches the audit log"
    );
}

async fn the_agency_withdraws_and_a_second_withdrawal_changes_nothing(app: TestApp) {
    let uploaded = app.upload_default().await;
    let path = format!(
        "/v1/consents/{}/withdrawal",
        uploaded["consent_id"].as_str().unwrap()
    );
    let first: Value = app
        .post_json(&path, &app.agency.party.api_key, &json!({}))
        .await;
    assert_eq!(first["withdrawn_by"], "agency");
    assert!(first["audit_index"].is_i64());
    let second: Value = app
        .post_json(&path, &app.agency.party.api_key, &json!({}))
        .await;
    assert_eq!(second["withdrawn_at"], first["withdrawn_at"]);
    assert!(second.get("audit_index").is_none());
    let by_code = withdraw_with(&app, uploaded["withdrawal_code"].as_str().unwrap()).await;
    let body: Value = by_code.json().await.unwrap();
    assert_eq!(body["withdrawn_by"], "agency");
    let listed: Value = app
        .get_json("/v1/consents?state=withdrawn", &app.agency.party.api_key)
        .await;
    assert_eq!(listed["records"].as_array().unwrap().len(), 1);
}

async fn a_withdrawal_code_that_was_never_issued_opens_nothing(app: TestApp) {
    let uploaded = app.upload_default().await;
    let code = uploaded["withdrawal_code"].as_str().unwrap();
    let forged = format!("{}{}", &code[..code.len() - 4], "AAAA");
    assert_problem(
        withdraw_with(&app, &forged).await,
        404,
        "withdrawal-code-unknown",
    )
    .await;
    assert_problem(
        withdraw_with(&app, "pas_wd_nope").await,
        404,
        "withdrawal-code-unknown",
    )
    .await;
    let problem = assert_problem(
        app.client
            .post(format!("{}/v1/withdrawals", app.url))
            .json(&json!({"code": code, "name": "x"}))
            .send()
            .await
            .unwrap(),
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "name");
    let response = app
        .request_token(&app.airline.api_key, &app.token_request().await)
        .await;
    assert_eq!(response.status(), 201, "nothing was withdrawn");
}

async fn a_new_version_is_withdrawn_by_the_code_of_an_older_one(app: TestApp) {
    let first = app.upload_default().await;
    let mut statement = app.statement();
    statement["traveller"]["mobile"] = json!("+33698765432");
    let second: Value = app.upload(&statement).await.json().await.unwrap();
    let body: Value = withdraw_with(&app, first["withdrawal_code"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["consent_id"], second["consent_id"]);
}

async fn a_consent_past_its_validity_reads_expired_and_grants_nothing(app: TestApp) {
    let mut statement = app.statement();
    statement["consent"]["valid_until"] = json!("2026-11-25T00:00:00Z");
    app.upload(&statement).await;
    app.clock.advance(time::Duration::days(2));
    let problem = assert_problem(
        app.request_token(&app.airline.api_key, &app.token_request().await)
            .await,
        403,
        "consent-inactive",
    )
    .await;
    assert_eq!(problem["rule"], "consent-unexpired");
    let listed: Value = app
        .get_json("/v1/consents?state=expired", &app.agency.party.api_key)
        .await;
    assert_eq!(listed["records"][0]["state"], "expired");
}

async fn the_sweeper_destroys_the_contact_after_the_trip_and_keeps_the_record(app: TestApp) {
    let uploaded = app.upload_default().await;
    let id = uploaded["consent_id"].as_str().unwrap();
    assert_eq!(
        passerelle::workers::sweeper::sweep(&app.state)
            .await
            .unwrap(),
        0,
        "nothing is due yet"
    );
    app.clock.advance(time::Duration::days(40));
    assert_eq!(
        passerelle::workers::sweeper::sweep(&app.state)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        passerelle::workers::sweeper::sweep(&app.state)
            .await
            .unwrap(),
        0,
        "a purge happens once"
    );

    let read: Value = app
        .get_json(&format!("/v1/consents/{id}"), &app.agency.party.api_key)
        .await;
    assert!(read["purged_at"].is_string());
    assert!(
        read.get("statement").is_none(),
        "the signed statement went with the key"
    );
    assert_eq!(read["signature_check"]["verified"], Value::Null);
    assert_eq!(read["record_id"], "CRM-0001", "the metadata stays");
    let receipt = app
        .get(
            &format!("/v1/consents/{id}/receipt"),
            &app.agency.party.api_key,
        )
        .await;
    assert_eq!(receipt.status(), 200, "the receipt stays");
    assert_problem(
        app.get(
            &format!("/v1/consents/{id}/ssr?gds=amadeus"),
            &app.agency.party.api_key,
        )
        .await,
        410,
        "contact-purged",
    )
    .await;
    let (key, mobile): (Option<Vec<u8>>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT wrapped_key, sealed_mobile FROM consents WHERE id = $1")
            .bind(id)
            .fetch_one(app.store.reader())
            .await
            .unwrap();
    assert!(key.is_none() && mobile.is_none());
    let entries = app.audit_entries().await;
    let purge = entries
        .iter()
        .find(|e| e["action"] == "contact_purge")
        .unwrap();
    assert_eq!(purge["consent_id"], id);
    assert_eq!(purge["actor_kind"], "broker");
}

async fn key_rotation_rewraps_every_record_key_while_the_broker_runs(app: TestApp) {
    app.upload_default().await;
    app.upload(&app.statement_for("CRM-2", "Martin", "+33611111111"))
        .await;
    let rotated = passerelle::service::rotation::rotate(
        &app.store,
        &app.keyring_path,
        std::time::Duration::ZERO,
    )
    .await
    .unwrap();
    assert_eq!(rotated.rewrapped, 2);
    let masters: Vec<(String,)> = sqlx::query_as("SELECT DISTINCT key_master FROM consents")
        .fetch_all(app.store.reader())
        .await
        .unwrap();
    assert_eq!(masters, vec![(rotated.master.clone(),)]);
    // The running broker rereads the keyring and still opens every contact.
    let token = app
        .request_token(&app.airline.api_key, &app.token_request().await)
        .await
        .json::<Value>()
        .await
        .unwrap();
    let released = app
        .redeem(&app.airline.api_key, token["token"].as_str().unwrap())
        .await;
    assert_eq!(released.status(), 200);
    let body: Value = released.json().await.unwrap();
    assert_eq!(body["contact"]["mobile"], crate::helpers::MOBILE);
    // And new records are wrapped under the new master.
    app.upload(&app.statement_for("CRM-3", "Durand", "+33622222222"))
        .await;
    let count: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM consents WHERE key_master = $1")
        .bind(&rotated.master)
        .fetch_one(app.store.reader())
        .await
        .unwrap();
    assert_eq!(count.0, 3);
}

async fn a_wrong_code_is_refused_without_waiting_for_the_writer(app: TestApp) {
    app.upload_default().await;
    // Someone holds the one writer (a long transaction, a slow batch).
    let held = app.store.begin().await.unwrap();
    let wrong = "pas_wd_0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        withdraw_with(&app, wrong),
    )
    .await
    .expect("a wrong code is answered from a read, not after the writer");
    assert_problem(answered, 404, "withdrawal-code-unknown").await;
    held.rollback().await.unwrap();
}

async fn guessing_codes_at_speed_is_refused_per_address(app: TestApp) {
    let burst = app.state.settings.policies.tunables.public_rate_limit.burst;
    let wrong = "pas_wd_0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for _ in 0..burst {
        assert_eq!(withdraw_with(&app, wrong).await.status(), 404);
    }
    let limited = withdraw_with(&app, wrong).await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_problem(limited, 429, "rate-limited").await;
}
