//! Disruptions as records: an airline declares, updates and closes them, each audited;
//! tokens are granted only under an open disruption of its own that carries the
//! flight, and closing one revokes the tokens still usable under it.

use crate::helpers::{assert_problem, TestApp, FLIGHT_DATE};
use serde_json::{json, Value};

fn af1234() -> Value {
    json!({"carrier": "AF", "flight_number": "1234", "date": FLIGHT_DATE})
}

fn cancellation(reference: &str, flights: Value) -> Value {
    json!({
        "flights": flights,
        "category": "cancellation",
        "reference": reference,
        "occurred_at": "2026-11-24T09:30:00Z",
        "note": "Snow at CDG; rebooking on the next flight."
    })
}

async fn declare(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.post("/v1/disruptions", key, body).await
}

async fn a_declared_disruption_is_open_audited_and_seen_by_the_agencies_it_affects(app: TestApp) {
    let uploaded = app.upload_default().await;
    let response = declare(
        &app,
        &app.airline.api_key,
        &cancellation("IRR-7", json!([af1234()])),
    )
    .await;
    assert_eq!(response.status(), 201);
    let declared: Value = response.json().await.unwrap();
    let id = declared["id"].as_str().unwrap();
    assert!(id.starts_with("dis_"), "{declared}");
    assert_eq!(declared["state"], "open");
    assert_eq!(declared["revision"], 1);
    assert_eq!(declared["flights"], json!([af1234()]));

    let entry = &app.audit_entries().await[declared["audit_index"].as_u64().unwrap() as usize];
    assert_eq!(entry["action"], "disruption_declaration");
    assert_eq!(entry["outcome"], "recorded");
    assert_eq!(entry["event_reference"], id);
    assert_eq!(entry["event_category"], "cancellation");
    assert_eq!(entry["flight"], format!("AF1234/{FLIGHT_DATE}"));
    assert!(
        !entry.to_string().contains("Snow at CDG"),
        "the note stays out of the log: {entry}"
    );

    for key in [
        &app.airline.api_key,
        &app.agency.party.api_key,
        &app.officer.api_key,
    ] {
        let read: Value = app.get_json(&format!("/v1/disruptions/{id}"), key).await;
        assert_eq!(read["id"], id, "{read}");
        assert_eq!(read["note"], "Snow at CDG; rebooking on the next flight.");
        let listed: Value = app.get_json("/v1/disruptions?state=open", key).await;
        assert_eq!(listed["disruptions"][0]["id"], id, "{listed}");
    }

    // The traveller sees it on their page, without the note meant for agencies.
    let code = uploaded["withdrawal_code"].as_str().unwrap();
    let view = app
        .post("/v1/traveller/uses", "", &json!({"code": code}))
        .await;
    let view: Value = view.json().await.unwrap();
    assert_eq!(
        view["disruptions"],
        json!([{
            "category": "cancellation",
            "flights": [format!("AF1234/{FLIGHT_DATE}")],
            "declared_at": declared["declared_at"]
        }]),
        "{view}"
    );
    assert!(!view.to_string().contains("Snow at CDG"));
}

async fn nobody_else_sees_a_disruption(app: TestApp) {
    app.upload_default().await;
    let id = app.disruption().await;
    // KLM did not declare it; the other agency has no client on its flight.
    for key in [&app.other_airline.api_key, &app.other_agency.party.api_key] {
        assert_problem(
            app.get(&format!("/v1/disruptions/{id}"), key).await,
            404,
            "disruption-not-found",
        )
        .await;
        let listed: Value = app.get_json("/v1/disruptions", key).await;
        assert_eq!(listed["disruptions"], json!([]), "{listed}");
    }
    // Nor may another airline change or close it.
    assert_problem(
        app.post(
            &format!("/v1/disruptions/{id}/closing"),
            &app.other_airline.api_key,
            &json!({}),
        )
        .await,
        404,
        "disruption-not-found",
    )
    .await;
    assert_problem(
        app.post(
            &format!("/v1/disruptions/{id}/updates"),
            &app.other_airline.api_key,
            &json!({"note": "mine now"}),
        )
        .await,
        404,
        "disruption-not-found",
    )
    .await;
    let read: Value = app
        .get_json(&format!("/v1/disruptions/{id}"), &app.airline.api_key)
        .await;
    assert_eq!(read["state"], "open", "{read}");
}

async fn a_declaration_names_only_the_airlines_own_flights_and_each_reference_once(app: TestApp) {
    let klm_flight = json!({"carrier": "KL", "flight_number": "1234", "date": FLIGHT_DATE});
    let problem = assert_problem(
        declare(
            &app,
            &app.airline.api_key,
            &cancellation("IRR-8", json!([af1234(), klm_flight])),
        )
        .await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(
        problem["errors"][0]["field"], "flights[1].carrier",
        "{problem}"
    );

    let mut future = cancellation("IRR-9", json!([af1234()]));
    future["occurred_at"] = json!("2030-01-01T00:00:00Z");
    let problem = assert_problem(
        declare(&app, &app.airline.api_key, &future).await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "occurred_at");

    let mut timed = cancellation("IRR-10", json!([af1234()]));
    timed["new_departure"] = json!("2026-11-24T18:00:00Z");
    let problem = assert_problem(
        declare(&app, &app.airline.api_key, &timed).await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "new_departure");

    let first: Value = declare(
        &app,
        &app.airline.api_key,
        &cancellation("IRR-11", json!([af1234()])),
    )
    .await
    .json()
    .await
    .unwrap();
    let problem = assert_problem(
        declare(
            &app,
            &app.airline.api_key,
            &cancellation("IRR-11", json!([af1234()])),
        )
        .await,
        409,
        "disruption-already-declared",
    )
    .await;
    assert_eq!(problem["disruption_id"], first["id"]);
    assert_problem(
        declare(
            &app,
            &app.agency.party.api_key,
            &cancellation("IRR-12", json!([af1234()])),
        )
        .await,
        403,
        "wrong-party-kind",
    )
    .await;
    let declared = app
        .audit_entries()
        .await
        .iter()
        .filter(|e| e["action"] == "disruption_declaration")
        .count();
    assert_eq!(declared, 1, "only the accepted declaration is in the log");
}

async fn a_grant_names_an_open_disruption_of_the_airline_carrying_the_flight(app: TestApp) {
    app.upload_default().await;
    let mut request = app.token_request().await;

    request["disruption_id"] = json!("dis_0000000000000000");
    let problem = assert_problem(
        app.request_token(&app.airline.api_key, &request).await,
        404,
        "disruption-not-found",
    )
    .await;
    assert_eq!(problem["rule"], "disruption-declared");

    let elsewhere = json!({"carrier": "AF", "flight_number": "99", "date": FLIGHT_DATE});
    request["disruption_id"] = json!(app.declared(&app.airline.api_key, &elsewhere).await);
    let problem = assert_problem(
        app.request_token(&app.airline.api_key, &request).await,
        422,
        "flight-not-in-disruption",
    )
    .await;
    assert_eq!(problem["rule"], "disruption-carries-the-flight");

    request["disruption_id"] = json!("IRR-2026-1201-AF1234");
    let problem = assert_problem(
        app.request_token(&app.airline.api_key, &request).await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "disruption_id");
    let mut old_style = app.token_request().await;
    old_style.as_object_mut().unwrap().remove("disruption_id");
    old_style["event"] = json!({"category": "delay", "reference": "NO-SUCH-EVENT-42"});
    assert_problem(
        app.request_token(&app.airline.api_key, &old_style).await,
        422,
        "invalid-field",
    )
    .await;

    let refusals: Vec<Value> = app
        .audit_entries()
        .await
        .into_iter()
        .filter(|e| e["action"] == "token_request")
        .collect();
    let reasons: Vec<&str> = refusals
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["disruption_not_found", "flight_not_in_disruption"]
    );

    let granted = app
        .request_token(&app.airline.api_key, &app.token_request().await)
        .await;
    assert_eq!(granted.status(), 201);
    let granted: Value = granted.json().await.unwrap();
    let entry = &app.audit_entries().await[granted["audit_index"].as_u64().unwrap() as usize];
    assert_eq!(
        entry["event_reference"],
        app.disruption().await,
        "the grant's event is the disruption"
    );
    assert_eq!(entry["event_category"], "cancellation");
}

async fn another_airlines_disruption_grants_nothing(app: TestApp) {
    app.upload_default().await;
    let mut request = app.flight_request("cancellation").await;
    let problem = assert_problem(
        app.flight_tokens(&app.other_airline.api_key, &request)
            .await,
        404,
        "disruption-not-found",
    )
    .await;
    assert_eq!(problem["rule"], "disruption-declared");
    request["flight"]["carrier"] = json!("KL");
    assert_problem(
        app.flight_tokens(&app.other_airline.api_key, &request)
            .await,
        404,
        "disruption-not-found",
    )
    .await;
}

async fn an_update_changes_the_time_and_keeps_grants_open(app: TestApp) {
    app.upload_default().await;
    let delay = json!({
        "flights": [af1234()],
        "category": "delay",
        "reference": "DLY-1",
        "occurred_at": "2026-11-24T09:30:00Z",
        "new_departure": "2026-11-24T14:00:00Z"
    });
    let declared: Value = declare(&app, &app.airline.api_key, &delay)
        .await
        .json()
        .await
        .unwrap();
    let id = declared["id"].as_str().unwrap();
    let updates = format!("/v1/disruptions/{id}/updates");
    let problem = assert_problem(
        app.post(&updates, &app.airline.api_key, &json!({})).await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "body");
    let updated = app
        .post(
            &updates,
            &app.airline.api_key,
            &json!({"new_departure": "2026-11-24T16:30:00Z"}),
        )
        .await;
    assert_eq!(updated.status(), 200);
    let updated: Value = updated.json().await.unwrap();
    assert_eq!(updated["state"], "updated");
    assert_eq!(updated["revision"], 2);
    assert_eq!(updated["new_departure"], "2026-11-24T16:30:00Z");
    let entry = &app.audit_entries().await[updated["audit_index"].as_u64().unwrap() as usize];
    assert_eq!(entry["action"], "disruption_update");
    assert_eq!(entry["reason"], "disruption_updated");

    let mut request = app.token_request().await;
    request["purpose"] = json!("delay");
    request["disruption_id"] = json!(id);
    let granted = app.request_token(&app.airline.api_key, &request).await;
    assert_eq!(granted.status(), 201, "an updated disruption is still open");
}

async fn closing_a_disruption_revokes_its_tokens_and_refuses_new_grants(app: TestApp) {
    let token = app.granted_token().await;
    let id = app.disruption().await;
    let closing = format!("/v1/disruptions/{id}/closing");
    let closed = app.post(&closing, &app.airline.api_key, &json!({})).await;
    assert_eq!(closed.status(), 200);
    let closed: Value = closed.json().await.unwrap();
    assert_eq!(closed["state"], "closed");
    assert_eq!(closed["tokens_revoked"], 1);
    assert!(closed["closed_at"].is_string());

    assert_problem(
        app.redeem(&app.airline.api_key, &token).await,
        410,
        "token-revoked",
    )
    .await;
    let problem = assert_problem(
        app.request_token(&app.airline.api_key, &app.token_request().await)
            .await,
        409,
        "disruption-closed",
    )
    .await;
    assert_eq!(problem["rule"], "disruption-open");
    let problem = assert_problem(
        app.flight_tokens(
            &app.airline.api_key,
            &app.flight_request("cancellation").await,
        )
        .await,
        409,
        "disruption-closed",
    )
    .await;
    assert_eq!(problem["rule"], "disruption-open");

    assert_problem(
        app.post(&closing, &app.airline.api_key, &json!({})).await,
        409,
        "disruption-closed",
    )
    .await;
    assert_problem(
        app.post(
            &format!("/v1/disruptions/{id}/updates"),
            &app.airline.api_key,
            &json!({"note": "reopened?"}),
        )
        .await,
        409,
        "disruption-closed",
    )
    .await;
    let open: Value = app
        .get_json("/v1/disruptions?state=open", &app.airline.api_key)
        .await;
    assert_eq!(open["disruptions"], json!([]));
    let entry = &app.audit_entries().await[closed["audit_index"].as_u64().unwrap() as usize];
    assert_eq!(entry["reason"], "disruption_closed");
}

async fn a_disruption_closed_while_the_grant_waits_for_the_writer_grants_nothing(app: TestApp) {
    app.upload_default().await;
    let id = app.disruption().await;
    let request = app.flight_request("cancellation").await;
    let held = app.store.begin().await.unwrap();
    let grant = app.flight_tokens(&app.airline.api_key, &request);
    let close = async {
        let mut held = held;
        while app.store.writers_queued() == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        sqlx::query(
            "UPDATE disruptions SET state = 'closed', revision = revision + 1 WHERE id = $1",
        )
        .bind(&id)
        .execute(&mut *held)
        .await
        .unwrap();
        held.commit().await.unwrap();
    };
    let (response, ()) = tokio::join!(grant, close);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["granted"].as_array().is_none_or(Vec::is_empty),
        "no token under a closed disruption: {body}"
    );
}

async fn listing_pages_newest_first(app: TestApp) {
    for k in 0..3 {
        let flight =
            json!({"carrier": "AF", "flight_number": format!("{}", 10 + k), "date": FLIGHT_DATE});
        app.declared(&app.airline.api_key, &flight).await;
        app.clock.advance(time::Duration::seconds(1));
    }
    let first: Value = app
        .get_json("/v1/disruptions?limit=2", &app.airline.api_key)
        .await;
    let numbers: Vec<&Value> = first["disruptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["flights"][0]["flight_number"])
        .collect();
    assert_eq!(numbers, [&json!("12"), &json!("11")]);
    let after = first["next_after"].as_str().unwrap();
    let second: Value = app
        .get_json(
            &format!("/v1/disruptions?limit=2&after={after}"),
            &app.airline.api_key,
        )
        .await;
    assert_eq!(
        second["disruptions"][0]["flights"][0]["flight_number"],
        "10"
    );
    assert!(second.get("next_after").is_none(), "{second}");
    let problem = assert_problem(
        app.get("/v1/disruptions?limit=0", &app.airline.api_key)
            .await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "limit");
}

crate::on_both_engines!(
    a_declared_disruption_is_open_audited_and_seen_by_the_agencies_it_affects,
    nobody_else_sees_a_disruption,
    a_declaration_names_only_the_airlines_own_flights_and_each_reference_once,
    a_grant_names_an_open_disruption_of_the_airline_carrying_the_flight,
    another_airlines_disruption_grants_nothing,
    an_update_changes_the_time_and_keeps_grants_open,
    closing_a_disruption_revokes_its_tokens_and_refuses_new_grants,
    a_disruption_closed_while_the_grant_waits_for_the_writer_grants_nothing,
    listing_pages_newest_first,
    an_airports_closure_carries_the_airlines_flights_from_or_to_it_in_the_window,
);

/// Marie's booking as a two-way trip through CDG: AF1234 CDG-JFK on the flight date,
/// AF1235 JFK-CDG two days later, and KL1002 AMS-CDG (another airline's).
fn a_trip_through_cdg(app: &TestApp) -> Value {
    let mut statement = app.statement();
    let back = "2026-12-03";
    statement["booking"]["segments"] = json!([
        {"carrier": "AF", "flight_number": "1234", "date": FLIGHT_DATE, "origin": "CDG", "destination": "JFK"},
        {"carrier": "AF", "flight_number": "1235", "date": back, "origin": "jfk", "destination": "cdg"},
        {"carrier": "KL", "flight_number": "1002", "date": FLIGHT_DATE, "origin": "AMS", "destination": "CDG"}
    ]);
    statement
}

async fn an_airports_closure_carries_the_airlines_flights_from_or_to_it_in_the_window(
    app: TestApp,
) {
    let uploaded = app.upload(&a_trip_through_cdg(&app)).await;
    assert_eq!(uploaded.status(), 201, "segments may name their airports");
    // A CSV row names them too: `AF1236/2026-12-01/ORY-CDG`.
    let mut luc = app.statement_for("CRM-0002", "Martin", "+33622222222");
    luc["booking"] = json!({"record_locator": "XYZ789", "segments": [
        {"carrier": "AF", "flight_number": "1236", "date": FLIGHT_DATE, "origin": "ORY", "destination": "CDG"}
    ]});
    let signature = app.signed(&app.agency.jwk, &luc)["signature"]
        .as_str()
        .unwrap()
        .to_string();
    let row = passerelle::service::ingest::csv::csv_record(&luc, &signature);
    assert_eq!(row[2], format!("AF1236/{FLIGHT_DATE}/ORY-CDG"));
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(passerelle::service::ingest::csv::CSV_HEADER)
        .unwrap();
    csv.write_record(&row).unwrap();
    let body = String::from_utf8(csv.into_inner().unwrap()).unwrap();
    let stored = app
        .post_raw(
            "/v1/consents/batch",
            &app.agency.party.api_key,
            "text/csv",
            body,
        )
        .await;
    let stored: Value = stored.json().await.unwrap();
    assert_eq!(stored["counts"]["stored"], 1, "{stored}");
    let closure = |from: &str, until: &str, reference: &str| {
        json!({
            "closure": {"airport": "CDG", "from": from, "until": until},
            "category": "cancellation",
            "reference": reference,
            "occurred_at": "2026-11-24T09:00:00Z",
            "tell": false
        })
    };

    // CDG closed over both days: AF's two flights through it, never KLM's.
    let declared = app
        .post(
            "/v1/disruptions",
            &app.airline.api_key,
            &closure(FLIGHT_DATE, "2026-12-03", "CDG-SNOW"),
        )
        .await;
    assert_eq!(declared.status(), 201);
    let declared: Value = declared.json().await.unwrap();
    assert_eq!(
        declared["flights"],
        json!([
            {"carrier": "AF", "flight_number": "1234", "date": FLIGHT_DATE},
            {"carrier": "AF", "flight_number": "1236", "date": FLIGHT_DATE},
            {"carrier": "AF", "flight_number": "1235", "date": "2026-12-03"}
        ])
    );
    assert_eq!(declared["closure"]["airport"], "CDG");
    let id = declared["id"].as_str().unwrap();
    let read = app
        .get_json(&format!("/v1/disruptions/{id}"), &app.airline.api_key)
        .await;
    assert_eq!(read["closure"], declared["closure"], "the closure is kept");

    // It carries the flights like any declaration: a grant under it reaches Marie.
    let granted = app
        .request_token(
            &app.airline.api_key,
            &json!({
                "record_locator": "ABC123",
                "traveller": {"surname": "DUPONT", "given_name": "MARIE"},
                "flight": {"carrier": "AF", "flight_number": "1235", "date": "2026-12-03"},
                "purpose": "cancellation",
                "disruption_id": id
            }),
        )
        .await;
    assert_eq!(granted.status(), 201);

    // A window with none of its flights, a window too long, and flights beside a
    // closure are each refused by field.
    let none = app
        .post(
            "/v1/disruptions",
            &app.airline.api_key,
            &closure("2026-12-05", "2026-12-06", "CDG-LATER"),
        )
        .await;
    let problem = assert_problem(none, 422, "invalid-field").await;
    assert_eq!(problem["errors"][0]["field"], "closure.airport");
    let long = app
        .post(
            "/v1/disruptions",
            &app.airline.api_key,
            &closure(FLIGHT_DATE, "2026-12-09", "CDG-WEEK"),
        )
        .await;
    let problem = assert_problem(long, 422, "invalid-field").await;
    assert_eq!(problem["errors"][0]["field"], "closure.until");
    let mut both = closure(FLIGHT_DATE, FLIGHT_DATE, "CDG-BOTH");
    both["flights"] = json!([{"carrier": "AF", "flight_number": "1234", "date": FLIGHT_DATE}]);
    let both = app
        .post("/v1/disruptions", &app.airline.api_key, &both)
        .await;
    let problem = assert_problem(both, 422, "invalid-field").await;
    assert_eq!(problem["errors"][0]["field"], "closure");
    let bad = app
        .post(
            "/v1/disruptions",
            &app.airline.api_key,
            &json!({
                "closure": {"airport": "PARIS", "from": FLIGHT_DATE, "until": FLIGHT_DATE},
                "category": "cancellation",
                "reference": "CDG-BAD",
                "occurred_at": "2026-11-24T09:00:00Z"
            }),
        )
        .await;
    assert_problem(bad, 422, "invalid-field").await;
}
