//! A compliance officer reads every decision, in order, with nothing personal in it.

use crate::helpers::{assert_problem, TestApp, EMAIL, MOBILE};
use crate::on_both_engines;
use passerelle::audit::AuditEntry;
use serde_json::{json, Value};

on_both_engines!(
    the_officer_reads_every_decision_in_order,
    audit_entries_hold_no_contact_name_or_token,
    each_leaf_hash_can_be_recomputed_from_its_entry,
    the_trail_is_read_a_page_at_a_time,
    a_bad_page_size_is_refused_by_name,
    when_the_audit_log_cannot_be_written_actions_are_refused_readyz_says_so_and_the_broker_recovers,
);

async fn the_officer_reads_every_decision_in_order(app: TestApp) {
    let token = app.granted_token().await;
    let mut marketing = app.token_request().await;
    marketing["purpose"] = json!("marketing");
    app.request_token(&app.airline.api_key, &marketing).await;
    app.redeem(&app.airline.api_key, &token).await;
    app.redeem(&app.airline.api_key, &token).await;

    let entries = app.audit_entries().await;
    let summary: Vec<(i64, &str, &str, Option<&str>)> = entries
        .iter()
        .map(|e| {
            (
                e["index"].as_i64().unwrap(),
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
                e["reason"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (0, "consent_upload", "recorded", None),
            (1, "disruption_declaration", "recorded", None),
            (2, "token_request", "granted", None),
            (
                3,
                "token_request",
                "refused",
                Some("purpose_not_operational")
            ),
            (4, "token_redemption", "released", None),
            (5, "token_redemption", "refused", Some("token_used")),
        ]
    );
    assert_eq!(entries[0]["actor_id"], app.agency.party.id);
    assert_eq!(entries[1]["actor_id"], app.airline.id);
    assert_eq!(entries[4]["actor_id"], app.airline.id);
    assert_eq!(entries[4]["agency_id"], app.agency.party.id);
    assert!(entries
        .iter()
        .all(|e| e["request_id"].as_str().is_some_and(|r| !r.is_empty())));
}

async fn audit_entries_hold_no_contact_name_or_token(app: TestApp) {
    let token = app.granted_token().await;
    app.redeem(&app.airline.api_key, &token).await;
    let trail = app
        .get("/v1/audit/entries", &app.officer.api_key)
        .await
        .text()
        .await
        .unwrap()
        .to_lowercase();
    let (_, token_secret) = token.split_once('.').unwrap();
    for secret in [
        MOBILE,
        "612345678",
        EMAIL,
        "marie",
        "dupont",
        token_secret,
        &token,
    ] {
        assert!(
            !trail.contains(&secret.to_lowercase()),
            "`{secret}` appears in the audit trail"
        );
    }
}

async fn each_leaf_hash_can_be_recomputed_from_its_entry(app: TestApp) {
    let token = app.granted_token().await;
    app.redeem(&app.airline.api_key, &token).await;
    for listed in app.audit_entries().await {
        let mut entry = listed.clone();
        let leaf = entry.as_object_mut().unwrap().remove("leaf_hash").unwrap();
        let entry: AuditEntry = serde_json::from_value(entry).unwrap();
        let recomputed: String = entry
            .leaf_hash()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(leaf, recomputed);
    }
}

async fn the_trail_is_read_a_page_at_a_time(app: TestApp) {
    let token = app.granted_token().await;
    app.redeem(&app.airline.api_key, &token).await;
    let first: Value = app
        .get_json("/v1/audit/entries?limit=2", &app.officer.api_key)
        .await;
    assert_eq!(first["entries"].as_array().unwrap().len(), 2);
    assert_eq!(first["next_after"], 1);
    assert_eq!(first["tree_size"], 4);
    let second: Value = app
        .get_json("/v1/audit/entries?limit=2&after=1", &app.officer.api_key)
        .await;
    assert_eq!(second["entries"][0]["index"], 2);
    assert!(
        second.get("next_after").is_none(),
        "the last page has no next_after"
    );
}

async fn a_bad_page_size_is_refused_by_name(app: TestApp) {
    let problem = assert_problem(
        app.get("/v1/audit/entries?limit=0", &app.officer.api_key)
            .await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "limit");
    let problem = assert_problem(
        app.get("/v1/audit/entries?limit=ten", &app.officer.api_key)
            .await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "limit");
    let problem = assert_problem(
        app.get("/v1/audit/entries?colour=blue", &app.officer.api_key)
            .await,
        422,
        "invalid-field",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("colour"));
}

async fn when_the_audit_log_cannot_be_written_actions_are_refused_readyz_says_so_and_the_broker_recovers(
    app: TestApp,
) {
    sqlx::query("ALTER TABLE audit_entries RENAME TO audit_entries_away")
        .execute(app.store.reader())
        .await
        .unwrap();
    let problem =
        assert_problem(app.upload(&app.statement()).await, 503, "audit-unavailable").await;
    assert!(
        !problem["detail"]
            .as_str()
            .unwrap()
            .contains("audit_entries"),
        "a 5xx says nothing internal"
    );
    let not_ready = assert_problem(app.get("/readyz", "").await, 503, "audit-unavailable").await;
    assert!(not_ready["detail"]
        .as_str()
        .unwrap()
        .contains("actions are refused"));
    sqlx::query("ALTER TABLE audit_entries_away RENAME TO audit_entries")
        .execute(app.store.reader())
        .await
        .unwrap();
    let stored: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM consents")
        .fetch_one(app.store.reader())
        .await
        .unwrap();
    assert_eq!(stored.0, 0, "the consent rolled back with its audit entry");
    assert_eq!(
        app.get("/readyz", "").await.status(),
        200,
        "ready once the log is writable"
    );
    assert_eq!(
        app.upload(&app.statement()).await.status(),
        201,
        "and the broker recovers"
    );
}
