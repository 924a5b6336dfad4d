//! Relay-only delivery through a real SMTP server and a local SMS gateway, retries,
//! the agency's receipts feed and signed webhook, the traveller's view, revocation on
//! withdrawal, and per-airline rate limits.

use crate::fakes::{FakeHttp, FakeSmtp};
use crate::helpers::{assert_problem, Engine, TestApp, EMAIL, MOBILE};
use passerelle::clock::Clock;
use passerelle::policy::engine::Policies;
use passerelle::service::{RelaySettings, Settings};
use passerelle::workers::relay::{self, Transports};
use serde_json::{json, Value};
use std::sync::Arc;

pub(crate) struct Relay {
    pub(crate) app: TestApp,
    pub(crate) smtp: FakeSmtp,
    pub(crate) gateway: FakeHttp,
    transports: Transports,
}

/// The secret the test gateway signs its delivery receipts with.
pub(crate) const RECEIPT_SECRET: &str = "gw-receipts";
/// Where relayed emails' bounces go.
const BOUNCE_DOMAIN: &str = "bounces.passerelle.test";

pub(crate) async fn with_relay(engine: Engine, policies: Policies) -> Option<Relay> {
    let smtp = FakeSmtp::start().await;
    let gateway = FakeHttp::start().await;
    let settings = Settings {
        policies: Arc::new(policies),
        relay: RelaySettings {
            smtp_url: Some(smtp.url.clone()),
            mail_from: "Passerelle <relay@passerelle.test>".into(),
            sms_gateway_url: Some(gateway.url.clone()),
            sms_gateway_token: Some("gw-secret".into()),
            sms_gateway_receipt_secret: Some(RECEIPT_SECRET.into()),
            bounce_domain: Some(BOUNCE_DOMAIN.into()),
        },
        ..crate::helpers::test_settings()
    };
    let app = TestApp::with(engine, settings.clone()).await?;
    let transports = Transports::new(&settings.relay, settings.outbound).unwrap();
    Some(Relay {
        app,
        smtp,
        gateway,
        transports,
    })
}

impl Relay {
    /// The agency switches to relay-only, uploads Marie, and AF asks for the flight.
    async fn relay_token(&self) -> Value {
        self.relay_token_under(&self.app.statement()).await
    }

    /// [`Relay::relay_token`], Marie uploaded under `statement`.
    async fn relay_token_under(&self, statement: &Value) -> Value {
        let app = &self.app;
        let r = app
            .put(
                "/v1/agency/delivery",
                &app.agency.party.api_key,
                &json!({"delivery": "relay"}),
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(app.upload(statement).await.status(), 201);
        let body: Value = app
            .flight_tokens_json(
                &app.airline.api_key,
                &app.flight_request("cancellation").await,
            )
            .await;
        body["granted"][0].clone()
    }

    async fn send(&self, token: &str, channel: &str, text: &str) -> reqwest::Response {
        let app = &self.app;
        app.post(
            "/v1/messages",
            &app.airline.api_key,
            &json!({"token": token, "channel": channel, "category": "cancellation", "text": text}),
        )
        .await
    }

    /// Sends a message that must be accepted (`202`), and returns the answer.
    async fn accepted(&self, token: &str, channel: &str, text: &str) -> Value {
        let response = self.send(token, channel, text).await;
        assert_eq!(response.status(), 202, "the message is accepted");
        response.json().await.unwrap()
    }

    pub(crate) async fn deliver(&self) -> usize {
        relay::deliver_due(&self.app.state, &self.transports)
            .await
            .unwrap()
    }

    async fn status(&self, id: &str) -> Value {
        self.app
            .get_json(&format!("/v1/messages/{id}"), &self.app.airline.api_key)
            .await
    }
}

async fn a_cancellation_in_relay_only_mode_reaches_the_traveller_and_never_the_airline(
    engine: Engine,
) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let token = r.relay_token().await;
    assert_eq!(token["delivery"], "relay");
    assert_eq!(token["uses"], 3);
    let secret = token["token"].as_str().unwrap();

    // Redeeming a relay token reveals nothing.
    let problem = assert_problem(
        r.app.redeem(&r.app.airline.api_key, secret).await,
        409,
        "relay-only",
    )
    .await;
    assert_eq!(problem["rule"], "agency-delivery-choice");
    assert!(!problem.to_string().contains(MOBILE));

    let accepted = r
        .send(
            secret,
            "email",
            "Your flight AF1234 is cancelled. You have been rebooked on AF1236.",
        )
        .await;
    assert_eq!(accepted.status(), 202);
    let accepted: Value = accepted.json().await.unwrap();
    assert_eq!(accepted["status"], "queued");
    assert!(
        !accepted.to_string().contains(EMAIL),
        "the airline never sees the address"
    );
    let sms: Value = r
        .send(secret, "sms", "AF1234 cancelled; rebooked on AF1236.")
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(r.deliver().await, 2);
    let mails = r.smtp.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, [EMAIL]);
    assert!(mails[0].data.contains("rebooked on AF1236"));
    assert!(mails[0]
        .data
        .contains("Subject: Flight AF1234/2026-12-01: cancellation"));
    let texts = r.gateway.received();
    assert_eq!(texts.len(), 1);
    let sent: Value = serde_json::from_str(&texts[0].body).unwrap();
    assert_eq!(sent["to"], MOBILE);
    assert_eq!(sent["message_id"], sms["message_id"]);
    assert_eq!(texts[0].headers["authorization"], "Bearer gw-secret");

    let status = r.status(accepted["message_id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "delivered");
    assert_eq!(status["attempts"], 1);
    let entries = r.app.audit_entries().await;
    let deliveries: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "message_delivery")
        .collect();
    assert_eq!(deliveries.len(), 2);
    assert!(deliveries.iter().all(|e| e["outcome"] == "delivered"));
    let all = serde_json::to_string(&entries).unwrap();
    assert!(
        !all.contains(MOBILE) && !all.contains(EMAIL),
        "the log holds no contact"
    );

    // A third message uses the last use; a fourth is refused.
    assert_eq!(
        r.send(secret, "sms", "Hotel voucher at desk 4.")
            .await
            .status(),
        202
    );
    assert_problem(r.send(secret, "sms", "One more.").await, 410, "token-used").await;
}

async fn a_failing_gateway_is_retried_with_backoff_until_it_takes_the_message(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let token = r.relay_token().await;
    r.gateway.fail_with(&[503, 500]);
    let accepted = r
        .accepted(token["token"].as_str().unwrap(), "sms", "AF1234 cancelled.")
        .await;
    let id = accepted["message_id"].as_str().unwrap();
    assert_eq!(r.deliver().await, 1);
    let status = r.status(id).await;
    assert_eq!(status["status"], "queued");
    assert_eq!(status["last_error"], "gateway http 503");
    assert_eq!(status["attempts"], 1);
    // Not due before its backoff (5 s, then 10 s).
    assert_eq!(r.deliver().await, 0);
    r.app.clock.advance(time::Duration::seconds(5));
    assert_eq!(r.deliver().await, 1);
    assert_eq!(r.status(id).await["last_error"], "gateway http 500");
    r.app.clock.advance(time::Duration::seconds(10));
    assert_eq!(r.deliver().await, 1);
    let status = r.status(id).await;
    assert_eq!(status["status"], "delivered");
    assert_eq!(status["attempts"], 3);
    assert_eq!(r.gateway.received().len(), 3);
    let outcomes: Vec<String> = r
        .app
        .audit_entries()
        .await
        .iter()
        .filter(|e| e["action"] == "message_delivery")
        .map(|e| {
            format!(
                "{}/{}",
                e["outcome"].as_str().unwrap(),
                e["reason"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            "deferred/gateway_error",
            "deferred/gateway_error",
            "delivered/-"
        ]
    );
}

async fn a_message_the_gateway_rejects_for_good_fails_at_once(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let token = r.relay_token().await;
    r.gateway.fail_with(&[400]);
    let accepted = r
        .accepted(token["token"].as_str().unwrap(), "sms", "AF1234 cancelled.")
        .await;
    r.deliver().await;
    let status = r.status(accepted["message_id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "failed");
    assert_eq!(status["last_error"], "gateway http 400");
}

async fn the_text_is_checked_before_anything_is_used(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let token = r.relay_token().await;
    let secret = token["token"].as_str().unwrap();
    let app = &r.app;
    let send =
        |body: Value| async move { app.post("/v1/messages", &app.airline.api_key, &body).await };
    let long = "x".repeat(460);
    let p = assert_problem(
        send(json!({"token": secret, "channel": "sms", "category": "cancellation", "text": long}))
            .await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "text");
    let p = assert_problem(
        send(
            json!({"token": secret, "channel": "sms", "category": "promotion", "text": "20% off!"}),
        )
        .await,
        422,
        "purpose-not-operational",
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "category");
    let p = assert_problem(
        send(json!({"token": secret, "channel": "sms", "category": "delay", "text": "Delayed."}))
            .await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "category");
    let p = assert_problem(send(json!({"token": secret, "channel": "email", "category": "cancellation", "subject": "a\r\nBcc: x@evil.test", "text": "Hi"})).await, 422, "invalid-field").await;
    assert_eq!(p["errors"][0]["field"], "subject");
    let p = assert_problem(
        send(json!({"token": secret, "channel": "sms", "category": "cancellation", "text": "  "}))
            .await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "text");
    // None of these used the token: three uses remain.
    for _ in 0..3 {
        assert_eq!(
            r.send(secret, "sms", "AF1234 cancelled.").await.status(),
            202
        );
    }
}

async fn withdrawal_revokes_tokens_and_cancels_queued_messages_at_once(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let token = r.relay_token().await;
    let secret = token["token"].as_str().unwrap();
    let accepted = r.accepted(secret, "email", "AF1234 cancelled.").await;
    let consents: Value = r
        .app
        .get_json("/v1/consents", &r.app.agency.party.api_key)
        .await;
    let id = consents["records"][0]["consent_id"].as_str().unwrap();
    let w = r
        .app
        .post(
            &format!("/v1/consents/{id}/withdrawal"),
            &r.app.agency.party.api_key,
            &json!({}),
        )
        .await;
    assert_eq!(w.status(), 200);
    assert_eq!(r.deliver().await, 0, "nothing left to deliver");
    assert!(r.smtp.mails().is_empty());
    assert_eq!(
        r.status(accepted["message_id"].as_str().unwrap()).await["status"],
        "cancelled"
    );
    assert_problem(
        r.send(secret, "sms", "Another.").await,
        410,
        "token-revoked",
    )
    .await;
}

async fn a_message_whose_consent_lapsed_before_it_was_sent_is_cancelled_unsent(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    // Marie's consent runs out an hour after the test starts.
    let mut statement = r.app.statement();
    statement["consent"]["valid_until"] = json!("2026-11-24T11:00:00Z");
    let token = r.relay_token_under(&statement).await;
    let secret = token["token"].as_str().unwrap();
    let accepted = r.accepted(secret, "email", "AF1234 cancelled.").await;
    let id = accepted["message_id"].as_str().unwrap();

    // The worker reaches the message only once the consent has lapsed: it is decided
    // on the record as it stands when sending, not as it stood when queued.
    r.app.clock.advance(time::Duration::hours(2));
    assert_eq!(r.deliver().await, 1, "the message was taken up once");
    assert!(r.smtp.mails().is_empty(), "nothing was sent");
    let status = r.status(id).await;
    assert_eq!(status["status"], "cancelled");
    assert_eq!(status["last_error"], "consent_inactive");
    assert_eq!(r.deliver().await, 0, "and it is not taken up again");
}

async fn another_airline_sees_neither_the_message_nor_the_token(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let token = r.relay_token().await;
    let secret = token["token"].as_str().unwrap();
    let accepted = r.accepted(secret, "sms", "AF1234 cancelled.").await;
    let path = format!("/v1/messages/{}", accepted["message_id"].as_str().unwrap());
    assert_problem(
        r.app.get(&path, &r.app.other_airline.api_key).await,
        404,
        "message-not-found",
    )
    .await;
    let stolen = r
        .app
        .post(
            "/v1/messages",
            &r.app.other_airline.api_key,
            &json!({"token": secret, "channel": "sms", "category": "cancellation", "text": "Hi"}),
        )
        .await;
    assert_problem(stolen, 404, "token-not-found").await;
}

async fn one_record_can_be_relay_only_while_the_agency_reveals(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    let marie = app.upload_default().await;
    app.upload(&app.statement_for("R-2", "Martin", "+33622222222"))
        .await;
    let path = format!(
        "/v1/consents/{}/delivery",
        marie["consent_id"].as_str().unwrap()
    );
    let set = app
        .put(
            &path,
            &app.agency.party.api_key,
            &json!({"delivery": "relay"}),
        )
        .await;
    assert_eq!(set.status(), 200);
    assert_problem(
        app.put(
            &path,
            &app.other_agency.party.api_key,
            &json!({"delivery": "reveal"}),
        )
        .await,
        404,
        "consent-not-found",
    )
    .await;
    let body: Value = app
        .flight_tokens_json(
            &app.airline.api_key,
            &app.flight_request("cancellation").await,
        )
        .await;
    let mut modes: Vec<&str> = body["granted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["delivery"].as_str().unwrap())
        .collect();
    modes.sort_unstable();
    assert_eq!(modes, ["relay", "reveal"]);
}

async fn the_agency_reads_every_use_and_its_webhook_gets_each_signed(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    let hook = FakeHttp::start().await;
    let registered = app
        .put(
            "/v1/agency/webhook",
            &app.agency.party.api_key,
            &json!({"url": hook.url}),
        )
        .await;
    assert_eq!(registered.status(), 201);
    let registered: Value = registered.json().await.unwrap();
    let secret = registered["secret"].as_str().unwrap().to_string();
    assert_problem(
        app.put(
            "/v1/agency/webhook",
            &app.agency.party.api_key,
            &json!({"url": "http://user:secret@127.0.0.1/hook"}),
        )
        .await,
        422,
        "invalid-field",
    )
    .await;

    let token = r.relay_token().await;
    hook.fail_with(&[500]);
    r.send(token["token"].as_str().unwrap(), "sms", "AF1234 cancelled.")
        .await;
    r.deliver().await; // the message, the grant's push (fails), the relay's push
    r.app.clock.advance(time::Duration::seconds(5));
    r.deliver().await; // the retried push and the delivery's push

    let feed: Value = app
        .get_json("/v1/receipts", &app.agency.party.api_key)
        .await;
    let kinds: Vec<String> = feed["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            format!(
                "{}/{}",
                u["action"].as_str().unwrap(),
                u["outcome"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "token_request/granted",
            "message_relay/queued",
            "message_delivery/delivered"
        ]
    );
    let first = &feed["receipts"][0];
    assert_eq!(first["airline"]["designator"], "AF");
    assert_eq!(first["airline"]["name"], "Air France");
    assert_eq!(first["purpose"], "cancellation");
    assert_eq!(first["event_reference"], app.disruption().await);

    // Filters and pages.
    let relays: Value = app
        .get_json("/v1/receipts?kind=relay", &app.agency.party.api_key)
        .await;
    assert_eq!(relays["receipts"].as_array().unwrap().len(), 1);
    let page: Value = app
        .get_json("/v1/receipts?limit=2", &app.agency.party.api_key)
        .await;
    assert_eq!(page["receipts"].as_array().unwrap().len(), 2);
    let after = page["next_after"].as_i64().unwrap();
    let rest: Value = app
        .get_json(
            &format!("/v1/receipts?limit=2&after={after}"),
            &app.agency.party.api_key,
        )
        .await;
    assert_eq!(rest["receipts"].as_array().unwrap().len(), 1);
    assert!(rest.get("next_after").is_none());
    let kl: Value = app
        .get_json("/v1/receipts?airline=KL", &app.agency.party.api_key)
        .await;
    assert!(kl["receipts"].as_array().unwrap().is_empty());
    let theirs: Value = app
        .get_json("/v1/receipts", &app.other_agency.party.api_key)
        .await;
    assert!(
        theirs["receipts"].as_array().unwrap().is_empty(),
        "another agency sees none of it"
    );
    assert_problem(
        app.get("/v1/receipts?kind=marketing", &app.agency.party.api_key)
            .await,
        422,
        "invalid-field",
    )
    .await;

    // The webhook got the disruption and each use once delivered, signed, the failed
    // push (the first: the disruption's) retried.
    let pushes = hook.received();
    assert_eq!(pushes.len(), 5, "the disruption, retried, and three uses");
    let ids: std::collections::BTreeSet<_> = pushes
        .iter()
        .map(|p| p.headers["passerelle-delivery"].clone())
        .collect();
    assert_eq!(ids.len(), 4);
    let told = pushes
        .iter()
        .filter(|p| p.body.contains("\"disruption.declared\""))
        .count();
    assert_eq!(told, 2, "the disruption's push, failed once then delivered");
    let pushes: Vec<_> = pushes
        .into_iter()
        .filter(|p| p.body.contains("\"passerelle.use\""))
        .collect();
    for push in &pushes {
        let header = push.headers["passerelle-signature"].to_str().unwrap();
        let at: i64 = header
            .split(',')
            .next()
            .unwrap()
            .trim_start_matches("t=")
            .parse()
            .unwrap();
        assert!(passerelle::workers::relay::webhook::verify(
            secret.as_bytes(),
            header,
            &push.body,
            at,
            300
        ));
        assert!(!passerelle::workers::relay::webhook::verify(
            secret.as_bytes(),
            header,
            &push.body.replace("AF", "KL"),
            at,
            300
        ));
        assert!(!push.body.contains(MOBILE));
    }
    let body: Value = serde_json::from_str(&pushes[0].body).unwrap();
    assert_eq!(body["receipt"]["action"], "token_request");
}

async fn the_traveller_sees_which_airlines_used_their_contact_and_can_withdraw(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    let receipt = app.upload_default().await;
    let code = receipt["withdrawal_code"].as_str().unwrap();
    let token: Value = app
        .request_token(&app.airline.api_key, &app.token_request().await)
        .await
        .json()
        .await
        .unwrap();
    app.redeem(&app.airline.api_key, token["token"].as_str().unwrap())
        .await;
    let view: Value = app
        .post_json("/v1/traveller/uses", "", &json!({"code": code}))
        .await;
    assert_eq!(view["state"], "given");
    let what = uses_seen(&view);
    assert_eq!(what, ["token_granted", "contact_revealed"]);
    assert_eq!(view["uses"][1]["airline"]["name"], "Air France");
    assert_eq!(view["uses"][1]["purpose"], "cancellation");
    assert_problem(
        app.post(
            "/v1/traveller/uses",
            "",
            &json!({"code": "pas_wd_nope_nope"}),
        )
        .await,
        404,
        "withdrawal-code-unknown",
    )
    .await;
    let withdrawn = app
        .post("/v1/withdrawals", "", &json!({"code": code}))
        .await;
    assert_eq!(withdrawn.status(), 200);
    let view: Value = app
        .post_json("/v1/traveller/uses", "", &json!({"code": code}))
        .await;
    assert_eq!(view["state"], "withdrawn");
}

crate::on_both_engines_with_engine!(
    a_cancellation_in_relay_only_mode_reaches_the_traveller_and_never_the_airline,
    a_failing_gateway_is_retried_with_backoff_until_it_takes_the_message,
    a_message_the_gateway_rejects_for_good_fails_at_once,
    the_text_is_checked_before_anything_is_used,
    withdrawal_revokes_tokens_and_cancels_queued_messages_at_once,
    a_message_whose_consent_lapsed_before_it_was_sent_is_cancelled_unsent,
    another_airline_sees_neither_the_message_nor_the_token,
    one_record_can_be_relay_only_while_the_agency_reveals,
    the_agency_reads_every_use_and_its_webhook_gets_each_signed,
    the_traveller_sees_which_airlines_used_their_contact_and_can_withdraw,
    a_relayed_message_links_only_to_its_airlines_domains,
    the_gateways_signed_receipt_says_what_became_of_an_sms,
    an_undeliverable_number_is_a_contact_to_fix_until_it_delivers_or_is_replaced,
    a_bounced_email_marks_the_address_unreachable_and_tells_the_agency,
);

impl Relay {
    /// Posts a receipt signed with `secret` at `at` (Unix seconds).
    pub(crate) async fn receipt(&self, body: &Value, secret: &str, at: i64) -> reqwest::Response {
        let body = body.to_string();
        let signature = passerelle::crypto::signed_body::signature(secret.as_bytes(), at, &body);
        self.app
            .client
            .post(format!("{}/v1/gateway/sms/receipts", self.app.url))
            .header("Passerelle-Gateway-Signature", signature)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }
}

async fn the_gateways_signed_receipt_says_what_became_of_an_sms(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let token = r.relay_token().await;
    let sent = r
        .accepted(
            token["token"].as_str().unwrap(),
            "sms",
            "AF1234 is cancelled.",
        )
        .await;
    let id = sent["message_id"].as_str().unwrap().to_string();
    let now = r.app.clock.now().unix_timestamp();
    let delivered = json!({"message_id": id, "status": "delivered"});

    // Before the gateway took it, there is nothing to say of it.
    let early = r.receipt(&delivered, RECEIPT_SECRET, now).await;
    let problem = assert_problem(early, 422, "invalid-field").await;
    assert_eq!(problem["errors"][0]["field"], "message_id");

    // Once it is accepted, a signed receipt says it reached the phone: on the message,
    // audited, once.
    r.deliver().await;
    assert_eq!(r.status(&id).await["status"], "delivered");
    assert!(
        r.status(&id).await.get("receipt").is_none(),
        "accepted, not yet received"
    );
    let first = r.receipt(&delivered, RECEIPT_SECRET, now).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["recorded"], true);
    let message = r.status(&id).await;
    assert_eq!(message["receipt"]["status"], "delivered", "{message}");
    let again: Value = r
        .receipt(&delivered, RECEIPT_SECRET, now)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["recorded"], false, "a retry is recorded once");
    let entries: Vec<Value> = r
        .app
        .audit_entries()
        .await
        .into_iter()
        .filter(|e| e["action"] == "message_receipt")
        .collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["outcome"], "delivered");
    assert_eq!(entries[0]["message_id"], id.as_str());
    assert!(
        entries[0]["event_reference"]
            .as_str()
            .is_some_and(|r| r.starts_with("dis_")),
        "the receipt is filed under the disruption: {}",
        entries[0]
    );

    // A forged receipt, a replayed one, and one for no message are each refused.
    let undeliverable =
        json!({"message_id": id, "status": "undeliverable", "reason": "number out of service"});
    let forged = r.receipt(&undeliverable, "not-the-secret", now).await;
    assert_problem(forged, 401, "unauthorized").await;
    let replayed = r.receipt(&undeliverable, RECEIPT_SECRET, now - 3_600).await;
    assert_problem(replayed, 401, "unauthorized").await;
    let unsigned = r
        .app
        .client
        .post(format!("{}/v1/gateway/sms/receipts", r.app.url))
        .body(undeliverable.to_string())
        .send()
        .await
        .unwrap();
    assert_problem(unsigned, 401, "unauthorized").await;
    let nobody = json!({"message_id": "msg_0000", "status": "delivered"});
    let nobody = r.receipt(&nobody, RECEIPT_SECRET, now).await;
    assert_problem(nobody, 404, "message-not-found").await;
    assert_eq!(r.status(&id).await["receipt"]["status"], "delivered");

    // A later receipt that it could not be delivered after all is recorded with the
    // gateway's reason, never written to the audit log.
    let bounced = r.receipt(&undeliverable, RECEIPT_SECRET, now).await;
    assert_eq!(bounced.status(), 200);
    let message = r.status(&id).await;
    assert_eq!(message["receipt"]["status"], "undeliverable");
    assert_eq!(message["receipt"]["reason"], "number out of service");
    let entries = r.app.audit_entries().await;
    let last = entries
        .iter()
        .rfind(|e| e["action"] == "message_receipt")
        .unwrap();
    assert_eq!(last["outcome"], "failed");
    assert_eq!(last["reason"], "undeliverable");
    assert!(!serde_json::to_string(&entries)
        .unwrap()
        .contains("out of service"));
}

async fn a_relayed_message_links_only_to_its_airlines_domains(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    let token = r.relay_token().await;
    let secret = token["token"].as_str().unwrap();
    let refused = assert_problem(
        r.send(
            secret,
            "sms",
            "AF1234 is cancelled. Rebook at https://airfrance.fr.rebook.example/x",
        )
        .await,
        422,
        "link-not-allowed",
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "text");
    assert!(refused["detail"]
        .as_str()
        .unwrap()
        .contains("airfrance.fr.rebook.example"));

    let domains = app
        .put(
            "/v1/airline/link-domains",
            &app.airline.api_key,
            &json!({"domains": ["AirFrance.fr", "af.example"]}),
        )
        .await;
    assert_eq!(domains.status(), 200);
    let listed = app
        .get_json("/v1/airline/link-domains", &app.airline.api_key)
        .await;
    assert_eq!(listed["domains"], json!(["af.example", "airfrance.fr"]));
    assert_eq!(
        app.get_json("/v1/airline/link-domains", &app.other_airline.api_key)
            .await["domains"],
        json!([]),
        "each airline has its own"
    );
    let entries = app.audit_entries().await;
    assert!(entries
        .iter()
        .any(|e| e["action"] == "settings_change" && e["reason"] == "link_domains_changed"));

    // Its own domains, and their subdomains, are fine; a look-alike is not.
    let ok = r
        .accepted(
            secret,
            "sms",
            "AF1234 is cancelled. Rebook at https://www.airfrance.fr/rebook",
        )
        .await;
    assert_eq!(ok["status"], "queued");
    for text in [
        "Rebook at https://airfrance.fr.evil.example/",
        "Call us: help@evil.example",
        "Rebook at https://аirfrance.fr/",
        "see evil.example/login",
    ] {
        assert_problem(r.send(secret, "sms", text).await, 422, "link-not-allowed").await;
    }
    let email = app
        .post(
            "/v1/messages",
            &app.airline.api_key,
            &json!({"token": secret, "channel": "email", "category": "cancellation",
                    "subject": "Rebook at evil.example", "text": "AF1234 is cancelled."}),
        )
        .await;
    let problem = assert_problem(email, 422, "link-not-allowed").await;
    assert_eq!(problem["errors"][0]["field"], "subject");
    let bad = app
        .put(
            "/v1/airline/link-domains",
            &app.airline.api_key,
            &json!({"domains": ["not a domain"]}),
        )
        .await;
    assert_problem(bad, 422, "invalid-field").await;
}

impl Relay {
    /// Relays an SMS under `token`, delivers it, and posts the gateway's receipt.
    async fn sms_with_receipt(&self, token: &str, status: &str) -> String {
        let sent = self.accepted(token, "sms", "AF1234 is cancelled.").await;
        let id = sent["message_id"].as_str().unwrap().to_string();
        self.deliver().await;
        let mut receipt = json!({"message_id": id, "status": status});
        if status == "undeliverable" {
            receipt["reason"] = json!("number out of service");
        }
        let now = self.app.clock.now().unix_timestamp();
        let answer = self.receipt(&receipt, RECEIPT_SECRET, now).await;
        assert_eq!(answer.status(), 200);
        id
    }

    pub(crate) async fn contacts_to_fix(&self) -> Vec<Value> {
        let listed = self
            .app
            .get_json("/v1/agency/contacts-to-fix", &self.app.agency.party.api_key)
            .await;
        listed["contacts"].as_array().unwrap().clone()
    }
}

async fn an_undeliverable_number_is_a_contact_to_fix_until_it_delivers_or_is_replaced(
    engine: Engine,
) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    let hook = FakeHttp::start().await;
    let secret = crate::telling::webhook_of(app, &app.agency.party.api_key, &hook).await;
    let token = r.relay_token().await;
    let token = token["token"].as_str().unwrap().to_string();
    let unreachable_events = || {
        hook.received()
            .into_iter()
            .filter(|p| p.body.contains("contact.unreachable"))
            .collect::<Vec<_>>()
    };

    // The gateway cannot reach Marie's number: it is a contact to fix, and the agency
    // is told, signed, without the number.
    let first = r.sms_with_receipt(&token, "undeliverable").await;
    let listed = r.contacts_to_fix().await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["channel"], "sms");
    assert_eq!(listed[0]["reason"], "undeliverable");
    assert_eq!(listed[0]["record_locator"], "ABC123");
    assert_eq!(listed[0]["record_id"], "CRM-0001");
    assert_eq!(listed[0]["departs"], crate::helpers::FLIGHT_DATE);
    r.deliver().await;
    let events = unreachable_events();
    assert_eq!(events.len(), 1);
    let header = events[0].headers["passerelle-signature"].to_str().unwrap();
    let at: i64 = header.split(',').next().unwrap()[2..].parse().unwrap();
    assert!(passerelle::workers::relay::webhook::verify(
        secret.as_bytes(),
        header,
        &events[0].body,
        at,
        300
    ));
    assert!(!events[0].body.contains(MOBILE), "never the number");
    let event: Value = serde_json::from_str(&events[0].body).unwrap();
    assert_eq!(event["contact"]["channel"], "sms");
    assert_eq!(event["contact"]["message_id"], first.as_str());
    assert_eq!(event["contact"]["traveller_id"], listed[0]["traveller_id"]);
    // The agency's page lists it too, under its record.
    let mut agency = crate::pages::Visitor::new(app);
    agency.sign_in(&app.agency.party.api_key).await;
    let page = agency.get("/agency/contacts").await.text().await.unwrap();
    assert!(
        page.contains("ABC123") && page.contains("CRM-0001") && page.contains("undeliverable"),
        "{page}"
    );
    assert!(!page.contains(MOBILE), "never the number");
    assert!(r
        .app
        .get_json(
            "/v1/agency/contacts-to-fix",
            &app.other_agency.party.api_key
        )
        .await["contacts"]
        .as_array()
        .unwrap()
        .is_empty());

    // The receipt is in the agency's feed of uses, and on the traveller's page.
    let feed = app
        .get_json("/v1/receipts?kind=receipt", &app.agency.party.api_key)
        .await;
    let receipts = feed["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 1, "{feed}");
    assert_eq!(receipts[0]["action"], "message_receipt");
    assert_eq!(receipts[0]["outcome"], "failed");

    // Counted, never named: the airline before a disruption, the agency, officers.
    let flight = format!(
        "/v1/flights/coverage?carrier=AF&flight_number=1234&date={}",
        crate::helpers::FLIGHT_DATE
    );
    let counts = app.get_json(&flight, &app.airline.api_key).await;
    assert_eq!(
        (
            &counts["travellers"],
            &counts["with_contact"],
            &counts["reached"],
            &counts["unreachable"]
        ),
        (&json!(1), &json!(1), &json!(0), &json!(1)),
        "{counts}"
    );
    assert!(!counts.to_string().contains("trv_"), "never who");
    assert_problem(
        app.get(&flight, &app.other_airline.api_key).await,
        422,
        "invalid-field",
    )
    .await;
    let agency = app
        .get_json("/v1/agency/contacts-to-fix", &app.agency.party.api_key)
        .await;
    assert_eq!(agency["coverage"]["unreachable"], 1, "{agency}");
    let report = app
        .get_json(
            "/v1/audit/reports?since=2026-11-01T00:00:00Z&until=2026-12-31T00:00:00Z",
            &app.officer.api_key,
        )
        .await;
    let af = report["coverage"]["by_airline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["party"] == "AF")
        .unwrap()
        .clone();
    assert_eq!(
        (&af["unreachable"], &af["reached"]),
        (&json!(1), &json!(0)),
        "{af}"
    );

    // A later message delivered: reachable again, and reached.
    r.sms_with_receipt(&token, "delivered").await;
    assert!(r.contacts_to_fix().await.is_empty());
    let counts = app.get_json(&flight, &app.airline.api_key).await;
    assert_eq!(
        (&counts["reached"], &counts["unreachable"]),
        (&json!(1), &json!(0)),
        "{counts}"
    );

    // Undeliverable again, then the agency uploads a new number: off the list.
    r.sms_with_receipt(&token, "undeliverable").await;
    assert_eq!(r.contacts_to_fix().await.len(), 1);
    r.deliver().await;
    assert_eq!(
        unreachable_events().len(),
        2,
        "told each time it stops reaching"
    );
    let mut moved = app.statement();
    moved["traveller"]["mobile"] = json!("+33698765432");
    let stored = app.upload(&moved).await;
    assert_eq!(stored.status(), 201);
    assert!(r.contacts_to_fix().await.is_empty());

    // Marie's page shows what reached her phone and what did not.
    let stored: Value = stored.json().await.unwrap();
    let code = stored["withdrawal_code"].as_str().unwrap();
    let view: Value = app
        .post_json("/v1/traveller/uses", "", &json!({"code": code}))
        .await;
    let what = uses_seen(&view);
    assert_eq!(
        what.iter()
            .filter(|w| **w == "message_not_received")
            .count(),
        2,
        "{what:?}"
    );
    assert_eq!(
        what.iter().filter(|w| **w == "message_received").count(),
        1,
        "{what:?}"
    );
}

/// A delivery-status notification, as a receiving server sends one back.
fn dsn(action: &str, status: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\r\n\
         --r\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
         --r\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; mx.example.net\r\n\r\n\
         Final-Recipient: rfc822; {EMAIL}\r\nAction: {action}\r\nStatus: {status}\r\n\r\n\
         --r--\r\n"
    )
}

/// Sends `raw` to `to` at the bounce listener on `port`, as a mail server does (null
/// sender), with lettre.
async fn send_to_listener(
    port: u16,
    to: &str,
    raw: &str,
) -> Result<(), lettre::transport::smtp::Error> {
    use lettre::AsyncTransport;
    let transport =
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(port)
            .build();
    let envelope = lettre::address::Envelope::new(None, vec![to.parse().unwrap()]).unwrap();
    transport
        .send_raw(&envelope, raw.as_bytes())
        .await
        .map(|_| ())
}

async fn a_bounced_email_marks_the_address_unreachable_and_tells_the_agency(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(passerelle::workers::bounces::run(
        app.state.clone(),
        listener,
    ));
    let hook = FakeHttp::start().await;
    crate::telling::webhook_of(app, &app.agency.party.api_key, &hook).await;
    let token = r.relay_token().await;
    let token = token["token"].as_str().unwrap().to_string();

    // The email goes out with its own return path.
    let sent = r.accepted(&token, "email", "AF1234 is cancelled.").await;
    let id = sent["message_id"].as_str().unwrap().to_string();
    r.deliver().await;
    let return_path = format!("bounce+{id}@{BOUNCE_DOMAIN}");
    let mail = r.smtp.mails().pop().expect("the email was sent");
    assert!(mail.from.contains(&return_path), "{}", mail.from);
    assert_eq!(mail.to, [EMAIL]);

    // The listener takes mail only for return paths of its domain.
    let elsewhere = send_to_listener(
        port,
        &format!("postmaster@{BOUNCE_DOMAIN}"),
        &dsn("failed", "5.1.1"),
    )
    .await;
    assert!(
        elsewhere.is_err_and(|e| e.is_permanent()),
        "not an open mailbox"
    );

    // A line longer than SMTP allows ends the session: a peer cannot make it hold more.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut greeting = [0u8; 256];
        let _ = raw.read(&mut greeting).await.unwrap();
        raw.write_all(&[b'A'; 4000]).await.unwrap();
        raw.write_all(b"\r\n").await.unwrap();
        let mut answer = String::new();
        raw.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("500"), "{answer}");
    }

    // Nor a report larger than any bounce is: refused, and nothing recorded.
    let padding = "X".repeat(900);
    let huge = format!(
        "{}{}",
        dsn("failed", "5.1.1"),
        format!("{padding}\r\n").repeat(320)
    );
    let refused = send_to_listener(port, &return_path, &huge).await;
    assert!(refused.is_err_and(|e| e.is_permanent()), "552: too large");
    assert!(r.status(&id).await.get("receipt").is_none());

    // A soft bounce is recorded on the message and changes nothing else.
    send_to_listener(port, &return_path, &dsn("delayed", "4.4.7"))
        .await
        .unwrap();
    let message = wait_for_receipt(&r, &id, "soft 4.4.7").await;
    assert_eq!(message["receipt"]["status"], "bounced");
    assert!(r.contacts_to_fix().await.is_empty());

    // The hard bounce: the address is unreachable, the agency told.
    send_to_listener(port, &return_path, &dsn("failed", "5.1.1"))
        .await
        .unwrap();
    wait_for_receipt(&r, &id, "hard 5.1.1").await;
    let listed = r.contacts_to_fix().await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["channel"], "email");
    assert_eq!(listed[0]["reason"], "hard_bounce");
    r.deliver().await;
    let events: Vec<Value> = hook
        .received()
        .into_iter()
        .filter(|p| p.body.contains("contact.unreachable"))
        .map(|p| serde_json::from_str(&p.body).unwrap())
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["contact"]["channel"], "email");
    assert!(!events[0].to_string().contains(EMAIL), "never the address");
    let entries = app.audit_entries().await;
    let bounces: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "message_receipt" && e["message_id"] == id.as_str())
        .collect();
    assert_eq!(bounces.len(), 2);
    assert_eq!(bounces[0]["reason"], "soft_bounce");
    assert_eq!(bounces[1]["reason"], "hard_bounce");
}

/// The message once its receipt reads `reason` (the listener records in the
/// background).
async fn wait_for_receipt(r: &Relay, id: &str, reason: &str) -> Value {
    for _ in 0..100 {
        let message = r.status(id).await;
        if message["receipt"]["reason"] == reason {
            return message;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no receipt `{reason}` on {id}: {}", r.status(id).await);
}

/// What each use the traveller's view lists was (`token_granted`, `contact_revealed`…).
fn uses_seen(view: &Value) -> Vec<&str> {
    view["uses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["what"].as_str().unwrap())
        .collect()
}
