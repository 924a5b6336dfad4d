//! A hostile tenant, holding one agency key or one airline key: what it sends is
//! bounded by the broker's limits, the broker's own requests go only where intended,
//! and nothing it does holds back another party.

use crate::broker::letters;
use crate::fakes::{BlackHole, FakeHttp};
use crate::helpers::{
    assert_problem, test_settings, Engine, TestApp, FLIGHT_DATE, OTHER_AGENCY_IATA,
};
use crate::on_both_engines_with_engine;
use passerelle::outbound::Outbound;
use passerelle::service::settings::BatchLimits;
use passerelle::service::{RelaySettings, Settings};
use passerelle::workers::relay::{self, Transports};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

on_both_engines_with_engine!(
    a_batch_over_the_record_cap_is_refused_whole_before_anything_is_stored,
    junk_lines_stop_the_reading_at_the_rejection_limit_and_store_nothing,
    an_ssr_import_is_checked_whole_before_any_passenger_is,
    a_webhook_that_points_inside_is_refused_at_registration,
    a_webhook_that_resolves_inside_at_delivery_is_not_called,
    no_redirect_is_followed_by_a_webhook_push_or_the_sms_gateway,
    a_slow_upload_and_a_dead_webhook_hold_back_no_other_party,
    an_idempotency_key_is_refused_where_the_answer_could_not_be_kept,
);

/// A signed record for the test agency, traveller `i` of booking ABC123.
fn record(app: &TestApp, i: usize) -> Value {
    let mobile = format!("+336{:08}", 20_000_000 + i);
    app.signed(
        &app.agency.jwk,
        &app.statement_for(
            &format!("H-{i}"),
            &format!("Hostile{}", letters(i)),
            &mobile,
        ),
    )
}

fn ndjson(records: &[Value]) -> String {
    records.iter().map(|r| r.to_string() + "\n").collect()
}

async fn upload_ndjson(app: &TestApp, query: &str, body: String) -> reqwest::Response {
    app.post_raw(
        &format!("/v1/consents/batch{query}"),
        &app.agency.party.api_key,
        "application/x-ndjson",
        body,
    )
    .await
}

async fn stored_records(app: &TestApp) -> usize {
    app.get_json("/v1/consents?limit=1000", &app.agency.party.api_key)
        .await["records"]
        .as_array()
        .unwrap()
        .len()
}

/// A test broker whose bulk requests hold at most `max_records` records.
async fn with_record_cap(engine: Engine, max_records: usize) -> Option<TestApp> {
    let settings = Settings {
        batch: BatchLimits {
            max_records,
            ..BatchLimits::default()
        },
        ..test_settings()
    };
    TestApp::with(engine, settings).await
}

async fn a_batch_over_the_record_cap_is_refused_whole_before_anything_is_stored(engine: Engine) {
    let Some(app) = with_record_cap(engine, 5).await else {
        return;
    };
    let six: Vec<Value> = (0..6).map(|i| record(&app, i)).collect();
    for query in ["", "?atomic=true"] {
        let body = assert_problem(
            upload_ndjson(&app, query, ndjson(&six)).await,
            413,
            "batch-too-large",
        )
        .await;
        assert_eq!(body["max_records"], 5);
        assert!(body["detail"]
            .as_str()
            .unwrap()
            .contains("nothing was stored"));
        assert_eq!(stored_records(&app).await, 0, "{query}: nothing stored");
    }
    let array = json!(six).to_string();
    assert_problem(
        app.post_raw(
            "/v1/consents/batch",
            &app.agency.party.api_key,
            "application/json",
            array,
        )
        .await,
        413,
        "batch-too-large",
    )
    .await;
    // At the cap, the batch is stored.
    let five = upload_ndjson(&app, "", ndjson(&six[..5])).await;
    assert_eq!(five.status(), 200);
    assert_eq!(stored_records(&app).await, 5);
}

async fn junk_lines_stop_the_reading_at_the_rejection_limit_and_store_nothing(engine: Engine) {
    let Some(app) = TestApp::with(engine, test_settings()).await else {
        return;
    };
    let limit = app.state.settings.batch.max_rejected;
    // A valid record, then tiny junk lines by the thousand: what took a broker to
    // gigabytes when each kept a report.
    let mut body = record(&app, 0).to_string() + "\n";
    body.push_str(&"1\n".repeat(200_000));
    let response = upload_ndjson(&app, "", body).await;
    let problem = assert_problem(response, 422, "batch-rejected").await;
    let results = problem["results"].as_array().unwrap();
    assert_eq!(
        results.len(),
        limit + 2,
        "the valid record and the rejected ones up to the one past the limit; no more read"
    );
    assert_eq!(problem["counts"]["rejected"], limit + 1);
    assert_eq!(results[0]["outcome"], "not_stored");
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains(&format!("after {limit} rejected records")));
    assert_eq!(stored_records(&app).await, 0);
    // Each report stays small whatever the line held.
    let long = format!(
        "{{\"statement\": {{\"{}\": 1}}, \"signature\": \"x\"}}\n",
        "k".repeat(60_000)
    );
    let report: Value = upload_ndjson(&app, "", long).await.json().await.unwrap();
    let reported = report["results"][0].to_string();
    assert!(reported.len() < 2_000, "{} bytes", reported.len());
}

/// An SSR import with `passengers` passengers and the test booking.
fn ssr_import(passengers: usize) -> Value {
    let passengers: Vec<Value> = (0..passengers)
        .map(|i| json!({"ref": format!("P{}", i + 1), "surname": "Dupont", "given_name": letters(i), "record_id": format!("S-{i}")}))
        .collect();
    let elements: Vec<String> = (0..passengers.len())
        .map(|i| format!("SRCTCM-3361{:07}/P{}", 2_000_000 + i, i + 1))
        .collect();
    json!({
        "gds": "amadeus",
        "booking": {"record_locator": "SSR001", "segments": [{"carrier": "AF", "flight_number": "1234", "date": FLIGHT_DATE}]},
        "jurisdiction": "FR",
        "consent": {"purposes": ["cancellation"], "recipients": "itinerary",
            "notice": {"version": "n-1", "language": "fr", "sha256": crate::helpers::NOTICE_SHA256},
            "collection_method": "recorded_call", "collected_at": "2026-11-20T09:30:00Z"},
        "passengers": passengers,
        "elements": elements.join("\n"),
    })
}

async fn an_ssr_import_is_checked_whole_before_any_passenger_is(engine: Engine) {
    let Some(app) = TestApp::with(engine, test_settings()).await else {
        return;
    };
    let key = app.agency.party.api_key.clone();
    let import = |value: Value| {
        let app = &app;
        let key = key.clone();
        async move { app.post("/v1/consents/ssr", &key, &value).await }
    };
    // A PNR holds at most 99 passengers.
    let problem = assert_problem(import(ssr_import(100)).await, 422, "invalid-field").await;
    assert_eq!(problem["errors"][0]["field"], "passengers");
    assert_eq!(import(ssr_import(99)).await.status(), 200);
    // A booking that is not one is refused once, not copied into every passenger's
    // statement (20,000 elements for 99 passengers took a broker to gigabytes).
    let mut junk = ssr_import(99);
    junk["booking"] = json!(vec![0; 20_000]);
    let problem = assert_problem(import(junk.clone()).await, 422, "invalid-field").await;
    assert!(problem["errors"][0]["field"]
        .as_str()
        .unwrap()
        .starts_with("booking"));
    assert!(problem.get("results").is_none(), "no passenger was handled");
    let mut junk = ssr_import(2);
    junk["consent"]["purposes"] = json!(vec!["cancellation"; 5_000]);
    junk["consent"]["extra"] = json!("x");
    let problem = assert_problem(import(junk.clone()).await, 422, "invalid-field").await;
    assert!(problem["errors"][0]["field"]
        .as_str()
        .unwrap()
        .starts_with("consent"));
    let mut many_lines = ssr_import(1);
    many_lines["elements"] = json!("SRCTCM-33612345678/P1\n".repeat(501));
    let problem = assert_problem(import(many_lines).await, 422, "invalid-field").await;
    assert_eq!(problem["errors"][0]["field"], "elements");
}

/// The settings a broker ships with: outbound requests to public https only.
fn strict_settings() -> Settings {
    Settings {
        secure_cookies: false,
        ..Settings::default()
    }
}

async fn a_webhook_that_points_inside_is_refused_at_registration(engine: Engine) {
    let Some(app) = TestApp::with(engine, strict_settings()).await else {
        return;
    };
    for url in [
        "https://169.254.169.254/latest/meta-data/iam/",
        "https://10.0.0.5:8443/admin",
        "https://192.168.1.10/",
        "https://100.100.100.200/",
        "https://[fd00:ec2::254]/",
        "https://[::1]:8080/",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://localhost:6379/",
        "https://127.0.0.1:2375/containers/json",
        "https://2130706433/",
        "http://localhost:6379/",
        "http://hooks.example.com/",
        "https://user:pass@hooks.example.com/",
        "https://intranet/hook",
    ] {
        let problem = assert_problem(
            app.put(
                "/v1/agency/webhook",
                &app.agency.party.api_key,
                &json!({ "url": url }),
            )
            .await,
            422,
            "invalid-field",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "url", "{url}");
    }
    let hooks = passerelle::store::parties::webhook(
        &mut app.store.reader().acquire().await.unwrap(),
        &app.agency.party.id,
    )
    .await
    .unwrap();
    assert!(hooks.is_none(), "nothing was registered");
}

/// Registers `url` as the agency's webhook straight in the database, as if it had
/// pointed somewhere public when it was registered (a name that now resolves inside:
/// DNS rebinding). Returns the secret.
async fn plant_webhook(app: &TestApp, url: &str) {
    let sealed_secret = app.state.keys.keys().root().seal(
        passerelle::service::uses::webhook_secret_slot(&app.agency.party.id),
        b"whsec_planted",
    );
    let mut tx = app.store.begin().await.unwrap();
    passerelle::store::parties::set_webhook(
        &mut tx,
        &app.agency.party.id,
        Some(&passerelle::store::parties::Webhook {
            url: url.to_string(),
            sealed_secret,
        }),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

/// A use of the agency's client (AF's grant for Marie), whose push is queued.
async fn a_use(app: &TestApp) {
    app.upload_default().await;
    let granted = app
        .request_token(&app.airline.api_key, &app.token_request().await)
        .await;
    assert_eq!(granted.status(), 201);
}

async fn last_push_error(app: &TestApp) -> (String, Option<String>) {
    let row: (String, Option<String>) = sqlx::query_as(
        "SELECT status, last_error FROM webhook_deliveries ORDER BY attempts DESC, id LIMIT 1",
    )
    .fetch_one(app.store.reader())
    .await
    .unwrap();
    row
}

async fn a_webhook_that_resolves_inside_at_delivery_is_not_called(engine: Engine) {
    let Some(app) = TestApp::with(engine, strict_settings()).await else {
        return;
    };
    let inside = FakeHttp::start().await;
    let port = inside.url.rsplit(':').next().unwrap().to_string();
    plant_webhook(&app, &format!("https://localhost:{port}")).await;
    a_use(&app).await;
    let transports = Transports::new(&RelaySettings::default(), Outbound::default()).unwrap();
    relay::deliver_due(&app.state, &transports).await.unwrap();
    assert!(inside.received().is_empty(), "nothing reached the inside");
    let (status, error) = last_push_error(&app).await;
    assert_eq!(status, "failed", "refused for good, not retried");
    assert!(
        error.as_deref().unwrap().starts_with("refused"),
        "{error:?}"
    );
}

/// A test broker whose SMS gateway is a fake on loopback.
async fn with_gateway(engine: Engine) -> Option<(TestApp, FakeHttp, Settings)> {
    let gateway = FakeHttp::start().await;
    let settings = Settings {
        relay: RelaySettings {
            sms_gateway_url: Some(gateway.url.clone()),
            ..RelaySettings::default()
        },
        ..test_settings()
    };
    let app = TestApp::with(engine, settings.clone()).await?;
    Some((app, gateway, settings))
}

/// Registers the agency's webhook through the API.
async fn register_webhook(app: &TestApp, url: &str) {
    let registered = app
        .put(
            "/v1/agency/webhook",
            &app.agency.party.api_key,
            &json!({ "url": url }),
        )
        .await;
    assert_eq!(registered.status(), 201);
}

async fn no_redirect_is_followed_by_a_webhook_push_or_the_sms_gateway(engine: Engine) {
    let Some((app, gateway, settings)) = with_gateway(engine).await else {
        return;
    };
    let elsewhere = FakeHttp::start().await;
    let hook = FakeHttp::start().await;
    hook.redirect_to(&elsewhere.url);
    gateway.redirect_to(&elsewhere.url);
    register_webhook(&app, &hook.url).await;
    app.put(
        "/v1/agency/delivery",
        &app.agency.party.api_key,
        &json!({"delivery": "relay"}),
    )
    .await;
    a_use(&app).await;
    let granted: Value = app
        .flight_tokens_json(
            &app.airline.api_key,
            &app.flight_request("cancellation").await,
        )
        .await;
    let token = granted["granted"][0]["token"].as_str().unwrap();
    let sent = app
        .post(
            "/v1/messages",
            &app.airline.api_key,
            &json!({"token": token, "channel": "sms", "category": "cancellation", "text": "AF1234 is cancelled."}),
        )
        .await;
    assert_eq!(sent.status(), 202);
    let message: Value = sent.json().await.unwrap();
    let transports = Transports::new(&settings.relay, settings.outbound).unwrap();
    relay::deliver_due(&app.state, &transports).await.unwrap();
    assert!(!hook.received().is_empty() && !gateway.received().is_empty());
    assert!(
        elsewhere.received().is_empty(),
        "neither the signed push nor the traveller's number went where the 307 pointed"
    );
    let status = app
        .get_json(
            &format!("/v1/messages/{}", message["message_id"].as_str().unwrap()),
            &app.airline.api_key,
        )
        .await;
    assert_eq!(status["status"], "failed");
    assert_eq!(status["last_error"], "gateway http 307");
    let (_, error) = last_push_error(&app).await;
    assert_eq!(error.as_deref(), Some("http 307"));
}

async fn a_slow_upload_and_a_dead_webhook_hold_back_no_other_party(engine: Engine) {
    let Some((app, gateway, settings)) = with_gateway(engine).await else {
        return;
    };
    // The first agency's webhook never answers; a use of its client queues a push.
    let dead = BlackHole::start().await;
    register_webhook(&app, &dead.url).await;
    a_use(&app).await;
    // The second agency's client, relay-only, on the same AF flight.
    let other = &app.other_agency;
    app.put(
        "/v1/agency/delivery",
        &other.party.api_key,
        &json!({"delivery": "relay"}),
    )
    .await;
    let mut statement = app.statement_for("O-1", "Martin", "+33698765432");
    statement["agency"] = json!(OTHER_AGENCY_IATA);
    statement["booking"]["record_locator"] = json!("OTH001");
    let uploaded = app
        .post(
            "/v1/consents",
            &other.party.api_key,
            &app.signed(&other.jwk, &statement),
        )
        .await;
    assert_eq!(uploaded.status(), 201, "{}", uploaded.text().await.unwrap());
    let workers = tokio::spawn(relay::run(
        app.state.clone(),
        Transports::new(&settings.relay, settings.outbound).unwrap(),
    ));

    // The first agency streams an all-or-nothing upload: 300 records, then 8 s of
    // silence before the end of the body.
    let lines: Vec<String> = (0..300)
        .map(|i| record(&app, i).to_string() + "\n")
        .collect();
    let body = futures_util::stream::unfold(0usize, move |step| {
        let lines = lines.clone();
        async move {
            match step {
                0 => Some((Ok::<_, std::io::Error>(lines.concat()), 1)),
                1 => {
                    tokio::time::sleep(Duration::from_secs(8)).await;
                    Some((Ok(String::new()), 2))
                }
                _ => None,
            }
        }
    });
    let slow = app
        .client
        .post(format!("{}/v1/consents/batch?atomic=true", app.url))
        .bearer_auth(&app.agency.party.api_key)
        .header("content-type", "application/x-ndjson")
        .body(reqwest::Body::wrap_stream(body))
        .send();
    let slow = tokio::spawn(slow);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(dead.accepted() >= 1, "the dead webhook holds a push");

    // Meanwhile AF asks for the flight's tokens and relays a message to the second
    // agency's client: neither waits for the stream or the webhook.
    let started = Instant::now();
    let granted = app
        .flight_tokens(
            &app.airline.api_key,
            &app.flight_request("cancellation").await,
        )
        .await;
    assert_eq!(granted.status(), 200);
    let granted_in = started.elapsed();
    let granted: Value = granted.json().await.unwrap();
    let token = granted["granted"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["delivery"] == "relay")
        .expect("the second agency's client")["token"]
        .as_str()
        .unwrap()
        .to_string();
    let started = Instant::now();
    let sent = app
        .post(
            "/v1/messages",
            &app.airline.api_key,
            &json!({"token": token, "channel": "sms", "category": "cancellation", "text": "AF1234 is cancelled."}),
        )
        .await;
    assert_eq!(sent.status(), 202);
    while gateway.received().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the relayed SMS waits behind someone"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let relayed_in = started.elapsed();
    assert!(
        granted_in < Duration::from_secs(1),
        "the token request took {granted_in:?}"
    );
    assert!(relayed_in < Duration::from_secs(1), "{relayed_in:?}");

    // The slow upload ends well, all of it stored.
    let done = slow.await.unwrap().unwrap();
    assert_eq!(done.status(), 200);
    let report: Value = done.json().await.unwrap();
    assert_eq!(report["counts"]["stored"], 300);
    workers.abort();
}

async fn an_idempotency_key_is_refused_where_the_answer_could_not_be_kept(engine: Engine) {
    let Some(app) = with_record_cap(engine, 1_000_000).await else {
        return;
    };
    let body = ndjson(&[record(&app, 0)]);
    let with_key = app
        .client
        .post(format!("{}/v1/consents/batch", app.url))
        .bearer_auth(&app.agency.party.api_key)
        .header("content-type", "application/x-ndjson")
        .header("idempotency-key", "batch-1")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let problem = assert_problem(with_key, 422, "invalid-field").await;
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");
    assert_eq!(stored_records(&app).await, 0, "refused before any work");
    assert_eq!(upload_ndjson(&app, "", body).await.status(), 200);
    // One record at a time needs no such bound.
    let single = app
        .client
        .post(format!("{}/v1/consents", app.url))
        .bearer_auth(&app.agency.party.api_key)
        .header("idempotency-key", "single-1")
        .json(&record(&app, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(single.status(), 201);
}
