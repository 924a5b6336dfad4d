//! Several brokers on one database: what one broker changes binds every other at once.
//! The database guard is the authority, so nothing a broker has seen before (a party,
//! a key, a token, a consent) lets it release after another broker withdrew, revoked
//! or purged. Each scenario warms the second broker first, so that a cache it kept
//! would be tested, not an empty one.

use crate::helpers::{assert_problem, granted_tokens, TestApp};
use passerelle::clock::Clock;
use passerelle::domain::party::{Party, PartyKind};
use passerelle::service::parties::{revoke_api_keys, KeyTarget};
use serde_json::{json, Value};

/// Two travellers of AF1234 and a token for each, granted at the first broker.
async fn two_tokens(app: &TestApp) -> (Vec<String>, Vec<String>) {
    app.upload_default().await;
    app.upload(&app.statement_for("CRM-2", "Martin", "+33611111111"))
        .await;
    let grant = app
        .flight_tokens_json(
            &app.airline.api_key,
            &app.flight_request("cancellation").await,
        )
        .await;
    let tokens = granted_tokens(&grant);
    let consents: Value = app
        .get_json("/v1/consents", &app.agency.party.api_key)
        .await;
    let travellers: Vec<&str> = grant["granted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["traveller_id"].as_str().unwrap())
        .collect();
    // Each token's consent, in the tokens' order.
    let ids = travellers
        .iter()
        .map(|t| {
            consents["records"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["traveller_id"] == *t)
                .unwrap()["consent_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(tokens.len(), 2);
    (tokens, ids)
}

async fn release_at(app: &TestApp, url: &str, token: &str) -> reqwest::Response {
    app.client
        .post(format!("{url}/v1/releases"))
        .bearer_auth(&app.airline.api_key)
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap()
}

async fn a_withdrawal_at_one_broker_stops_the_other_brokers_releases_at_once(app: TestApp) {
    let (second, _) = app.another_broker().await;
    let (tokens, consents) = two_tokens(&app).await;
    let warmed = release_at(&app, &second, &tokens[0]).await;
    assert_eq!(warmed.status(), 200, "the second broker releases the first");

    let withdrawn = app
        .post(
            &format!("/v1/consents/{}/withdrawal", consents[1]),
            &app.agency.party.api_key,
            &json!({}),
        )
        .await;
    assert_eq!(withdrawn.status(), 200);
    assert_problem(
        release_at(&app, &second, &tokens[1]).await,
        410,
        "token-revoked",
    )
    .await;
}

async fn a_key_revoked_at_one_broker_is_refused_by_the_other_at_once(app: TestApp) {
    let (second, _) = app.another_broker().await;
    let (tokens, _) = two_tokens(&app).await;
    let warmed = release_at(&app, &second, &tokens[0]).await;
    assert_eq!(warmed.status(), 200, "the second broker knows the key");

    let airline = Party {
        id: app.airline.id.clone(),
        kind: PartyKind::Airline,
        code: Some("AF".into()),
    };
    let revoked = revoke_api_keys(&app.store, KeyTarget::Party(&airline), app.clock.now())
        .await
        .unwrap();
    assert_eq!(revoked, 1);
    assert_problem(
        release_at(&app, &second, &tokens[1]).await,
        401,
        "unauthorized",
    )
    .await;
}

async fn a_purge_at_one_broker_stops_the_other_brokers_releases_at_once(app: TestApp) {
    let (second, _) = app.another_broker().await;
    let (tokens, consents) = two_tokens(&app).await;
    let warmed = release_at(&app, &second, &tokens[0]).await;
    assert_eq!(warmed.status(), 200, "the second broker releases the first");

    // An operator purges the record's contact (the sweeper's work, ahead of time).
    sqlx::query("UPDATE consents SET purge_after = 0 WHERE id = $1")
        .bind(&consents[1])
        .execute(app.store.reader())
        .await
        .unwrap();
    let purged = passerelle::workers::sweeper::sweep(&app.state)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let refused = release_at(&app, &second, &tokens[1]).await;
    assert!(
        refused.status().is_client_error(),
        "a purged contact is never released: {}",
        refused.status()
    );
}

crate::on_both_engines!(
    a_withdrawal_at_one_broker_stops_the_other_brokers_releases_at_once,
    a_key_revoked_at_one_broker_is_refused_by_the_other_at_once,
    a_purge_at_one_broker_stops_the_other_brokers_releases_at_once,
);
