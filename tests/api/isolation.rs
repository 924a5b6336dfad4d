//! Tenant isolation: every route walked with every kind of party, and with a second
//! party of the same kind. An agency never reads, changes or learns of another
//! agency's records; an airline never gets a token or a message status for a booking
//! it does not fly or for another airline's token; an officer never sees a contact
//! value; a traveller's code opens only that traveller. Ids are random.

use crate::fakes::FakeHttp;
use crate::helpers::{Engine, TestApp, EMAIL, MOBILE};
use crate::on_both_engines_with_engine;
use passerelle::service::{RelaySettings, Settings};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

on_both_engines_with_engine!(
    every_route_answers_only_the_kinds_of_party_it_is_for,
    a_second_party_of_the_same_kind_learns_nothing,
);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Agency,
    Airline,
    Officer,
}
use Kind::*;

const PUBLIC: &[Kind] = &[];
const ANY: &[Kind] = &[Agency, Airline, Officer];

/// Who each route is for; public routes need no key. The walk fails if the router
/// has a route this table does not classify.
const ROUTES: &[(&str, &str, &[Kind])] = &[
    ("GET", "/healthz", PUBLIC),
    ("GET", "/readyz", PUBLIC),
    ("GET", "/metrics", &[Officer]),
    ("GET", "/.well-known/jwks.json", PUBLIC),
    ("POST", "/v1/consents", &[Agency]),
    ("GET", "/v1/consents", &[Agency]),
    ("POST", "/v1/consents/batch", &[Agency]),
    ("POST", "/v1/consents/ssr", &[Agency]),
    ("GET", "/v1/consents/{id}", &[Agency]),
    ("GET", "/v1/consents/{id}/receipt", &[Agency]),
    ("GET", "/v1/consents/{id}/ssr", &[Agency]),
    ("POST", "/v1/consents/{id}/withdrawal", &[Agency]),
    ("PUT", "/v1/consents/{id}/delivery", &[Agency]),
    ("POST", "/v1/consents/{id}/verifications", &[Agency]),
    ("GET", "/v1/contact-verifications/{id}", &[Agency]),
    (
        "POST",
        "/v1/contact-verifications/{id}/confirmation",
        &[Agency],
    ),
    ("PUT", "/v1/agency/delivery", &[Agency]),
    ("PUT", "/v1/agency/webhook", &[Agency]),
    ("DELETE", "/v1/agency/webhook", &[Agency]),
    ("GET", "/v1/agency/contacts-to-fix", &[Agency]),
    ("GET", "/v1/receipts", &[Agency]),
    ("GET", "/v1/airline/link-domains", &[Airline]),
    ("PUT", "/v1/airline/link-domains", &[Airline]),
    ("PUT", "/v1/airline/webhook", &[Airline]),
    ("DELETE", "/v1/airline/webhook", &[Airline]),
    ("GET", "/v1/airline/templates", &[Airline]),
    (
        "PUT",
        "/v1/airline/templates/{event}/{language}",
        &[Airline],
    ),
    ("POST", "/v1/withdrawals", PUBLIC),
    ("POST", "/v1/traveller/uses", PUBLIC),
    // Signed with the SMS gateway's secret: no party's key opens it (see below).
    ("POST", "/v1/gateway/sms/receipts", PUBLIC),
    ("POST", "/v1/disruptions", &[Airline]),
    ("GET", "/v1/disruptions", ANY),
    ("GET", "/v1/disruptions/{id}", ANY),
    ("POST", "/v1/disruptions/{id}/updates", &[Airline]),
    ("POST", "/v1/disruptions/{id}/closing", &[Airline]),
    ("POST", "/v1/release-tokens", &[Airline]),
    ("POST", "/v1/flights/release-tokens", &[Airline]),
    ("GET", "/v1/flights/coverage", &[Airline]),
    ("POST", "/v1/releases", &[Airline]),
    ("POST", "/v1/messages", &[Airline]),
    ("GET", "/v1/messages/{id}", &[Airline]),
    ("GET", "/v1/erasure-requests", &[Airline]),
    (
        "POST",
        "/v1/erasure-requests/{id}/acknowledgement",
        &[Airline],
    ),
    ("GET", "/v1/policies", &[Officer]),
    ("GET", "/v1/audit/entries", &[Officer]),
    ("GET", "/v1/audit/entries/{index}", &[Officer]),
    ("GET", "/v1/audit/export", &[Officer]),
    ("GET", "/v1/audit/reports", &[Officer]),
    ("GET", "/v1/audit/log-key", PUBLIC),
    ("GET", "/v1/audit/checkpoint", ANY),
    ("GET", "/v1/audit/checkpoints", ANY),
    ("POST", "/v1/audit/checkpoints", &[Officer]),
    ("GET", "/v1/audit/proofs/inclusion", ANY),
    ("GET", "/v1/audit/proofs/consistency", ANY),
];

async fn relay_app(engine: Engine) -> Option<(TestApp, FakeHttp)> {
    let gateway = FakeHttp::start().await;
    let settings = Settings {
        relay: RelaySettings {
            sms_gateway_url: Some(gateway.url.clone()),
            sms_gateway_receipt_secret: Some("gw-receipts".into()),
            bounce_domain: None,
            ..RelaySettings::default()
        },
        ..crate::helpers::test_settings()
    };
    Some((TestApp::with(engine, settings).await?, gateway))
}

async fn call(app: &TestApp, method: &str, path: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = app.client.request(
        Method::from_bytes(method.as_bytes()).unwrap(),
        format!("{}{path}", app.url),
    );
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if method == "POST" || method == "PUT" {
        request = request.json(&json!({}));
    }
    request.send().await.unwrap()
}

async fn every_route_answers_only_the_kinds_of_party_it_is_for(engine: Engine) {
    let Some((app, _gateway)) = relay_app(engine).await else {
        return;
    };
    let uploaded = app.upload_default().await;
    let consent = uploaded["consent_id"].as_str().unwrap();

    let served: BTreeSet<(String, String)> = passerelle::router::routes()
        .table()
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let classified: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(served, classified, "every route is classified in ROUTES");

    let key_of = |kind: Kind| match kind {
        Agency => app.agency.party.api_key.clone(),
        Airline => app.airline.api_key.clone(),
        Officer => app.officer.api_key.clone(),
    };
    for (method, template, kinds) in ROUTES {
        let path = template
            .replace(
                "{id}",
                if template.starts_with("/v1/messages") {
                    "msg_00000000000000000000000000000000"
                } else {
                    consent
                },
            )
            .replace("{index}", "0");
        if template.starts_with("/v1/gateway/") {
            // The gateway's receipts: signed with its secret, so refused to everyone
            // else, whatever key they hold (a party cannot touch its messages' receipts).
            for kind in [None, Some(Agency), Some(Airline), Some(Officer)] {
                let key = kind.map(key_of);
                let answer = call(&app, method, &path, key.as_deref()).await;
                assert_eq!(answer.status(), 401, "{method} {template} as {kind:?}");
            }
            continue;
        }
        if kinds.is_empty() {
            let answer = call(&app, method, &path, None).await;
            assert_ne!(answer.status(), 401, "{method} {template} is public");
            continue;
        }
        let anonymous = call(&app, method, &path, None).await;
        assert_eq!(anonymous.status(), 401, "{method} {template} without a key");
        let forged = call(
            &app,
            method,
            &path,
            Some("pas_agency_0000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        )
        .await;
        assert_eq!(
            forged.status(),
            401,
            "{method} {template} with an unknown key"
        );
        for kind in [Agency, Airline, Officer] {
            let answer = call(&app, method, &path, Some(&key_of(kind))).await;
            let status = answer.status().as_u16();
            let body: Value = answer.json().await.unwrap_or(Value::Null);
            if kinds.contains(&kind) {
                assert!(
                    status != 401 && body["type"] != "urn:passerelle:problem:wrong-party-kind",
                    "{method} {template} is for {kind:?}: {status} {body}"
                );
            } else {
                assert_eq!(status, 403, "{method} {template} as {kind:?}: {body}");
                assert_eq!(
                    body["type"], "urn:passerelle:problem:wrong-party-kind",
                    "{method} {template} as {kind:?}"
                );
            }
        }
    }
}

/// The status, type and detail of an answer: what a caller can learn from it.
async fn seen(response: reqwest::Response) -> (u16, Value, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["type"].clone(), body["detail"].clone())
}

async fn a_second_party_of_the_same_kind_learns_nothing(engine: Engine) {
    let Some((app, _gateway)) = relay_app(engine).await else {
        return;
    };
    // Marie flies AF1234 only; her consent names AF.
    let mut statement = app.statement();
    statement["booking"]["segments"] =
        json!([{"carrier": "AF", "flight_number": "1234", "date": crate::helpers::FLIGHT_DATE}]);
    let uploaded: Value = app.upload(&statement).await.json().await.unwrap();
    let consent = uploaded["consent_id"].as_str().unwrap().to_string();
    let code = uploaded["withdrawal_code"].as_str().unwrap().to_string();
    let missing = "cns_00000000000000000000000000000000";
    let other = &app.other_agency.party.api_key;

    // Another agency: every route on Marie's record answers as for a record that
    // does not exist.
    for (method, suffix) in [
        ("GET", ""),
        ("GET", "/receipt"),
        ("GET", "/ssr"),
        ("POST", "/withdrawal"),
        ("PUT", "/delivery"),
        ("POST", "/verifications"),
    ] {
        let theirs = seen(
            call(
                &app,
                method,
                &format!("/v1/consents/{consent}{suffix}"),
                Some(other),
            )
            .await,
        )
        .await;
        let nobodys = seen(
            call(
                &app,
                method,
                &format!("/v1/consents/{missing}{suffix}"),
                Some(other),
            )
            .await,
        )
        .await;
        assert_eq!(theirs, nobodys, "{method} /v1/consents/…{suffix}");
        assert!(
            theirs.0 == 404 || theirs.0 == 422,
            "{method} {suffix}: {theirs:?}"
        );
    }
    let listed = app.get_json("/v1/consents", other).await;
    assert!(listed["records"].as_array().unwrap().is_empty());

    // Nor its verifications: asked for by Marie's agency, they are to the other as
    // verifications that do not exist, and its answers change nothing.
    let asked = app
        .post(
            &format!("/v1/consents/{consent}/verifications"),
            &app.agency.party.api_key,
            &json!({"channel": "sms"}),
        )
        .await;
    assert_eq!(asked.status(), 202);
    let asked: Value = asked.json().await.unwrap();
    let verification = asked["id"].as_str().unwrap();
    let none = "cvf_00000000000000000000000000000000";
    for (method, suffix) in [("GET", ""), ("POST", "/confirmation")] {
        let ask = |id: String| {
            let app = &app;
            async move {
                let path = format!("/v1/contact-verifications/{id}{suffix}");
                match method {
                    "GET" => app.get(&path, other).await,
                    _ => app.post(&path, other, &json!({"code": "123456"})).await,
                }
            }
        };
        let theirs = seen(ask(verification.to_string()).await).await;
        let nobodys = seen(ask(none.to_string()).await).await;
        assert_eq!(
            theirs, nobodys,
            "{method} /v1/contact-verifications/…{suffix}"
        );
        assert_eq!(theirs.0, 404);
    }
    let still = app
        .get_json(
            &format!("/v1/contact-verifications/{verification}"),
            &app.agency.party.api_key,
        )
        .await;
    assert_eq!(
        still["tries_left"], 5,
        "the other agency's code was not counted"
    );
    let still = app
        .get_json(
            &format!("/v1/consents/{consent}"),
            &app.agency.party.api_key,
        )
        .await;
    assert_eq!(still["state"], "given", "the other agency changed nothing");

    // AF gets a token and relays a message; KLM, which does not fly the booking, gets
    // the same answers as for a booking, token or message that does not exist.
    let granted = app
        .request_token(&app.airline.api_key, &app.token_request().await)
        .await;
    assert_eq!(granted.status(), 201);
    let token: Value = granted.json().await.unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let relayed = app
        .post("/v1/messages", &app.airline.api_key, &json!({"token": token, "channel": "sms", "category": "cancellation", "text": "AF1234 is cancelled."}))
        .await;
    assert_eq!(relayed.status(), 202, "AF relays");
    let message: Value = relayed.json().await.unwrap();
    let message_id = message["message_id"].as_str().unwrap().to_string();
    let klm = app.other_airline.api_key.clone();

    let mut request = app.token_request().await;
    let for_marie = seen(app.request_token(&klm, &request).await).await;
    request["record_locator"] = json!("ZZZ999");
    let for_nobody = seen(app.request_token(&klm, &request).await).await;
    assert_eq!(
        for_marie, for_nobody,
        "a booking KLM does not fly is a booking that does not exist"
    );
    let mut flight = app.flight_request("cancellation").await;
    let af_flight = app.flight_tokens(&klm, &flight).await;
    assert!(
        af_flight.status().is_client_error(),
        "KLM cannot ask for AF's flight"
    );
    flight["flight"]["carrier"] = json!("KL");
    flight["disruption_id"] = json!(app.declared(&klm, &flight["flight"]).await);
    let own: Value = app.flight_tokens_json(&klm, &flight).await;
    assert!(
        own["granted"].as_array().is_none_or(Vec::is_empty),
        "KLM's own flight has none of Marie: {own}"
    );

    let fake_token = "pas_token_0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let afs = seen(app.redeem(&klm, &token).await).await;
    let nobodys = seen(app.redeem(&klm, fake_token).await).await;
    assert_eq!(afs, nobodys, "AF's token is not KLM's");
    assert_eq!(afs.0, 404);
    let relay =
        |t: &str| json!({"token": t, "channel": "sms", "category": "cancellation", "text": "x"});
    let afs = seen(app.post("/v1/messages", &klm, &relay(&token)).await).await;
    let nobodys = seen(app.post("/v1/messages", &klm, &relay(fake_token)).await).await;
    assert_eq!(afs, nobodys);
    let afs = seen(app.get(&format!("/v1/messages/{message_id}"), &klm).await).await;
    let nobodys = seen(
        app.get("/v1/messages/msg_00000000000000000000000000000000", &klm)
            .await,
    )
    .await;
    assert_eq!(afs, nobodys, "AF's message status is not KLM's");
    assert_eq!(afs.0, 404);
    assert_eq!(
        app.get(&format!("/v1/messages/{message_id}"), &app.airline.api_key)
            .await
            .status(),
        200
    );

    // Receipts and proofs are scoped too.
    let receipts = app.get_json("/v1/receipts", other).await;
    assert!(receipts["receipts"].as_array().unwrap().is_empty());
    let entries = app.audit_entries().await;
    let grant = entries
        .iter()
        .find(|e| e["action"] == "token_request" && e["outcome"] == "granted")
        .unwrap();
    let proof = format!("/v1/audit/proofs/inclusion?index={}", grant["index"]);
    app.checkpoint().await;
    assert_eq!(app.get(&proof, &app.airline.api_key).await.status(), 200);
    assert_eq!(
        app.get(&proof, &app.agency.party.api_key).await.status(),
        200
    );
    assert_eq!(app.get(&proof, &klm).await.status(), 404);
    assert_eq!(app.get(&proof, other).await.status(), 404);

    // The officer sees everything but never a contact value.
    let officer = &app.officer.api_key;
    for path in [
        "/v1/audit/entries?limit=1000",
        "/v1/audit/export?format=ndjson",
        "/v1/audit/export?format=csv",
        "/v1/audit/reports",
    ] {
        let text = app.get(path, officer).await.text().await.unwrap();
        assert!(
            !text.contains(MOBILE)
                && !text.contains(EMAIL)
                && !text.contains("33612345678")
                && !text.contains("Dupont"),
            "{path}"
        );
    }

    // A traveller's code opens only that traveller.
    let paul = app.statement_for("CRM-0002", "Durand", "+33698765432");
    let paul: Value = app.upload(&paul).await.json().await.unwrap();
    for (code, own, not) in [
        (&code, &consent, paul["consent_id"].as_str().unwrap()),
        (
            &paul["withdrawal_code"].as_str().unwrap().to_string(),
            &paul["consent_id"].as_str().unwrap().to_string(),
            consent.as_str(),
        ),
    ] {
        let view = app
            .post("/v1/traveller/uses", "", &json!({"code": code}))
            .await
            .text()
            .await
            .unwrap();
        assert!(view.contains(own.as_str()) && !view.contains(not), "{view}");
    }

    // Ids are 128 random bits: none repeats, none is a count.
    let ids: BTreeSet<String> = [
        &consent,
        paul["consent_id"].as_str().unwrap(),
        uploaded["traveller_id"].as_str().unwrap(),
        paul["traveller_id"].as_str().unwrap(),
        &message_id,
    ]
    .iter()
    .map(|id| id.to_string())
    .collect();
    assert_eq!(ids.len(), 5);
    for id in &ids {
        let (_, random) = id.split_once('_').unwrap();
        assert_eq!(random.len(), 32, "{id}");
        assert!(random.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    }
}
