//! The edges: every error is problem+json with a request id; health, readiness and
//! metrics answer.

use crate::helpers::{assert_problem, TestApp};
use crate::on_both_engines;
use serde_json::Value;

on_both_engines!(
    malformed_json_is_a_problem_with_its_position,
    a_body_that_is_not_json_is_refused_by_media_type,
    an_oversized_body_is_refused,
    an_unknown_route_is_a_problem,
    a_wrong_method_is_a_problem,
    every_response_carries_a_request_id_and_a_plain_one_is_kept,
    health_and_readiness_answer,
    metrics_count_requests_and_decisions,
);

async fn post_raw(
    app: &TestApp,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/consents", app.url))
        .bearer_auth(&app.agency.party.api_key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn malformed_json_is_a_problem_with_its_position(app: TestApp) {
    let problem = assert_problem(
        post_raw(&app, "application/json", "{\"statement\": ").await,
        400,
        "malformed-json",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("line 1"));
    let problem = assert_problem(
        post_raw(&app, "application/json", "{} trailing").await,
        400,
        "malformed-json",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("column"));
}

async fn a_body_that_is_not_json_is_refused_by_media_type(app: TestApp) {
    assert_problem(
        post_raw(&app, "text/plain", "{}").await,
        415,
        "unsupported-media-type",
    )
    .await;
}

async fn an_oversized_body_is_refused(app: TestApp) {
    let big = format!("{{\"statement\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    assert_problem(
        post_raw(&app, "application/json", big).await,
        413,
        "body-too-large",
    )
    .await;
}

async fn an_unknown_route_is_a_problem(app: TestApp) {
    assert_problem(app.get("/v1/nowhere", "").await, 404, "not-found").await;
}

async fn a_wrong_method_is_a_problem(app: TestApp) {
    assert_problem(
        app.get("/v1/releases", &app.airline.api_key).await,
        405,
        "method-not-allowed",
    )
    .await;
}

async fn every_response_carries_a_request_id_and_a_plain_one_is_kept(app: TestApp) {
    let response = app
        .client
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap();
    assert!(response
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("req_"));
    let kept = app
        .client
        .get(format!("{}/healthz", app.url))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers().get("x-request-id").unwrap(), "trace-42");
    let unsafe_id = app
        .client
        .get(format!("{}/healthz", app.url))
        .header("x-request-id", "a b\"c")
        .send()
        .await
        .unwrap();
    assert!(unsafe_id
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("req_"));
}

async fn health_and_readiness_answer(app: TestApp) {
    let health: Value = app
        .client
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let ready = app
        .client
        .get(format!("{}/readyz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    app.store.close().await;
    let not_ready = app
        .client
        .get(format!("{}/readyz", app.url))
        .send()
        .await
        .unwrap();
    assert_problem(not_ready, 503, "unavailable").await;
}

async fn metrics_count_requests_and_decisions(app: TestApp) {
    let token = app.granted_token().await;
    app.redeem(&app.airline.api_key, &token).await;
    app.redeem(&app.airline.api_key, &token).await;
    // Business volumes are an officer's to read: no key, or another kind, is refused.
    assert_eq!(
        app.client
            .get(format!("{}/metrics", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        app.get("/metrics", &app.airline.api_key).await.status(),
        403
    );
    let text = app
        .get("/metrics", &app.officer.api_key)
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains("passerelle_http_requests_total{method=\"POST\",route=\"/v1/releases\",status=\"200\"} 1"), "{text}");
    assert!(text.contains(
        "passerelle_http_requests_total{method=\"POST\",route=\"/v1/releases\",status=\"410\"} 1"
    ));
    assert!(text.contains(
        "passerelle_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/consents\"} 1"
    ));
    assert!(text.contains("passerelle_grants_total 1"));
    assert!(text.contains("passerelle_releases_total 1"));
    assert!(text.contains(
        "passerelle_refusals_total{action=\"token_redemption\",reason=\"token_used\"} 1"
    ));
    assert!(!text.contains(&token));
    // What SQLite holds in the process, shown only when SQLite is the engine.
    let heap = text
        .lines()
        .find_map(|l| l.strip_prefix("passerelle_sqlite_heap_bytes "));
    if app.database_url.starts_with("sqlite") {
        assert!(
            heap.is_some_and(|b| b.parse::<i64>().unwrap() > 0),
            "{text}"
        );
    } else {
        assert_eq!(heap, None, "PostgreSQL's memory is the server's");
    }
    // What the allocator holds, on either engine: in use within resident.
    let gauge = |name: &str| -> u64 {
        let prefix = format!("passerelle_allocator_{name}_bytes ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {name} gauge in {text}"))
            .parse()
            .unwrap()
    };
    let (allocated, resident) = (gauge("allocated"), gauge("resident"));
    assert!(0 < allocated && allocated <= resident, "{text}");
}
