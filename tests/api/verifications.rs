//! Verified contacts, on request: the agency asks, the traveller gets a code by SMS or
//! a link by email through the relay, and the answer marks the channel verified,
//! audited, counted as reached, and told to the agency's webhook.

use crate::fakes::FakeHttp;
use crate::helpers::{assert_problem, Engine, HeldLog, TestApp, EMAIL, MOBILE};
use crate::relay::{with_relay, Relay, RECEIPT_SECRET};
use passerelle::clock::Clock;
use passerelle::policy::engine::Policies;
use serde_json::{json, Value};

crate::on_both_engines_with_engine!(
    a_code_read_back_by_the_agency_verifies_the_mobile,
    an_emailed_link_opens_a_page_whose_button_verifies_the_address,
    a_verification_ends_with_wrong_codes_time_or_a_changed_record,
    nothing_is_sent_unless_a_record_in_force_holds_the_contact,
    a_traveller_is_not_flooded_with_codes,
    a_code_the_gateway_cannot_deliver_marks_the_number_to_fix,
    a_purged_record_takes_its_verifications_and_reachability_with_it,
);

impl Relay {
    /// The agency asks to verify `channel` of `consent`.
    async fn ask_verification(&self, consent: &str, channel: &str) -> reqwest::Response {
        let app = &self.app;
        app.post(
            &format!("/v1/consents/{consent}/verifications"),
            &app.agency.party.api_key,
            &json!({ "channel": channel }),
        )
        .await
    }

    /// Asks, expecting it queued, and answers the verification.
    async fn asked(&self, consent: &str, channel: &str) -> Value {
        let response = self.ask_verification(consent, channel).await;
        assert_eq!(response.status(), 202);
        response.json().await.unwrap()
    }

    /// Asks for the mobile to be verified and sends the code; answers the
    /// verification's id.
    async fn sent_code(&self, consent: &str) -> String {
        let id = self.asked_id(consent, "sms").await;
        self.deliver().await;
        id
    }

    /// Asks, expecting it queued, and answers the verification's id.
    async fn asked_id(&self, consent: &str, channel: &str) -> String {
        self.asked(consent, channel).await["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn verification(&self, id: &str) -> Value {
        let app = &self.app;
        app.get_json(
            &format!("/v1/contact-verifications/{id}"),
            &app.agency.party.api_key,
        )
        .await
    }

    /// Asks for the email to be verified and sends the link; answers the verification's
    /// id.
    pub(crate) async fn asked_email(&self, consent: &str) -> String {
        let id = self.asked_id(consent, "email").await;
        self.deliver().await;
        id
    }

    /// The agency posts a code.
    async fn answer(&self, id: &str, code: &str) -> reqwest::Response {
        let app = &self.app;
        app.post(
            &format!("/v1/contact-verifications/{id}/confirmation"),
            &app.agency.party.api_key,
            &json!({ "code": code }),
        )
        .await
    }

    /// The code in the last SMS the gateway took.
    pub(crate) fn last_code(&self) -> String {
        let texts = self.gateway.received();
        let sent: Value = serde_json::from_str(&texts.last().expect("an SMS").body).unwrap();
        let text = sent["text"].as_str().unwrap();
        text.split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .unwrap_or_else(|| panic!("no code in {text}"))
            .to_string()
    }
}

async fn a_code_read_back_by_the_agency_verifies_the_mobile(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    let hook = FakeHttp::start().await;
    crate::telling::webhook_of(app, &app.agency.party.api_key, &hook).await;
    let uploaded = app.upload_default().await;
    let consent = uploaded["consent_id"].as_str().unwrap();
    let coverage = || async {
        app.get_json("/v1/agency/contacts-to-fix", &app.agency.party.api_key)
            .await["coverage"]
            .clone()
    };
    assert_eq!(coverage().await["reached"], 0);

    // Asked: queued for the relay, nothing sent yet.
    let asked = r.asked(consent, "sms").await;
    assert_eq!(asked["state"], "queued");
    assert_eq!(asked["channel"], "sms");
    assert_eq!(asked["consent_id"], consent);
    assert_eq!(asked["tries_left"], 5);
    assert!(asked["audit_index"].is_i64());
    let id = asked["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("cvf_"));

    // The relay sends six digits to Marie's mobile, in the language of her notice.
    r.deliver().await;
    let texts = r.gateway.received();
    assert_eq!(texts.len(), 1);
    let sent: Value = serde_json::from_str(&texts[0].body).unwrap();
    assert_eq!(sent["to"], MOBILE);
    assert_eq!(sent["message_id"], id.as_str());
    assert!(
        sent["text"]
            .as_str()
            .unwrap()
            .contains("votre code de vérification"),
        "{sent}"
    );
    let code = r.last_code();
    let now = r.verification(&id).await;
    assert_eq!(now["state"], "sent");
    assert!(now["sent_at"].is_string());
    assert!(
        !now.to_string().contains(&code),
        "the code is never shown back"
    );

    // A wrong code is counted and named.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = r.answer(&id, wrong).await;
    let problem = assert_problem(refused, 422, "verification-code-mismatch").await;
    assert_eq!(problem["errors"][0]["field"], "code");
    assert_eq!(problem["tries_left"], 4);

    // The right one, typed with a space, confirms the mobile.
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    let confirmed = r.answer(&id, &spaced).await;
    assert_eq!(confirmed.status(), 200);
    let confirmed: Value = confirmed.json().await.unwrap();
    assert_eq!(confirmed["recorded"], true);
    assert_eq!(confirmed["verification"]["state"], "confirmed");
    assert!(confirmed["verification"]["confirmed_at"].is_string());
    assert_eq!(
        coverage().await["reached"],
        1,
        "a verified contact is reached"
    );

    // Again: nothing more is recorded.
    let again: Value = r.answer(&id, &code).await.json().await.unwrap();
    assert_eq!(again["recorded"], false);

    // The agency's webhook is told, never the number.
    r.deliver().await;
    let events: Vec<Value> = hook
        .received()
        .into_iter()
        .filter(|p| p.body.contains("contact.verified"))
        .map(|p| serde_json::from_str(&p.body).unwrap())
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["contact"]["verification_id"], id.as_str());
    assert_eq!(events[0]["contact"]["channel"], "sms");
    assert!(!events[0].to_string().contains(MOBILE));

    // Every step is in the log, never the number or the code.
    let entries = app.audit_entries().await;
    let steps: Vec<(String, String, String)> = entries
        .iter()
        .filter(|e| e["message_id"] == id.as_str())
        .map(|e| {
            let word = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (word("action"), word("outcome"), word("reason"))
        })
        .collect();
    let step = |a: &str, o: &str, why: &str| (a.to_string(), o.to_string(), why.to_string());
    assert_eq!(
        steps,
        [
            step("contact_verification", "queued", ""),
            step("contact_verification", "delivered", ""),
            step("contact_confirmation", "refused", "wrong_code"),
            step("contact_confirmation", "recorded", ""),
        ]
    );
    let all = serde_json::to_string(&entries).unwrap();
    assert!(!all.contains(MOBILE) && !all.contains(&code));
}

async fn an_emailed_link_opens_a_page_whose_button_verifies_the_address(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    let uploaded = app.upload_default().await;
    let consent = uploaded["consent_id"].as_str().unwrap();
    let id = r.asked_email(consent).await;

    // The email holds a link to the broker's page.
    let (path, code) = r.emailed_link(&id);
    let code = code.as_str();

    // Opening it confirms nothing: a scanner or a preview may fetch it.
    let page = app
        .client
        .get(format!("{}/verify{path}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"confirm-contact\""), "{html}");
    assert_eq!(r.verification(&id).await["state"], "sent");

    // A forged secret opens nothing.
    let forged = app
        .client
        .post(format!("{}/verify", app.url))
        .form(&[("id", id.as_str()), ("code", "A".repeat(43).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 422);

    // The button confirms.
    let pressed = app
        .client
        .post(format!("{}/verify", app.url))
        .form(&[("id", id.as_str()), ("code", code)])
        .send()
        .await
        .unwrap();
    let status = pressed.status();
    assert_eq!(status, 200, "{path} {}", pressed.text().await.unwrap());
    assert!(pressed.text().await.unwrap().contains("contact-confirmed"));
    let now = r.verification(&id).await;
    assert_eq!(now["state"], "confirmed");
    assert_eq!(now["tries_left"], 4, "the forged secret counted");
    let entries = app.audit_entries().await;
    let confirmation = entries
        .iter()
        .find(|e| e["action"] == "contact_confirmation" && e["outcome"] == "recorded")
        .unwrap();
    assert_eq!(confirmation["actor_kind"], "traveller");
    assert_eq!(confirmation["channel"], "email");
}

async fn a_verification_ends_with_wrong_codes_time_or_a_changed_record(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    let uploaded = app.upload_default().await;
    let consent = uploaded["consent_id"].as_str().unwrap().to_string();

    // Five wrong codes lock it: the right one is then refused too.
    let locked = r.asked_id(&consent, "sms").await;
    r.deliver().await;
    let code = r.last_code();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (0..5).rev() {
        let refused = assert_problem(
            r.answer(&locked, wrong).await,
            422,
            "verification-code-mismatch",
        )
        .await;
        assert_eq!(refused["tries_left"], left);
    }
    let closed = assert_problem(r.answer(&locked, &code).await, 409, "verification-closed").await;
    assert_eq!(closed["state"], "locked");

    // Thirty minutes later a code has expired.
    let late = r.asked_id(&consent, "sms").await;
    r.deliver().await;
    let code = r.last_code();
    app.clock.advance(time::Duration::minutes(31));
    let closed = assert_problem(r.answer(&late, &code).await, 409, "verification-closed").await;
    assert_eq!(closed["state"], "expired");
    assert_eq!(r.verification(&late).await["state"], "expired");

    // A code sent before the traveller withdrew confirms nothing.
    let sent = r.asked_id(&consent, "sms").await;
    r.deliver().await;
    let texts = r.gateway.received();
    let code = r.last_code();
    let answer = app
        .post(
            &format!("/v1/consents/{consent}/withdrawal"),
            &app.agency.party.api_key,
            &json!({}),
        )
        .await;
    assert_eq!(answer.status(), 200);
    let closed = assert_problem(r.answer(&sent, &code).await, 409, "verification-closed").await;
    assert!(closed["detail"]
        .as_str()
        .unwrap()
        .contains("no longer holds"));
    let entries = app.audit_entries().await;
    assert!(entries.iter().any(|e| e["action"] == "contact_confirmation"
        && e["reason"] == "contact_changed"
        && e["message_id"] == sent.as_str()));
    // Nor can another be asked for: the record is no longer in force, and nothing
    // more is sent.
    let refused = r.ask_verification(&consent, "sms").await;
    assert_problem(refused, 403, "consent-inactive").await;
    r.deliver().await;
    assert_eq!(r.gateway.received().len(), texts.len());
}

impl Relay {
    /// The path of the link in the last email (`?id=…&code=…`) and its secret, once
    /// checked that it went to Marie, in French, for verification `id`.
    pub(crate) fn emailed_link(&self, id: &str) -> (String, String) {
        let mails = self.smtp.mails();
        let mail = mails.last().expect("an email");
        assert_eq!(mail.to, [EMAIL]);
        assert!(
            mail.from.contains(&format!("bounce+{id}@")),
            "its bounces come back to it: {}",
            mail.from
        );
        let parsed = mail_parser::MessageParser::default()
            .parse(mail.data.as_bytes())
            .unwrap();
        assert!(parsed
            .subject()
            .unwrap()
            .contains("confirmez votre adresse"));
        let text = parsed.body_text(0).unwrap().to_string();
        let link = text
            .split_whitespace()
            .find(|w| w.contains("/verify?lang=fr&id="))
            .unwrap_or_else(|| panic!("no link in {text}"));
        let path = link.split_once("/verify").unwrap().1.to_string();
        let (query_id, code) = path
            .trim_start_matches("?lang=fr&id=")
            .split_once("&code=")
            .unwrap();
        assert_eq!(query_id, id);
        (path.clone(), code.to_string())
    }
}

async fn nothing_is_sent_unless_a_record_in_force_holds_the_contact(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    // A record with no email cannot have one verified.
    let mut statement = app.statement();
    statement["traveller"]
        .as_object_mut()
        .unwrap()
        .remove("email");
    statement["consent"]["data_categories"] = json!(["mobile"]);
    let uploaded: Value = app.upload(&statement).await.json().await.unwrap();
    let consent = uploaded["consent_id"].as_str().unwrap().to_string();
    let refused = assert_problem(
        r.ask_verification(&consent, "email").await,
        422,
        "channel-not-covered",
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "channel");
    let refused = assert_problem(
        r.ask_verification(&consent, "fax").await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "channel");
    assert_problem(
        r.ask_verification("cns_00000000000000000000000000000000", "sms")
            .await,
        404,
        "consent-not-found",
    )
    .await;

    // A verification queued, then the record replaced with another mobile: the code
    // is not sent to either number.
    let queued = r.asked_id(&consent, "sms").await;
    statement["traveller"]["mobile"] = json!("+33611112222");
    let replaced = app.upload(&statement).await;
    assert_eq!(replaced.status(), 201);
    r.deliver().await;
    assert!(r.gateway.received().is_empty(), "nothing sent");
    let now = r.verification(&queued).await;
    assert_eq!(now["state"], "cancelled");
    assert_eq!(now["last_error"], "contact_changed");

    // A broker with no transport for a channel queues nothing for it.
    let Some(bare) = TestApp::with(engine, crate::helpers::test_settings()).await else {
        return;
    };
    let uploaded = bare.upload_default().await;
    let refused = bare
        .post(
            &format!(
                "/v1/consents/{}/verifications",
                uploaded["consent_id"].as_str().unwrap()
            ),
            &bare.agency.party.api_key,
            &json!({"channel": "sms"}),
        )
        .await;
    assert_problem(refused, 503, "relay-unavailable").await;
}

async fn a_traveller_is_not_flooded_with_codes(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    let uploaded = app.upload_default().await;
    let consent = uploaded["consent_id"].as_str().unwrap();
    for _ in 0..3 {
        r.asked(consent, "sms").await;
        app.clock.advance(time::Duration::hours(1));
    }
    let refused = r.ask_verification(consent, "sms").await;
    let retry: i64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        retry,
        21 * 3600,
        "until the first of the three is a day old"
    );
    assert_problem(refused, 429, "verification-limit-reached").await;
    // The other channel has its own allowance; a day later the mobile has again.
    r.asked(consent, "email").await;
    app.clock.advance(time::Duration::hours(21));
    r.asked(consent, "sms").await;
}

#[tokio::test]
async fn two_brokers_asked_at_once_send_the_days_last_code_once() {
    let Some(r) = with_relay(Engine::Postgres, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    let (second, _) = app.another_broker().await;
    let uploaded = app.upload_default().await;
    let consent = uploaded["consent_id"].as_str().unwrap();
    r.asked(consent, "sms").await;
    r.asked(consent, "sms").await;

    // The third and last of the day is asked at both brokers while another write holds
    // the log, so that both have looked before either can commit.
    let held = HeldLog::take(app).await;
    let ask_at = |url: &str| {
        app.client
            .post(format!("{url}/v1/consents/{consent}/verifications"))
            .bearer_auth(&app.agency.party.api_key)
            .json(&json!({"channel": "sms"}))
            .send()
    };
    let (a, b, ()) = tokio::join!(
        ask_at(&app.url),
        ask_at(&second),
        held.release_once_waited_on(app, 2)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let (sent, refused) = if a.status() == 202 { (a, b) } else { (b, a) };
    assert_eq!(sent.status(), 202, "one of the two is sent");
    assert_problem(refused, 429, "verification-limit-reached").await;
    let queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contact_verifications")
        .fetch_one(app.store.reader())
        .await
        .unwrap();
    assert_eq!(queued, 3, "three codes in the day, not four");
}

async fn a_code_the_gateway_cannot_deliver_marks_the_number_to_fix(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    let uploaded = app.upload_default().await;
    let id = r.sent_code(uploaded["consent_id"].as_str().unwrap()).await;
    // The gateway reports on the code's SMS as on any message it took.
    let body = json!({"message_id": id, "status": "undeliverable", "reason": "unknown subscriber"});
    let now = app.clock.now().unix_timestamp();
    for recorded in [true, false] {
        let answer: Value = r
            .receipt(&body, RECEIPT_SECRET, now)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            answer["recorded"], recorded,
            "twice, recorded once: {answer}"
        );
    }
    let listed = r.contacts_to_fix().await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["channel"], "sms");
    assert_eq!(listed[0]["reason"], "undeliverable");
    let now = r.verification(&id).await;
    assert_eq!(now["receipt"]["status"], "undeliverable", "{now}");
    assert_eq!(now["receipt"]["reason"], "unknown subscriber");
    let entries = app.audit_entries().await;
    assert!(entries.iter().any(|e| e["action"] == "message_receipt"
        && e["message_id"] == id.as_str()
        && e["reason"] == "undeliverable"));
}

async fn a_purged_record_takes_its_verifications_and_reachability_with_it(engine: Engine) {
    let Some(r) = with_relay(engine, Policies::built_in().unwrap()).await else {
        return;
    };
    let app = &r.app;
    let uploaded = app.upload_default().await;
    let id = r.sent_code(uploaded["consent_id"].as_str().unwrap()).await;
    let body = json!({"message_id": id, "status": "undeliverable"});
    let now = app.clock.now().unix_timestamp();
    assert_eq!(r.receipt(&body, RECEIPT_SECRET, now).await.status(), 200);
    assert_eq!(r.contacts_to_fix().await.len(), 1);

    // Thirty days after the trip the contact is destroyed, and with it the code and
    // everything kept by the contact's digest.
    app.clock.advance(time::Duration::days(40));
    let purged = passerelle::workers::sweeper::sweep(&app.state)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let gone = app
        .get(
            &format!("/v1/contact-verifications/{id}"),
            &app.agency.party.api_key,
        )
        .await;
    assert_problem(gone, 404, "verification-not-found").await;
    // Nothing is kept of the number (read from the store: no API shows a purged
    // record's reachability).
    let mut conn = app.store.reader().acquire().await.unwrap();
    let traveller = uploaded["traveller_id"].as_str().unwrap();
    let left = passerelle::store::reachability::known(&mut conn, traveller, "sms")
        .await
        .unwrap();
    assert_eq!(left, None, "nothing is kept of the number");
}
