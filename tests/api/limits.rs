//! The airlines' rate limits: what an airline asks for is weighed by the travellers it
//! covers, the use of tokens it was granted is free, refused uses spend a budget of
//! their own, and on PostgreSQL two brokers share each budget.

use crate::broker::letters;
use crate::helpers::{assert_problem, granted_tokens, Engine, TestApp};
use passerelle::policy::engine::Policies;
use passerelle::policy::tunables::RateLimit;
use passerelle::service::Settings;
use serde_json::{json, Value};
use std::sync::Arc;

/// A broker whose airline budgets are these.
async fn limited(engine: Engine, limit: RateLimit) -> Option<TestApp> {
    let mut policies = Policies::built_in().unwrap();
    policies.tunables.rate_limit = limit;
    let settings = Settings {
        policies: Arc::new(policies),
        ..crate::helpers::test_settings()
    };
    TestApp::with(engine, settings).await
}

/// Budgets that never refill within a test: `asks` travellers, `refused` refused uses.
fn budgets(asks: u32, refused: u32) -> RateLimit {
    RateLimit {
        travellers_per_second: 1,
        burst: asks,
        refused_uses_per_minute: 1,
        refused_uses_burst: refused,
    }
}

/// Checks a `429` whose detail names the budget, and returns its `Retry-After`.
async fn assert_waits(response: reqwest::Response, budget: &str) -> u32 {
    let wait = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let problem = assert_problem(response, 429, "rate-limited").await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains(budget), "{detail}");
    wait
}

/// Uploads `n` travellers of booking ABC123 on AF1234 in one batch.
async fn travellers_on_the_flight(app: &TestApp, n: usize) {
    let body: String = (0..n)
        .map(|i| {
            let statement = app.statement_for(
                &format!("L-{i}"),
                &format!("Traveller{}", letters(i)),
                &format!("+336{:08}", 20_000_000 + i),
            );
            app.signed(&app.agency.jwk, &statement).to_string() + "\n"
        })
        .collect();
    let response = app
        .post_raw(
            "/v1/consents/batch",
            &app.agency.party.api_key,
            "application/x-ndjson",
            body,
        )
        .await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["counts"]["stored"], n);
}

async fn with_the_shipped_limits_an_airline_uses_every_token_of_a_large_flight_at_once(
    engine: Engine,
) {
    let Some(app) = TestApp::with(engine, crate::helpers::test_settings()).await else {
        return;
    };
    // More uses at once than the old per-request limit (a burst of 200) allowed.
    let n = 260;
    travellers_on_the_flight(&app, n).await;
    let grant = app
        .flight_tokens_json(
            &app.airline.api_key,
            &app.flight_request("cancellation").await,
        )
        .await;
    let tokens = granted_tokens(&grant);
    assert_eq!(tokens.len(), n, "{grant}");
    let mut statuses = Vec::new();
    for chunk in tokens.chunks(32) {
        let mut redemptions = tokio::task::JoinSet::new();
        for token in chunk {
            let request = app
                .client
                .post(format!("{}/v1/releases", app.url))
                .bearer_auth(&app.airline.api_key)
                .json(&json!({"token": token}));
            redemptions.spawn(async move { request.send().await.unwrap().status().as_u16() });
        }
        statuses.extend(redemptions.join_all().await);
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

/// An unknown token, well formed.
const UNKNOWN: &str = "pas_token_0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

// The budgets below refill at 1 traveller a second and 1 refused use a minute, with
// margins of ten seconds or more: a slow machine cannot refill them mid-test.

async fn a_flight_is_weighed_by_the_travellers_it_covers(engine: Engine) {
    let Some(app) = limited(engine, budgets(30, 100)).await else {
        return;
    };
    travellers_on_the_flight(&app, 20).await;
    let first = app
        .flight_tokens(
            &app.airline.api_key,
            &app.flight_request("cancellation").await,
        )
        .await;
    assert_eq!(first.status(), 200, "20 of 30");
    let second = app
        .flight_tokens(
            &app.airline.api_key,
            &app.flight_request("cancellation").await,
        )
        .await;
    let wait = assert_waits(second, "travellers").await;
    assert!((8..=10).contains(&wait), "10 left, 20 asked: {wait}");
    // A smaller ask still fits what is left.
    let mut one = app.token_request().await;
    one["traveller"] = json!({"surname": "TRAVELLERA", "given_name": "MARIE"});
    assert_eq!(
        app.request_token(&app.airline.api_key, &one).await.status(),
        201
    );
    let other = app
        .flight_tokens(
            &app.other_airline.api_key,
            &app.flight_request("cancellation").await,
        )
        .await;
    assert_ne!(other.status(), 429, "budgets are per airline");
    assert_eq!(
        app.get("/v1/consents", &app.agency.party.api_key)
            .await
            .status(),
        200,
        "agencies are not limited"
    );
}

async fn an_airline_that_asked_all_it_may_still_uses_every_token_it_holds(engine: Engine) {
    let Some(app) = limited(engine, budgets(20, 100)).await else {
        return;
    };
    travellers_on_the_flight(&app, 20).await;
    let tokens = granted_tokens(
        &app.flight_tokens_json(
            &app.airline.api_key,
            &app.flight_request("cancellation").await,
        )
        .await,
    );
    assert_eq!(tokens.len(), 20);
    for token in &tokens {
        assert_eq!(app.redeem(&app.airline.api_key, token).await.status(), 200);
    }
    assert_eq!(
        app.get("/v1/airline/link-domains", &app.airline.api_key)
            .await
            .status(),
        200,
        "reads are not asks"
    );
    assert_problem(
        app.flight_tokens(
            &app.airline.api_key,
            &app.flight_request("cancellation").await,
        )
        .await,
        429,
        "rate-limited",
    )
    .await;
}

async fn refused_uses_spend_a_budget_after_which_the_airlines_uses_wait(engine: Engine) {
    let Some(app) = limited(engine, budgets(100, 2)).await else {
        return;
    };
    travellers_on_the_flight(&app, 2).await;
    let tokens = granted_tokens(
        &app.flight_tokens_json(
            &app.airline.api_key,
            &app.flight_request("cancellation").await,
        )
        .await,
    );
    assert_eq!(
        app.redeem(&app.airline.api_key, &tokens[0]).await.status(),
        200
    );
    assert_problem(
        app.redeem(&app.airline.api_key, &tokens[0]).await,
        410,
        "token-used",
    )
    .await;
    assert_problem(
        app.redeem(&app.airline.api_key, UNKNOWN).await,
        404,
        "token-not-found",
    )
    .await;
    let entries_before = app.audit_entries().await.len();
    let waiting = app.redeem(&app.airline.api_key, &tokens[1]).await;
    let wait = assert_waits(waiting, "refused").await;
    assert!((50..=60).contains(&wait), "a minute to refill one: {wait}");
    assert_eq!(
        app.audit_entries().await.len(),
        entries_before,
        "refused before any work"
    );
    // Asking is another budget, and the other airline has its own.
    assert_eq!(
        app.flight_tokens(
            &app.airline.api_key,
            &app.flight_request("cancellation").await
        )
        .await
        .status(),
        200
    );
    assert_problem(
        app.redeem(&app.other_airline.api_key, &tokens[1]).await,
        404,
        "token-not-found",
    )
    .await;
}

async fn uses_refused_by_the_travellers_withdrawal_spend_no_budget(engine: Engine) {
    let Some(app) = limited(engine, budgets(100, 1)).await else {
        return;
    };
    let token = app.granted_token().await;
    app.withdraw_first_record().await;
    for _ in 0..3 {
        assert_problem(
            app.redeem(&app.airline.api_key, &token).await,
            410,
            "token-revoked",
        )
        .await;
    }
}

crate::on_both_engines_with_engine!(
    with_the_shipped_limits_an_airline_uses_every_token_of_a_large_flight_at_once,
    a_flight_is_weighed_by_the_travellers_it_covers,
    an_airline_that_asked_all_it_may_still_uses_every_token_it_holds,
    refused_uses_spend_a_budget_after_which_the_airlines_uses_wait,
    uses_refused_by_the_travellers_withdrawal_spend_no_budget,
);

#[tokio::test]
async fn two_brokers_on_one_postgresql_share_each_airlines_budgets() {
    let Some(app) = limited(Engine::Postgres, budgets(30, 1)).await else {
        return;
    };
    let (second, _) = app.another_broker().await;
    travellers_on_the_flight(&app, 20).await;
    let post = |url: &str, path: &str, body: Value| {
        app.client
            .post(format!("{url}{path}"))
            .bearer_auth(&app.airline.api_key)
            .json(&body)
            .send()
    };
    let grant = "/v1/flights/release-tokens";
    let at_a = post(&app.url, grant, app.flight_request("cancellation").await)
        .await
        .unwrap();
    assert_eq!(at_a.status(), 200, "A: 20 of 30");
    let at_b = post(&second, grant, app.flight_request("cancellation").await)
        .await
        .unwrap();
    assert_problem(at_b, 429, "rate-limited").await;

    // Spent at A, the refused-uses budget is spent at B from B's first refusal there.
    let unknown = || json!({"token": UNKNOWN});
    let release = "/v1/releases";
    for (url, status, slug) in [
        (&app.url, 404, "token-not-found"),
        (&app.url, 429, "rate-limited"),
        (&second, 404, "token-not-found"),
        (&second, 429, "rate-limited"),
    ] {
        let answer = post(url, release, unknown()).await.unwrap();
        assert_problem(answer, status, slug).await;
    }
}
