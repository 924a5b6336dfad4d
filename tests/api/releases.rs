//! An airline redeems its token once and receives the contact with its terms of use.

use crate::helpers::{assert_problem, TestApp, EMAIL, MOBILE};
use crate::on_both_engines;
use passerelle::clock::Clock;
use serde_json::{json, Value};
use time::Duration;

on_both_engines!(
    the_airline_redeems_its_token_and_receives_the_contact,
    a_token_works_only_once,
    another_airline_cannot_redeem_the_token,
    an_expired_token_is_refused,
    a_forged_secret_for_a_real_token_id_is_refused,
    a_malformed_token_is_an_invalid_field,
    a_token_granted_under_a_replaced_consent_releases_nothing,
    the_writer_takes_a_use_decided_on_an_earlier_read_only_if_nothing_it_read_changed,
);

async fn the_airline_redeems_its_token_and_receives_the_contact(app: TestApp) {
    let token = app.granted_token().await;
    let response = app.redeem(&app.airline.api_key, &token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["contact"], json!({"mobile": MOBILE, "email": EMAIL}));
    assert_eq!(body["purpose"], "cancellation");
    assert_eq!(body["flight"], "AF1234/2026-12-01");
    assert_eq!(body["terms"]["delete_by"], "2026-12-24T10:00:00Z");
    assert!(body["terms"]["allowed_use"]
        .as_str()
        .unwrap()
        .contains("never for sales or marketing"));
    let entries = app.audit_entries().await;
    assert_eq!(body["audit_index"], 2);
    assert_eq!(entries[2]["action"], "token_redemption");
    assert_eq!(entries[2]["outcome"], "released");
}

async fn a_token_works_only_once(app: TestApp) {
    let token = app.granted_token().await;
    assert_eq!(app.redeem(&app.airline.api_key, &token).await.status(), 200);
    let problem = assert_problem(
        app.redeem(&app.airline.api_key, &token).await,
        410,
        "token-used",
    )
    .await;
    assert_eq!(problem["rule"], "token-uses");
    assert_eq!(app.audit_entries().await[3]["reason"], "token_used");
}

async fn another_airline_cannot_redeem_the_token(app: TestApp) {
    let token = app.granted_token().await;
    let problem = assert_problem(
        app.redeem(&app.other_airline.api_key, &token).await,
        404,
        "token-not-found",
    )
    .await;
    assert!(problem.get("contact").is_none());
    assert_eq!(
        app.audit_entries().await[2]["actor_id"],
        app.other_airline.id
    );
    assert_eq!(
        app.redeem(&app.airline.api_key, &token).await.status(),
        200,
        "the rightful airline still can"
    );
}

async fn an_expired_token_is_refused(app: TestApp) {
    let token = app.granted_token().await;
    app.clock.advance(Duration::minutes(15));
    assert_problem(
        app.redeem(&app.airline.api_key, &token).await,
        410,
        "token-expired",
    )
    .await;
}

async fn a_forged_secret_for_a_real_token_id_is_refused(app: TestApp) {
    let token = app.granted_token().await;
    let (id, _) = token.split_once('.').unwrap();
    let forged = format!("{id}.{}", "A".repeat(43));
    assert_problem(
        app.redeem(&app.airline.api_key, &forged).await,
        404,
        "token-not-found",
    )
    .await;
    assert_eq!(app.redeem(&app.airline.api_key, &token).await.status(), 200);
}

async fn a_malformed_token_is_an_invalid_field(app: TestApp) {
    let problem = assert_problem(
        app.redeem(&app.airline.api_key, "not-a-token").await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "token");
}

async fn a_token_granted_under_a_replaced_consent_releases_nothing(app: TestApp) {
    let token = app.granted_token().await;
    let mut statement = app.statement();
    statement["traveller"]["mobile"] = json!("+33698765432");
    assert_eq!(app.upload(&statement).await.status(), 201);
    let problem = assert_problem(
        app.redeem(&app.airline.api_key, &token).await,
        403,
        "consent-inactive",
    )
    .await;
    assert_eq!(problem["rule"], "consent-current");
}

/// A release is decided on what the readers see, and the writer then takes the use
/// under a guard. Each change that could turn the grant into a refusal, made between
/// that read and the writer's turn (here straight in the database, without the token
/// revocation a withdrawal also makes), makes the guard take nothing, so the use is
/// decided again in the writer. Unchanged, the guard takes the use, once.
async fn the_writer_takes_a_use_decided_on_an_earlier_read_only_if_nothing_it_read_changed(
    app: TestApp,
) {
    use passerelle::store::tokens::take_use_if_unchanged;
    app.granted_token().await;
    let row = sqlx::query("SELECT id, consent_id FROM release_tokens")
        .fetch_one(app.store.reader())
        .await
        .unwrap();
    let token_id: String = sqlx::Row::get(&row, "id");
    let consent_id: String = sqlx::Row::get(&row, "consent_id");
    let take = || async {
        let mut tx = app.store.begin().await.unwrap();
        let taken = take_use_if_unchanged(&mut tx, &token_id, app.clock.now())
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        taken
    };
    for (column, value) in [
        ("withdrawn_at", "1"),
        ("superseded_by", "id"),
        ("purged_at", "1"),
    ] {
        let set = format!("UPDATE consents SET {column} = {value} WHERE id = '{consent_id}'");
        sqlx::query(&set).execute(app.store.reader()).await.unwrap();
        assert!(
            !take().await,
            "a use was taken with the record's {column} set"
        );
        let unset = format!("UPDATE consents SET {column} = NULL WHERE id = '{consent_id}'");
        sqlx::query(&unset)
            .execute(app.store.reader())
            .await
            .unwrap();
    }
    assert!(take().await, "the unchanged record's use is taken");
    let mut tx = app.store.begin().await.unwrap();
    assert!(take_use_if_unchanged(&mut tx, &token_id, app.clock.now())
        .await
        .unwrap());
    tx.commit().await.unwrap();
    assert!(!take().await, "a reveal token's one use is taken once");
}
