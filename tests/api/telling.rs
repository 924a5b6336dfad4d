//! Declaring a disruption tells every consenting traveller at once: the broker relays
//! the airline's template, in the traveller's language, to those whose agency chose
//! relay, and the airline gets the tokens of the others; an update relays the update
//! template.

use crate::helpers::{assert_problem, Engine, TestApp, FLIGHT_DATE, MOBILE, OTHER_AGENCY_IATA};
use crate::relay::with_relay;
use passerelle::policy::engine::Policies;
use serde_json::{json, Value};

const FR_SMS: &str = "Vol {flight} du {date} annulé. Réf. {reference}.";
const EN_SMS: &str = "Flight {flight} on {date} is cancelled. Ref {reference}.";

async fn register(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.put(
        &format!("/v1/airline/templates/{path}"),
        &app.airline.api_key,
        &body,
    )
    .await
}

/// AF's cancellation templates: French with an email, English SMS only.
async fn af_templates(app: &TestApp) {
    let fr = register(
        app,
        "cancellation/fr",
        json!({"sms": FR_SMS, "email_subject": "Vol {flight} annulé", "email": "Votre vol {flight} du {date} est annulé."}),
    )
    .await;
    assert_eq!(fr.status(), 200);
    let en = register(app, "cancellation/en", json!({"sms": EN_SMS})).await;
    assert_eq!(en.status(), 200);
}

/// Marie at the first agency (reveal); at the second (relay): Jan in English, Luc in
/// French, and Eva who refused.
async fn a_mixed_flight(app: &TestApp) {
    app.upload_default().await;
    let relay = app
        .put(
            "/v1/agency/delivery",
            &app.other_agency.party.api_key,
            &json!({"delivery": "relay"}),
        )
        .await;
    assert_eq!(relay.status(), 200);
    for (record, surname, mobile, language, decision) in [
        ("O-1", "Jansen", "+33611111111", "en", "given"),
        ("O-2", "Leroy", "+33622222222", "fr", "given"),
        ("O-3", "Eriksen", "+33633333333", "fr", "refused"),
    ] {
        let mut s = app.statement_for(record, surname, mobile);
        s["agency"] = json!(OTHER_AGENCY_IATA);
        s["booking"]["record_locator"] = json!(format!("RELAY{}", &record[2..]));
        s["consent"]["notice"]["language"] = json!(language);
        s["decision"] = json!(decision);
        if decision == "refused" {
            let t = s["traveller"].as_object_mut().unwrap();
            t.remove("mobile");
            t.remove("email");
        }
        let signed = app.signed(&app.other_agency.jwk, &s);
        let r = app
            .post("/v1/consents", &app.other_agency.party.api_key, &signed)
            .await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
}

async fn declare(app: &TestApp, body: Value) -> Value {
    let response = app
        .post("/v1/disruptions", &app.airline.api_key, &body)
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

fn cancellation() -> Value {
    json!({
        "flights": [{"carrier": "AF", "flight_number": "1234", "date": FLIGHT_DATE}],
        "category": "cancellation",
        "reference": "IRR-SNOW-1",
        "occurred_at": "2026-11-24T09:45:00Z"
    })
}

fn relayed<'a>(told: &'a Value, surname_locator: &str) -> &'a Value {
    told["flights"][0]["relayed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["record_locator"] == surname_locator)
        .unwrap_or_else(|| panic!("{surname_locator} relayed: {told}"))
}

async fn a_declared_cancellation_tells_every_traveller_as_their_agency_chose(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    af_templates(app).await;
    a_mixed_flight(app).await;
    let declared = declare(app, cancellation()).await;
    let told = &declared["told"];
    assert_eq!(
        told["counts"],
        json!({
            "travellers": 4, "tokens": 1, "relayed": 2, "messages": 3,
            "refused": {"consent_refused": 1},
            "not_sent": {"no_template": 1},
            "flights_failed": 0
        }),
        "{told}"
    );
    // Marie's agency reveals: the airline gets her token, and redeems it.
    let marie = &told["flights"][0]["granted"][0];
    assert_eq!(marie["record_locator"], "ABC123");
    let token = marie["token"].as_str().unwrap();
    let released: Value = app
        .redeem(&app.airline.api_key, token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(released["contact"]["mobile"], MOBILE);
    assert_eq!(released["event_reference"], declared["id"]);
    // Jan reads English, by SMS only (the English template has no email); Luc reads
    // French on both channels; nobody's contact is in the answer.
    let jan = relayed(told, "RELAY1");
    assert_eq!(jan["language"], "en");
    assert_eq!(jan["messages"].as_array().unwrap().len(), 1);
    assert_eq!(jan["not_sent"], json!({"email": "no_template"}));
    let luc = relayed(told, "RELAY2");
    assert_eq!(luc["language"], "fr");
    assert_eq!(luc["messages"].as_array().unwrap().len(), 2);
    assert!(!told.to_string().contains("+33611111111"));

    assert_eq!(r.deliver().await, 3);
    let texts: Vec<Value> = r
        .gateway
        .received()
        .iter()
        .map(|t| serde_json::from_str(&t.body).unwrap())
        .collect();
    let to = |mobile: &str| {
        texts
            .iter()
            .find(|t| t["to"] == mobile)
            .unwrap_or_else(|| panic!("{mobile} texted: {texts:?}"))["text"]
            .clone()
    };
    assert_eq!(
        to("+33611111111"),
        format!("Flight AF1234 on {FLIGHT_DATE} is cancelled. Ref IRR-SNOW-1.")
    );
    assert_eq!(
        to("+33622222222"),
        format!("Vol AF1234 du {FLIGHT_DATE} annulé. Réf. IRR-SNOW-1.")
    );
    let mails = r.smtp.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["leroy@example.fr"]);
    // "Vol AF1234 annulé", its accented word encoded as RFC 2047 asks.
    assert!(
        mails[0]
            .data
            .contains("Subject: Vol AF1234 =?utf-8?b?YW5udWzDqQ==?="),
        "{}",
        mails[0].data
    );

    // Every message is an audited relay under the disruption.
    let relays: Vec<Value> = app
        .audit_entries()
        .await
        .into_iter()
        .filter(|e| e["action"] == "message_relay")
        .collect();
    assert_eq!(relays.len(), 3);
    assert!(relays
        .iter()
        .all(|e| e["event_reference"] == declared["id"]));
}

async fn an_update_relays_the_update_template(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    af_templates(app).await;
    let update = register(
        app,
        "update/en",
        json!({"sms": "{flight}: new departure {new_departure}."}),
    )
    .await;
    assert_eq!(update.status(), 200);
    a_mixed_flight(app).await;
    let mut delay = cancellation();
    delay["category"] = json!("delay");
    delay["reference"] = json!("DLY-9");
    let declared = declare(app, delay).await;
    assert_eq!(
        declared["told"]["counts"]["not_sent"],
        json!({"no_template": 4}),
        "no delay template: nothing relayed, every channel named"
    );
    let id = declared["id"].as_str().unwrap();
    let updated: Value = app
        .post(
            &format!("/v1/disruptions/{id}/updates"),
            &app.airline.api_key,
            &json!({"new_departure": "2026-12-01T17:05:00Z"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let told = &updated["told"];
    // The one update template is English: Luc gets it too, the fallback language.
    assert_eq!(told["counts"]["messages"], 2, "{told}");
    assert_eq!(relayed(told, "RELAY2")["language"], "en");
    r.deliver().await;
    let texts: Vec<String> = r
        .gateway
        .received()
        .iter()
        .map(|t| t.body.clone())
        .collect();
    assert!(
        texts
            .iter()
            .all(|t| t.contains("AF1234: new departure 2026-12-01 17:05 UTC.")),
        "{texts:?}"
    );
}

async fn a_template_is_checked_when_registered(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    let problem = assert_problem(
        register(
            app,
            "cancellation/fr",
            json!({"sms": "Bonjour {name}, vol annulé."}),
        )
        .await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "sms");
    let problem = assert_problem(
        register(
            app,
            "cancellation/fr",
            json!({"email_subject": "Vol {flight}", "email": "Rebook at https://evil.example/x"}),
        )
        .await,
        422,
        "link-not-allowed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "email");
    let problem = assert_problem(
        register(app, "cancellation/fr", json!({"sms": "x".repeat(2000)})).await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "sms");
    for (path, field) in [("marketing/fr", "event"), ("cancellation/f1", "language")] {
        let problem = assert_problem(
            register(app, path, json!({"sms": EN_SMS})).await,
            422,
            "invalid-field",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{path}");
    }
    assert_problem(
        app.put(
            "/v1/airline/templates/cancellation/fr",
            &app.agency.party.api_key,
            &json!({"sms": EN_SMS}),
        )
        .await,
        403,
        "wrong-party-kind",
    )
    .await;

    af_templates(app).await;
    let mine: Value = app
        .get_json("/v1/airline/templates", &app.airline.api_key)
        .await;
    assert_eq!(mine["templates"].as_array().unwrap().len(), 2, "{mine}");
    assert_eq!(mine["templates"][1]["sms"], FR_SMS);
    let theirs: Value = app
        .get_json("/v1/airline/templates", &app.other_airline.api_key)
        .await;
    assert_eq!(
        theirs["templates"],
        json!([]),
        "another airline sees none of AF's"
    );
}

crate::on_both_engines_with_engine!(
    a_declared_cancellation_tells_every_traveller_as_their_agency_chose,
    an_update_relays_the_update_template,
    a_template_is_checked_when_registered,
);
