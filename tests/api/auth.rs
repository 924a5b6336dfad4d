//! Every route takes only its own kind of party, and only with a live key.

use crate::helpers::{assert_problem, TestApp};
use crate::on_both_engines;
use passerelle::crypto::secret;
use serde_json::json;

on_both_engines!(
    every_party_route_refuses_a_missing_key,
    every_party_route_refuses_a_key_it_never_issued,
    every_party_route_refuses_the_other_kinds_of_party,
    a_key_with_another_kinds_prefix_is_not_a_key,
);

/// (method, path, the kind of party it is for).
const PARTY_ROUTES: [(&str, &str, &str); 4] = [
    ("POST", "/v1/consents", "agency"),
    ("POST", "/v1/release-tokens", "airline"),
    ("POST", "/v1/releases", "airline"),
    ("GET", "/v1/audit/entries", "officer"),
];

async fn call(app: &TestApp, method: &str, path: &str, key: Option<&str>) -> reqwest::Response {
    let url = format!("{}{path}", app.url);
    let mut request = match method {
        "POST" => app.client.post(url).json(&json!({})),
        _ => app.client.get(url),
    };
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

async fn every_party_route_refuses_a_missing_key(app: TestApp) {
    for (method, path, _) in PARTY_ROUTES {
        let response = call(&app, method, path, None).await;
        assert_eq!(
            response.headers().get("www-authenticate").unwrap(),
            "Bearer"
        );
        assert_problem(response, 401, "unauthorized").await;
    }
}

async fn every_party_route_refuses_a_key_it_never_issued(app: TestApp) {
    for (method, path, kind) in PARTY_ROUTES {
        let forged = secret::issue(&format!("pas_{kind}_")).plaintext;
        assert_problem(
            call(&app, method, path, Some(&forged)).await,
            401,
            "unauthorized",
        )
        .await;
    }
}

async fn every_party_route_refuses_the_other_kinds_of_party(app: TestApp) {
    let keys = [
        ("agency", &app.agency.party.api_key),
        ("airline", &app.airline.api_key),
        ("officer", &app.officer.api_key),
    ];
    for (method, path, route_kind) in PARTY_ROUTES {
        for (kind, key) in keys {
            let response = call(&app, method, path, Some(key)).await;
            if kind == route_kind {
                assert!(
                    ![401, 403].contains(&response.status().as_u16()),
                    "{kind} on {path}"
                );
            } else {
                assert_problem(response, 403, "wrong-party-kind").await;
            }
        }
    }
}

async fn a_key_with_another_kinds_prefix_is_not_a_key(app: TestApp) {
    let airline_key = app.airline.api_key.replace("pas_airline_", "pas_officer_");
    assert_problem(
        call(&app, "GET", "/v1/audit/entries", Some(&airline_key)).await,
        401,
        "unauthorized",
    )
    .await;
}
