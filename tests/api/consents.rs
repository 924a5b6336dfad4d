//! An agency uploads signed consents; anything not exactly right is refused by name.

use crate::helpers::{assert_problem, TestApp, EMAIL, MOBILE};
use crate::on_both_engines;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use passerelle::crypto::jws::Jwk;
use serde_json::{json, Value};

on_both_engines!(
    an_agency_uploads_a_signed_consent_and_gets_its_record,
    a_statement_changed_after_signing_is_refused_and_audited,
    a_statement_signed_with_an_unregistered_key_is_refused,
    an_unknown_key_id_is_refused,
    another_agencys_key_is_refused,
    a_header_that_picks_another_algorithm_is_refused,
    a_marketing_purpose_is_refused_by_name,
    an_invalid_mobile_is_refused_naming_the_field,
    an_unknown_field_is_refused_naming_it,
    a_statement_naming_another_agency_is_refused,
    a_traveller_without_any_contact_is_refused,
    contacts_and_names_never_reach_the_database_in_clear,
    a_new_upload_for_the_same_traveller_supersedes_the_old,
    a_refused_upload_stores_nothing,
);

async fn an_agency_uploads_a_signed_consent_and_gets_its_record(app: TestApp) {
    let response = app.upload(&app.statement()).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert!(body["consent_id"].as_str().unwrap().starts_with("cns_"));
    assert!(body["booking_id"].as_str().unwrap().starts_with("bkg_"));
    assert!(body["traveller_id"].as_str().unwrap().starts_with("trv_"));
    assert_eq!(body["key_id"], "k1");
    assert_eq!(body["supersedes"], json!([]));
    assert_eq!(body["audit_index"], 0);
}

async fn a_statement_changed_after_signing_is_refused_and_audited(app: TestApp) {
    let mut body = app.signed(&app.agency.jwk, &app.statement());
    body["statement"]["traveller"]["mobile"] = json!("+33698765432");
    let response = app
        .post("/v1/consents", &app.agency.party.api_key, &body)
        .await;
    let problem = assert_problem(response, 422, "bad-signature").await;
    assert_eq!(problem["errors"][0]["field"], "signature");
    let entries = app.audit_entries().await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["action"], "consent_upload");
    assert_eq!(entries[0]["outcome"], "refused");
    assert_eq!(entries[0]["reason"], "bad_signature");
}

async fn a_statement_signed_with_an_unregistered_key_is_refused(app: TestApp) {
    let impostor = Jwk::generate("k1");
    let body = app.signed(&impostor, &app.statement());
    let response = app
        .post("/v1/consents", &app.agency.party.api_key, &body)
        .await;
    assert_problem(response, 422, "bad-signature").await;
}

async fn an_unknown_key_id_is_refused(app: TestApp) {
    let body = app.signed(&Jwk::generate("k9"), &app.statement());
    let response = app
        .post("/v1/consents", &app.agency.party.api_key, &body)
        .await;
    let problem = assert_problem(response, 422, "unknown-key-id").await;
    assert!(problem["detail"].as_str().unwrap().contains("k9"));
    assert_eq!(app.audit_entries().await[0]["reason"], "unknown_key_id");
}

async fn another_agencys_key_is_refused(app: TestApp) {
    let body = app.signed(&app.other_agency.jwk, &app.statement());
    let response = app
        .post("/v1/consents", &app.agency.party.api_key, &body)
        .await;
    assert_problem(response, 422, "unknown-key-id").await;
}

async fn a_header_that_picks_another_algorithm_is_refused(app: TestApp) {
    let body = app.signed(&app.agency.jwk, &app.statement());
    let signature = body["signature"].as_str().unwrap();
    let forged_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#);
    let forged = format!("{forged_header}..{}", signature.split("..").nth(1).unwrap());
    let body = json!({"statement": body["statement"], "signature": forged});
    let response = app
        .post("/v1/consents", &app.agency.party.api_key, &body)
        .await;
    let problem = assert_problem(response, 422, "malformed-signature").await;
    assert!(problem["detail"].as_str().unwrap().contains("EdDSA"));
}

async fn a_marketing_purpose_is_refused_by_name(app: TestApp) {
    let mut statement = app.statement();
    statement["consent"]["purposes"] = json!(["cancellation", "marketing"]);
    let problem =
        assert_problem(app.upload(&statement).await, 422, "purpose-not-operational").await;
    assert_eq!(
        problem["errors"][0]["field"],
        "statement.consent.purposes[1]"
    );
    assert!(problem["errors"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("marketing"));
}

async fn an_invalid_mobile_is_refused_naming_the_field(app: TestApp) {
    let mut statement = app.statement();
    statement["traveller"]["mobile"] = json!("0612345678");
    let problem = assert_problem(app.upload(&statement).await, 422, "invalid-field").await;
    assert_eq!(problem["errors"][0]["field"], "statement.traveller.mobile");
    assert!(problem["errors"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("international"));
}

async fn an_unknown_field_is_refused_naming_it(app: TestApp) {
    let mut statement = app.statement();
    statement["traveller"]["loyalty_number"] = json!("FB123");
    let problem = assert_problem(app.upload(&statement).await, 422, "invalid-field").await;
    assert!(
        problem["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("loyalty_number"),
        "{problem}"
    );
    assert!(
        problem["errors"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with("statement.traveller"),
        "{problem}"
    );
}

async fn a_statement_naming_another_agency_is_refused(app: TestApp) {
    let mut statement = app.statement();
    statement["agency"] = json!(crate::helpers::OTHER_AGENCY_IATA);
    let problem = assert_problem(app.upload(&statement).await, 422, "invalid-field").await;
    assert_eq!(problem["errors"][0]["field"], "statement.agency");
}

async fn a_traveller_without_any_contact_is_refused(app: TestApp) {
    let mut statement = app.statement();
    let traveller = statement["traveller"].as_object_mut().unwrap();
    traveller.remove("mobile");
    traveller.remove("email");
    let problem = assert_problem(app.upload(&statement).await, 422, "invalid-field").await;
    assert_eq!(problem["errors"][0]["field"], "statement.traveller");
}

async fn contacts_and_names_never_reach_the_database_in_clear(app: TestApp) {
    app.upload_default().await;
    let dump = database_dump(&app).await.to_lowercase();
    for secret in [MOBILE, "612345678", EMAIL, "marie", "dupont"] {
        assert!(
            !dump.contains(&secret.to_lowercase()),
            "`{secret}` found in the database"
        );
        let hex: String = secret
            .to_lowercase()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(
            !dump.contains(&hex),
            "`{secret}` found hex-encoded in the database"
        );
    }
    assert!(
        dump.contains("abc123"),
        "the dump does hold the booking's record locator"
    );
}

/// Every row of every table as text: the SQLite file and its WAL byte for byte, or
/// PostgreSQL's text form of each row (bytea in hex).
async fn database_dump(app: &TestApp) -> String {
    if let Some(path) = &app.sqlite_path {
        let mut bytes = std::fs::read(path).unwrap();
        bytes.extend(std::fs::read(path.with_extension("db-wal")).unwrap_or_default());
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    let mut dump = String::new();
    for table in [
        "parties",
        "bookings",
        "segments",
        "travellers",
        "consents",
        "release_tokens",
        "audit_entries",
    ] {
        let rows: Vec<(String,)> =
            sqlx::query_as(&format!("SELECT CAST(t AS TEXT) FROM {table} t"))
                .fetch_all(app.store.reader())
                .await
                .unwrap();
        rows.into_iter().for_each(|(row,)| dump.push_str(&row));
    }
    dump
}

async fn a_new_upload_for_the_same_traveller_supersedes_the_old(app: TestApp) {
    let first = app.upload_default().await;
    let mut statement = app.statement();
    statement["traveller"]["mobile"] = json!("+33698765432");
    statement["traveller"]["surname"] = json!("DUPONT");
    let response = app.upload(&statement).await;
    assert_eq!(response.status(), 201);
    let second: Value = response.json().await.unwrap();
    assert_eq!(second["traveller_id"], first["traveller_id"]);
    assert_eq!(second["booking_id"], first["booking_id"]);
    assert_eq!(second["supersedes"], json!([first["consent_id"]]));

    let token: Value = app
        .request_token(&app.airline.api_key, &app.token_request().await)
        .await
        .json()
        .await
        .unwrap();
    let released: Value = app
        .redeem(&app.airline.api_key, token["token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        released["contact"]["mobile"], "+33698765432",
        "the newest record's contact is released"
    );
}

async fn a_refused_upload_stores_nothing(app: TestApp) {
    let body = app.signed(&Jwk::generate("k9"), &app.statement());
    app.post("/v1/consents", &app.agency.party.api_key, &body)
        .await;
    let count: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM bookings")
        .fetch_one(app.store.reader())
        .await
        .unwrap();
    assert_eq!(count.0, 0);
    let response = app
        .request_token(&app.airline.api_key, &app.token_request().await)
        .await;
    assert_problem(response, 404, "booking-not-found").await;
}
