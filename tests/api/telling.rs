//! Declaring a disruption tells every consenting traveller at once: the broker relays
//! the airline's template, in the traveller's language, to those whose agency chose
//! relay, and the airline gets the tokens of the others; an update relays the update
//! template.

use crate::fakes::FakeHttp;
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

    app.clock.advance(time::Duration::seconds(4));
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

    // The officer reads the time to tell: from the declaration to the messages the
    // gateways accepted, and to the last contact revealed.
    let report = app
        .get_json(
            "/v1/audit/reports?since=2026-11-01T00:00:00Z&until=2027-12-31T00:00:00Z",
            &app.officer.api_key,
        )
        .await;
    let timing = report["disruptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["event_reference"] == declared["id"])
        .unwrap_or_else(|| panic!("the disruption is reported: {report}"));
    assert_eq!(timing["airline"], "AF");
    assert_eq!(timing["declared_at"], declared["declared_at"]);
    assert_eq!(timing["seconds_to_first_message"], 4.0, "{timing}");
    assert_eq!(timing["seconds_to_last_message"], 4.0);
    assert_eq!(
        timing["seconds_to_last_redemption"], 0.0,
        "Marie's, at once"
    );

    // Each agency reads the time to tell its own clients with the disruption's
    // receipts: the relaying one its three messages, the revealing one Marie's contact.
    let id = declared["id"].as_str().unwrap();
    let receipts = format!("/v1/receipts?event_reference={id}");
    let relaying = app
        .get_json(&receipts, &app.other_agency.party.api_key)
        .await;
    let theirs = &relaying["time_to_tell"];
    assert_eq!(theirs["disruption_id"], id, "{relaying}");
    assert_eq!(theirs["declared_at"], declared["declared_at"]);
    assert_eq!(theirs["seconds_to_first_message"], 4.0);
    assert_eq!(theirs["seconds_to_last_message"], 4.0);
    assert_eq!(theirs["messages_delivered"], 3);
    assert_eq!(theirs["contacts_revealed"], 0);
    let revealing = app.get_json(&receipts, &app.agency.party.api_key).await;
    let ours = &revealing["time_to_tell"];
    assert_eq!(ours["contacts_revealed"], 1, "{revealing}");
    assert_eq!(ours["seconds_to_last_redemption"], 0.0);
    assert_eq!(ours["messages_delivered"], 0);
    assert!(ours.get("seconds_to_last_message").is_none());
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

/// Registers a webhook for the agency of `key`; answers its secret.
pub(crate) async fn webhook_of(app: &TestApp, key: &str, hook: &FakeHttp) -> String {
    let registered = app
        .put("/v1/agency/webhook", key, &json!({"url": hook.url}))
        .await;
    assert_eq!(registered.status(), 201);
    let registered: Value = registered.json().await.unwrap();
    registered["secret"].as_str().unwrap().to_string()
}

/// The disruption events an agency's webhook received, each checked against its
/// signature, in the order pushed.
pub(crate) fn disruption_events(hook: &FakeHttp, secret: &str) -> Vec<Value> {
    hook.received()
        .iter()
        .filter(|push| push.body.contains("\"disruption."))
        .map(|push| {
            let header = push.headers["passerelle-signature"].to_str().unwrap();
            let at: i64 = header.split(',').next().unwrap()[2..].parse().unwrap();
            assert!(passerelle::workers::relay::webhook::verify(
                secret.as_bytes(),
                header,
                &push.body,
                at,
                300
            ));
            serde_json::from_str(&push.body).unwrap()
        })
        .collect()
}

async fn each_agency_is_told_of_the_disruption_with_its_own_clients_only(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    af_templates(app).await;
    a_mixed_flight(app).await;
    let (reveal_hook, relay_hook) = (FakeHttp::start().await, FakeHttp::start().await);
    let reveal_secret = webhook_of(app, &app.agency.party.api_key, &reveal_hook).await;
    let relay_secret = webhook_of(app, &app.other_agency.party.api_key, &relay_hook).await;
    let declared = declare(app, cancellation()).await;
    r.deliver().await;

    // The revealing agency: Marie, whose token went to the airline.
    let events = disruption_events(&reveal_hook, &reveal_secret);
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["type"], "disruption.declared");
    assert_eq!(event["disruption"]["id"], declared["id"]);
    assert_eq!(event["disruption"]["reference"], "IRR-SNOW-1");
    assert_eq!(event["disruption"]["audit_index"], declared["audit_index"]);
    assert!(event["disruption"].get("told").is_none());
    assert_eq!(
        event["clients"],
        json!([{
            "traveller_id": declared["told"]["flights"][0]["granted"][0]["traveller_id"],
            "record_locator": "ABC123",
            "flight": format!("AF1234/{FLIGHT_DATE}"),
            "done": "token_granted"
        }])
    );
    let token = declared["told"]["flights"][0]["granted"][0]["token"]
        .as_str()
        .unwrap();
    assert!(!event.to_string().contains(token), "never the token itself");

    // The relaying agency: Jan and Luc relayed, Eva refused; nobody else's client.
    let events = disruption_events(&relay_hook, &relay_secret);
    assert_eq!(events.len(), 1, "{events:?}");
    let mut done: Vec<(String, String)> = events[0]["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["record_locator"].as_str().unwrap().to_string(),
                c["done"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    done.sort();
    assert_eq!(
        done,
        [
            ("RELAY1".to_string(), "relayed".to_string()),
            ("RELAY2".to_string(), "relayed".to_string()),
            ("RELAY3".to_string(), "refused".to_string()),
        ]
    );
    let luc = events[0]["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["record_locator"] == "RELAY2")
        .unwrap();
    assert_eq!(luc["messages"].as_array().unwrap().len(), 2);
    let eva = events[0]["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["record_locator"] == "RELAY3")
        .unwrap();
    assert_eq!(eva["reason"], "consent_refused");
    for push in relay_hook.received().iter().chain(&reveal_hook.received()) {
        assert!(!push.body.contains("+336"), "never a contact");
        assert!(!push.body.contains("Leroy"), "never a name");
    }

    // An update, then the closing: each a `disruption.updated` to both agencies.
    let id = declared["id"].as_str().unwrap();
    let updated = app
        .post(
            &format!("/v1/disruptions/{id}/updates"),
            &app.airline.api_key,
            &json!({"note": "Passengers rebooked on AF1236."}),
        )
        .await;
    assert_eq!(updated.status(), 200, "{}", updated.text().await.unwrap());
    let closed = app
        .post(
            &format!("/v1/disruptions/{id}/closing"),
            &app.airline.api_key,
            &json!({}),
        )
        .await;
    assert_eq!(closed.status(), 200, "{}", closed.text().await.unwrap());
    r.deliver().await;
    for (hook, secret) in [(&reveal_hook, &reveal_secret), (&relay_hook, &relay_secret)] {
        // Pushes may arrive in any order (retries, several workers): the revision
        // orders them.
        let mut events = disruption_events(hook, secret);
        events.sort_by_key(|e| e["disruption"]["revision"].as_i64());
        let seen: Vec<(&str, &str)> = events
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap(),
                    e["disruption"]["state"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("disruption.declared", "open"),
                ("disruption.updated", "updated"),
                ("disruption.updated", "closed"),
            ]
        );
        assert_eq!(
            events[1]["disruption"]["note"],
            "Passengers rebooked on AF1236."
        );
        assert!(events[2]["clients"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["done"] == "not_told"));
    }
}

crate::on_both_engines_with_engine!(
    a_declared_cancellation_tells_every_traveller_as_their_agency_chose,
    an_update_relays_the_update_template,
    a_template_is_checked_when_registered,
    each_agency_is_told_of_the_disruption_with_its_own_clients_only,
);
