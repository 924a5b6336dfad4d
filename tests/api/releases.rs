//! An airline redeems its token once and receives the contact with its terms of use.

use crate::helpers::{assert_problem, granted_tokens, TestApp, EMAIL, MOBILE};
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
    redemptions_arriving_together_are_taken_together_and_each_token_releases_once,
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
    assert_eq!(
        body["audit_index"], 3,
        "after the upload, the declaration and the grant"
    );
    assert_eq!(entries[3]["action"], "token_redemption");
    assert_eq!(entries[3]["outcome"], "released");
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
    assert_eq!(app.audit_entries().await[4]["reason"], "token_used");
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
        app.audit_entries().await[3]["actor_id"],
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
    use passerelle::store::tokens::take_uses_if_unchanged;
    app.granted_token().await;
    let row = sqlx::query("SELECT id, consent_id FROM release_tokens")
        .fetch_one(app.store.reader())
        .await
        .unwrap();
    let token_id: String = sqlx::Row::get(&row, "id");
    let consent_id: String = sqlx::Row::get(&row, "consent_id");
    let take = || async {
        let mut tx = app.store.begin().await.unwrap();
        let taken = take_uses_if_unchanged(&mut tx, &[token_id.as_str()], app.clock.now())
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        taken.contains(&token_id)
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
    let taken = take_uses_if_unchanged(&mut tx, &[token_id.as_str(), "unknown"], app.clock.now())
        .await
        .unwrap();
    assert_eq!(
        taken.into_iter().collect::<Vec<_>>(),
        vec![token_id.clone()]
    );
    tx.commit().await.unwrap();
    assert!(!take().await, "a reveal token's one use is taken once");
}

/// During a disruption, redemptions arrive together and the writer takes them in
/// batches. Each of twelve tokens, redeemed twice at once, releases its contact once
/// (the other is `token-used`), each release has its own entry, and the log verifies.
async fn redemptions_arriving_together_are_taken_together_and_each_token_releases_once(
    app: TestApp,
) {
    let surnames = [
        "Dupont", "Martin", "Bernard", "Petit", "Robert", "Richard", "Durand", "Leroy", "Moreau",
        "Simon", "Laurent", "Lefebvre",
    ];
    for (i, surname) in surnames.iter().enumerate() {
        let statement = app.statement_for(&format!("R-{i}"), surname, &format!("+336123450{i:02}"));
        assert_eq!(app.upload(&statement).await.status(), 201);
    }
    let request = app.flight_request("cancellation").await;
    let response = app.flight_tokens(&app.airline.api_key, &request).await;
    assert_eq!(response.status(), 200);
    let granted: Value = response.json().await.unwrap();
    let tokens = granted_tokens(&granted);
    assert_eq!(tokens.len(), surnames.len());
    let redemptions = tokens
        .iter()
        .chain(&tokens)
        .map(|token| app.redeem(&app.airline.api_key, token));
    let responses = futures_util::future::join_all(redemptions).await;
    let mut released = Vec::new();
    let mut used = 0;
    for response in responses {
        match response.status().as_u16() {
            200 => released.push(response.json::<Value>().await.unwrap()),
            410 => used += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((released.len(), used), (surnames.len(), surnames.len()));
    let mut mobiles: Vec<&str> = released
        .iter()
        .map(|r| r["contact"]["mobile"].as_str().unwrap())
        .collect();
    mobiles.sort_unstable();
    mobiles.dedup();
    assert_eq!(
        mobiles.len(),
        surnames.len(),
        "each token releases its own traveller"
    );
    let entries = app.audit_entries().await;
    for release in &released {
        let entry = &entries[release["audit_index"].as_u64().unwrap() as usize];
        assert_eq!(entry["action"], "token_redemption");
        assert_eq!(entry["outcome"], "released");
        assert_eq!(entry["token_id"], release["token_id"]);
    }
    let report = passerelle::service::verify_log::verify(
        &app.store,
        app.state.checkpointer.log_key(),
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.finding, None, "{}", report.summary());
}
