//! The pages over plain HTTP: sessions, CSRF, security headers, scoping and masking,
//! language, CSV downloads and upload errors. (The browser flows are in `browser`.)

use crate::helpers::{TestApp, EMAIL, MOBILE};
use crate::on_both_engines;
use passerelle::service::Settings;
use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::Value;
use std::collections::BTreeMap;

on_both_engines!(
    every_page_carries_the_security_headers_and_no_script,
    a_session_cookie_is_http_only_and_same_site_strict,
    sign_in_refuses_a_wrong_key_an_airline_and_a_forged_form,
    sign_in_refuses_a_token_the_broker_did_not_issue_or_a_form_from_another_site,
    pages_need_a_session_of_the_right_kind_of_party,
    a_form_without_its_csrf_token_changes_nothing,
    signing_out_or_revoking_the_key_ends_the_session,
    a_session_ends_after_thirty_idle_minutes_or_twelve_hours,
    the_traveller_alone_sees_the_contact_and_only_masked,
    a_traveller_code_that_opens_nothing_says_so_alike_for_every_fault,
    a_traveller_code_never_travels_in_a_url,
    guessing_codes_or_keys_at_speed_is_refused,
    withdrawing_from_the_page_needs_the_confirmation,
    an_agency_sees_only_its_own_records,
    an_agency_sees_the_open_disruptions_touching_its_clients_and_what_was_done,
    every_report_table_downloads_as_csv,
    an_upload_that_cannot_be_read_names_the_field_and_stores_nothing,
    a_pnrs_contact_elements_upload_from_the_page,
    pages_speak_french_when_asked,
);

/// A browser, as far as these tests need one: cookies kept, redirects not followed.
pub(crate) struct Visitor {
    url: String,
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

impl Visitor {
    pub(crate) fn new(app: &TestApp) -> Self {
        Self {
            url: app.url.clone(),
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    fn keep(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.into(), value.into());
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The text of the page at `path`.
    pub(crate) async fn text(&mut self, path: &str) -> String {
        self.get(path).await.text().await.unwrap()
    }

    pub(crate) async fn get(&mut self, path: &str) -> reqwest::Response {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(response.headers());
        response
    }

    async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .header("cookie", self.cookie_header())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.keep(response.headers());
        response
    }

    async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str, &str)],
    ) -> reqwest::Response {
        let boundary = "passerelle-test-boundary";
        let mut body = String::new();
        for (name, filename, value) in fields {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\""
            ));
            if !filename.is_empty() {
                body.push_str(&format!(
                    "; filename=\"{filename}\"\r\nContent-Type: application/octet-stream"
                ));
            }
            body.push_str(&format!("\r\n\r\n{value}\r\n"));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .header("cookie", self.cookie_header())
            .header(
                CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        self.keep(response.headers());
        response
    }

    /// Signs in with a key; returns the answer to the form.
    pub(crate) async fn sign_in(&mut self, key: &str) -> reqwest::Response {
        let form = self.get("/sign-in").await;
        assert_eq!(form.status(), 200);
        let csrf = self.cookies.get("passerelle_sign_in").cloned().unwrap();
        self.post_form("/sign-in", &[("key", key), ("csrf", &csrf)])
            .await
    }

    /// The CSRF token of the session's forms, read off a page.
    async fn csrf(&mut self, page: &str) -> String {
        let html = self.get(page).await.text().await.unwrap();
        let at = html
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token")
            + 19;
        html[at..at + html[at..].find('"').unwrap()].to_string()
    }
}

fn location(response: &reqwest::Response) -> &str {
    response.headers()[LOCATION].to_str().unwrap()
}

async fn every_page_carries_the_security_headers_and_no_script(app: TestApp) {
    app.upload_default().await;
    let traveller = "/t";
    let mut visitor = Visitor::new(&app);
    let sign_in = visitor.get("/sign-in").await;
    assert!(sign_in.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    visitor.sign_in(&app.officer.api_key).await;
    for path in [
        "/console",
        "/console/integrity",
        "/console/reports",
        "/console/policies",
        "/console/entries/0",
        "/console/entries/999",
        traveller,
    ] {
        let response = visitor.get(path).await;
        let headers = response.headers().clone();
        assert!(
            headers.contains_key(CONTENT_TYPE),
            "{path}: {:?} {headers:?}",
            response.status()
        );
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("script-src"),
            "{path}: no script may run"
        );
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        assert!(
            headers[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        let html = response.text().await.unwrap();
        assert!(
            !html.contains("<script") && !html.contains(" style=") && !html.contains("<style"),
            "{path}"
        );
    }
    let css = visitor.get("/assets/style.css").await;
    assert_eq!(css.headers()[CONTENT_TYPE], "text/css; charset=utf-8");
    // The API's answers too: a browser never guesses JSON to be a page.
    let api = app.get("/v1/consents", &app.agency.party.api_key).await;
    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
    let refused = app.get("/v1/consents", "nonsense").await;
    assert_eq!(refused.headers()["x-content-type-options"], "nosniff");
    assert!(
        !api.headers().contains_key("strict-transport-security"),
        "no HSTS over plain http"
    );
}

async fn a_session_cookie_is_http_only_and_same_site_strict(app: TestApp) {
    let mut visitor = Visitor::new(&app);
    let signed_in = visitor.sign_in(&app.officer.api_key).await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(location(&signed_in), "/console");
    let cookie = signed_in
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("passerelle_session="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "with --insecure-cookies, as the tests and the demo run on plain http: {cookie}"
    );
    assert!(
        !cookie.contains(&app.officer.api_key),
        "the cookie is not the key"
    );
    assert_eq!(visitor.get("/console").await.status(), 200);
}

async fn sign_in_refuses_a_wrong_key_an_airline_and_a_forged_form(app: TestApp) {
    let mut visitor = Visitor::new(&app);
    let wrong = visitor
        .sign_in("pas_officer_0000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong
        .text()
        .await
        .unwrap()
        .contains("does not open a session"));
    assert!(!visitor.cookies.contains_key("passerelle_session"));

    let airline = visitor.sign_in(&app.airline.api_key).await;
    assert_eq!(airline.status(), 403);
    assert!(airline
        .text()
        .await
        .unwrap()
        .contains("Airlines use the API"));
    assert!(!visitor.cookies.contains_key("passerelle_session"));

    // A form posted from elsewhere carries no double-submit cookie.
    let mut forger = Visitor::new(&app);
    let forged = forger
        .post_form(
            "/sign-in",
            &[("key", &app.officer.api_key), ("csrf", "guessed")],
        )
        .await;
    assert_eq!(forged.status(), 403);
    assert!(!forger.cookies.contains_key("passerelle_session"));
}

async fn sign_in_refuses_a_token_the_broker_did_not_issue_or_a_form_from_another_site(
    app: TestApp,
) {
    // An attacker who can plant a cookie chooses its value and posts the same value
    // in a form, with their own key, to sign a victim in as themselves.
    let mut victim = Visitor::new(&app);
    victim
        .cookies
        .insert("passerelle_sign_in".into(), "chosen-by-the-attacker".into());
    let planted = victim
        .post_form(
            "/sign-in",
            &[
                ("key", &app.agency.party.api_key),
                ("csrf", "chosen-by-the-attacker"),
            ],
        )
        .await;
    assert_eq!(planted.status(), 403);
    assert!(!victim.cookies.contains_key("passerelle_session"));

    // A genuine token, expired.
    let mut late = Visitor::new(&app);
    late.get("/sign-in").await;
    let csrf = late.cookies.get("passerelle_sign_in").cloned().unwrap();
    app.clock.advance(time::Duration::minutes(61));
    let expired = late
        .post_form(
            "/sign-in",
            &[("key", &app.agency.party.api_key), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(expired.status(), 403);

    // A genuine token, but the browser says the form came from another site.
    let mut visitor = Visitor::new(&app);
    visitor.get("/sign-in").await;
    let csrf = visitor.cookies.get("passerelle_sign_in").cloned().unwrap();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("key", app.agency.party.api_key.as_str()), ("csrf", &csrf)])
        .finish();
    let cross_site = visitor
        .client
        .post(format!("{}/sign-in", app.url))
        .header("cookie", visitor.cookie_header())
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    // The same form from the page itself signs in.
    let signed_in = visitor
        .post_form(
            "/sign-in",
            &[("key", &app.agency.party.api_key), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(signed_in.status(), 303);
}

async fn pages_need_a_session_of_the_right_kind_of_party(app: TestApp) {
    let mut stranger = Visitor::new(&app);
    for path in [
        "/console",
        "/console/integrity",
        "/agency",
        "/agency/upload",
        "/agency/disruptions",
        "/agency/contacts",
        "/",
    ] {
        let response = stranger.get(path).await;
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(location(&response), "/sign-in", "{path}");
    }
    let mut agency = Visitor::new(&app);
    agency.sign_in(&app.agency.party.api_key).await;
    let response = agency.get("/console").await;
    assert_eq!(
        location(&response),
        "/agency",
        "an agency is sent to its own pages"
    );
    assert_eq!(location(&agency.get("/console/entries/0").await), "/agency");
    let mut officer = Visitor::new(&app);
    officer.sign_in(&app.officer.api_key).await;
    assert_eq!(location(&officer.get("/agency/upload").await), "/console");
}

async fn a_form_without_its_csrf_token_changes_nothing(app: TestApp) {
    let mut officer = Visitor::new(&app);
    officer.sign_in(&app.officer.api_key).await;
    let refused = officer
        .post_form("/console/integrity/verify", &[("csrf", "not-the-token")])
        .await;
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("csrf"));
    let panel = officer
        .get("/console/integrity")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        panel.contains("No verification was run"),
        "no verification started"
    );
    assert_eq!(officer.post_form("/sign-out", &[]).await.status(), 422);
    assert_eq!(
        officer.get("/console").await.status(),
        200,
        "still signed in"
    );

    let mut agency = Visitor::new(&app);
    agency.sign_in(&app.agency.party.api_key).await;
    let csv = format!(
        "{}\n",
        passerelle::service::ingest::csv::CSV_HEADER.join(",")
    );
    let upload = agency
        .post_multipart(
            "/agency/upload",
            &[("csrf", "", "wrong"), ("file", "a.csv", &csv)],
        )
        .await;
    assert_eq!(upload.status(), 403);

    // With the token, the verification runs and is recorded.
    let csrf = officer.csrf("/console/integrity").await;
    let started = officer
        .post_form("/console/integrity/verify", &[("csrf", &csrf)])
        .await;
    assert_eq!(started.status(), 303);
    for _ in 0..100 {
        let panel = officer
            .get("/console/integrity")
            .await
            .text()
            .await
            .unwrap();
        if panel.contains("id=\"verification-result\"") {
            assert!(panel.contains("Intact"));
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the verification did not finish");
}

async fn signing_out_or_revoking_the_key_ends_the_session(app: TestApp) {
    let mut officer = Visitor::new(&app);
    officer.sign_in(&app.officer.api_key).await;
    let stolen = officer.cookies.clone();
    let csrf = officer.csrf("/console").await;
    let out = officer.post_form("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(location(&out), "/sign-in");
    let mut replay = Visitor::new(&app);
    replay.cookies = stolen;
    assert_eq!(
        location(&replay.get("/console").await),
        "/sign-in",
        "the old cookie opens nothing"
    );

    let mut agency = Visitor::new(&app);
    agency.sign_in(&app.agency.party.api_key).await;
    assert_eq!(agency.get("/agency").await.status(), 200);
    let mut tx = app.store.begin().await.unwrap();
    passerelle::store::api_keys::revoke_api_keys(
        &mut tx,
        &app.agency.party.id,
        crate::helpers::START,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(location(&agency.get("/agency").await), "/sign-in");
}

async fn a_session_ends_after_thirty_idle_minutes_or_twelve_hours(app: TestApp) {
    let mut officer = Visitor::new(&app);
    officer.sign_in(&app.officer.api_key).await;
    // Kept alive by a page view every 25 minutes...
    for _ in 0..4 {
        app.clock.advance(time::Duration::minutes(25));
        assert_eq!(officer.get("/console").await.status(), 200);
    }
    // ...but not after 31 idle minutes.
    app.clock.advance(time::Duration::minutes(31));
    assert_eq!(location(&officer.get("/console").await), "/sign-in");

    let mut agency = Visitor::new(&app);
    agency.sign_in(&app.agency.party.api_key).await;
    for _ in 0..29 {
        app.clock.advance(time::Duration::minutes(25));
        agency.get("/agency").await;
    }
    assert_eq!(
        location(&agency.get("/agency").await),
        "/sign-in",
        "twelve hours at most"
    );
}

async fn the_traveller_alone_sees_the_contact_and_only_masked(app: TestApp) {
    let uploaded = app.upload_default().await;
    let link = uploaded["traveller_page"].as_str().unwrap();
    assert!(link.ends_with("/t"), "the page, without the code: {link}");
    let code = uploaded["withdrawal_code"].as_str().unwrap();
    let mut traveller = Visitor::new(&app);
    let form = traveller.get("/t").await;
    assert_eq!(form.status(), 200);
    assert!(form.text().await.unwrap().contains("name=\"code\""));
    let page = traveller.post_form("/t", &[("code", code)]).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("+33 6•• •• •• 78") && html.contains("m•••@e•••.fr"),
        "masked contact"
    );
    assert!(!html.contains(MOBILE) && !html.contains(EMAIL) && !html.contains("Dupont"));

    let mut officer = Visitor::new(&app);
    officer.sign_in(&app.officer.api_key).await;
    let mut agency = Visitor::new(&app);
    agency.sign_in(&app.agency.party.api_key).await;
    let consent_id = uploaded["consent_id"].as_str().unwrap();
    for (by_officer, path) in [
        (true, "/console".to_string()),
        (true, "/console/entries/0".to_string()),
        (false, "/agency".to_string()),
        (false, format!("/agency/records/{consent_id}")),
        (false, "/agency/receipts".to_string()),
    ] {
        let visitor = if by_officer {
            &mut officer
        } else {
            &mut agency
        };
        let response = visitor.get(&path).await;
        assert_eq!(response.status(), 200, "{path}");
        let html = response.text().await.unwrap();
        assert!(
            !html.contains(MOBILE) && !html.contains("6•• ••") && !html.contains(EMAIL),
            "{path} shows no contact"
        );
    }
}

async fn a_traveller_code_that_opens_nothing_says_so_alike_for_every_fault(app: TestApp) {
    let uploaded = app.upload_default().await;
    let code = uploaded["withdrawal_code"].as_str().unwrap();
    let mut visitor = Visitor::new(&app);
    let mut pages = Vec::new();
    for (path, wrong) in [
        ("/t", "nonsense".to_string()),
        ("/t", code[..code.len() - 1].to_string()),
        ("/t", format!("{}x", &code[..code.len() - 1])),
        (
            "/t/withdraw",
            "pas_wd_0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string(),
        ),
    ] {
        let response = visitor.post_form(path, &[("code", &wrong)]).await;
        assert_eq!(response.status(), 404, "{path} {wrong}");
        let html = response.text().await.unwrap();
        let alert = html[html.find("id=\"unknown-code\"").unwrap()..].to_string();
        pages.push(alert[..alert.find("</p>").unwrap()].to_string());
    }
    assert!(
        pages.windows(2).all(|w| w[0] == w[1]),
        "one answer for every fault: {pages:?}"
    );
}

async fn a_traveller_code_never_travels_in_a_url(app: TestApp) {
    let uploaded = app.upload_default().await;
    let code = uploaded["withdrawal_code"].as_str().unwrap();
    // A link of the earlier form opens the form, and reads nothing of the code in it.
    let mut visitor = Visitor::new(&app);
    let old = visitor.get(&format!("/t/{code}")).await;
    assert_eq!(old.status(), 200);
    let html = old.text().await.unwrap();
    assert!(html.contains("name=\"code\"") && !html.contains("6•• ••"));
    assert!(!html.contains(code), "the code is not echoed");
    // The page's forms carry the code in their bodies only.
    let page = visitor.post_form("/t", &[("code", code)]).await;
    let html = page.text().await.unwrap();
    for action in html.split("action=\"").skip(1) {
        let action = &action[..action.find('"').unwrap()];
        assert!(!action.contains("pas_wd_"), "a form posts to {action}");
    }
    for href in html.split("href=\"").skip(1) {
        assert!(!href[..href.find('"').unwrap()].contains("pas_wd_"));
    }
}

async fn guessing_codes_or_keys_at_speed_is_refused(app: TestApp) {
    let tunables = &app.state.settings.policies.tunables.public_rate_limit;
    let burst = tunables.burst as usize;
    let wrong = "pas_wd_0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let mut visitor = Visitor::new(&app);
    for _ in 0..burst {
        let response = visitor.post_form("/t", &[("code", wrong)]).await;
        assert_eq!(response.status(), 404);
    }
    let limited = visitor.post_form("/t", &[("code", wrong)]).await;
    assert_eq!(limited.status(), 429, "the page");
    assert!(limited.headers().contains_key("retry-after"));
    // The API shares the address's bucket: the same client is refused there too.
    let api = app
        .client
        .post(format!("{}/v1/traveller/uses", app.url))
        .json(&serde_json::json!({"code": wrong}))
        .send()
        .await
        .unwrap();
    crate::helpers::assert_problem(api, 429, "rate-limited").await;
    let sign_in = visitor
        .post_form(
            "/sign-in",
            &[("key", &app.agency.party.api_key), ("csrf", "x")],
        )
        .await;
    assert_eq!(sign_in.status(), 429, "sign-in too");
}

async fn withdrawing_from_the_page_needs_the_confirmation(app: TestApp) {
    let uploaded = app.upload_default().await;
    let code = uploaded["withdrawal_code"].as_str().unwrap();
    let mut traveller = Visitor::new(&app);
    let confirm = traveller.post_form("/t/withdraw", &[("code", code)]).await;
    assert_eq!(confirm.status(), 200);
    assert!(confirm.text().await.unwrap().contains("confirm-withdraw"));
    let unconfirmed = traveller
        .post_form("/t/withdraw", &[("code", code), ("confirm", "maybe")])
        .await;
    assert_eq!(unconfirmed.status(), 422);
    let consent = format!("/v1/consents/{}", uploaded["consent_id"].as_str().unwrap());
    let record = app.get_json(&consent, &app.agency.party.api_key).await;
    assert_eq!(record["state"], "given", "nothing withdrawn");

    let done = traveller
        .post_form("/t/withdraw", &[("code", code), ("confirm", "yes")])
        .await;
    assert_eq!(done.status(), 200);
    let record = app.get_json(&consent, &app.agency.party.api_key).await;
    assert_eq!(record["state"], "withdrawn");
    assert_eq!(record["withdrawn_by"], "traveller");
}

async fn an_agency_sees_the_open_disruptions_touching_its_clients_and_what_was_done(app: TestApp) {
    app.upload_default().await;
    let disruption = app.disruption().await;
    let mut own = Visitor::new(&app);
    own.sign_in(&app.agency.party.api_key).await;
    let page = own.get("/agency/disruptions").await.text().await.unwrap();
    assert!(
        page.contains(&disruption),
        "the disruption is listed: {page}"
    );
    assert!(page.contains("ABC123"), "with the client on its flight");
    assert!(page.contains("1 clients shown of 1"), "{page}");

    // A token granted for Marie is the client's last step.
    let granted = app
        .request_token(&app.airline.api_key, &app.token_request().await)
        .await;
    assert_eq!(granted.status(), 201);
    let page = own.get("/agency/disruptions").await.text().await.unwrap();
    assert!(
        page.contains("<td>token_request</td><td>granted</td>"),
        "{page}"
    );
    assert!(page.contains(&format!("/agency/receipts?event_reference={disruption}")));
    assert!(
        !page.contains(MOBILE) && !page.contains(EMAIL),
        "never a contact"
    );

    // Another agency has no client on the flight: nothing to see.
    let mut other = Visitor::new(&app);
    other.sign_in(&app.other_agency.party.api_key).await;
    let theirs = other.get("/agency/disruptions").await.text().await.unwrap();
    assert!(!theirs.contains(&disruption) && theirs.contains("id=\"no-disruption\""));

    // Once closed, it leaves the page.
    let closed = app
        .post(
            &format!("/v1/disruptions/{disruption}/closing"),
            &app.airline.api_key,
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(closed.status(), 200);
    let page = own.get("/agency/disruptions").await.text().await.unwrap();
    assert!(!page.contains(&disruption) && page.contains("id=\"no-disruption\""));
}

async fn an_agency_sees_only_its_own_records(app: TestApp) {
    let uploaded = app.upload_default().await;
    let consent_id = uploaded["consent_id"].as_str().unwrap();
    let mut other = Visitor::new(&app);
    other.sign_in(&app.other_agency.party.api_key).await;
    let page = other.get(&format!("/agency/records/{consent_id}")).await;
    assert_eq!(page.status(), 404);
    let list = other.get("/agency").await.text().await.unwrap();
    assert!(!list.contains(consent_id) && !list.contains("CRM-0001"));
    let receipts = other.get("/agency/receipts").await.text().await.unwrap();
    assert!(!receipts.contains(consent_id));

    let mut own = Visitor::new(&app);
    own.sign_in(&app.agency.party.api_key).await;
    let list = own
        .get("/agency?record_locator=abc123")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("CRM-0001"),
        "the agency finds its record by booking reference"
    );
    let bad = own.get("/agency?state=lost").await;
    assert_eq!(bad.status(), 422);
    assert!(
        bad.text().await.unwrap().contains("state"),
        "the bad filter is named"
    );
}

async fn every_report_table_downloads_as_csv(app: TestApp) {
    app.upload_default().await;
    let granted = app
        .request_token(&app.airline.api_key, &app.token_request().await)
        .await;
    let token: Value = granted.json().await.unwrap();
    app.redeem(&app.airline.api_key, token["token"].as_str().unwrap())
        .await;
    let mut officer = Visitor::new(&app);
    officer.sign_in(&app.officer.api_key).await;
    let period = "since=2026-11-01&until=2026-12-31";
    let page = officer.text(&format!("/console/reports?{period}")).await;
    assert_eq!(page.matches("<svg").count(), 4, "four charts");
    for table in [
        "coverage-by-agency",
        "coverage-by-airline",
        "coverage-by-flight",
        "releases",
        "releases-by-day",
        "refusals",
        "disruptions",
        "relay",
    ] {
        assert!(
            page.contains(&format!("/console/reports/{table}.csv?since=2026-11-01")),
            "{table} is linked"
        );
        let csv = officer
            .get(&format!("/console/reports/{table}.csv?{period}"))
            .await;
        assert_eq!(csv.status(), 200, "{table}");
        assert_eq!(csv.headers()[CONTENT_TYPE], "text/csv; charset=utf-8");
        assert!(csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment"));
    }
    let airlines = officer
        .get(&format!(
            "/console/reports/coverage-by-airline.csv?{period}"
        ))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        airlines.lines().next(),
        Some("party,travellers,with_contact,share,reached,unreachable")
    );
    assert!(
        airlines.lines().any(|l| l.starts_with("AF,1,1,")),
        "{airlines}"
    );
    let by_day = officer
        .get(&format!("/console/reports/releases-by-day.csv?{period}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(by_day.contains("2026-11-24,cancellation,1"), "{by_day}");
    assert_eq!(
        officer
            .get(&format!("/console/reports/secrets.csv?{period}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        officer
            .get("/console/reports?since=yesterday")
            .await
            .status(),
        422
    );
}

async fn an_upload_that_cannot_be_read_names_the_field_and_stores_nothing(app: TestApp) {
    let mut agency = Visitor::new(&app);
    agency.sign_in(&app.agency.party.api_key).await;
    let csrf = agency.csrf("/agency/upload").await;
    let unknown = agency
        .post_multipart(
            "/agency/upload",
            &[("csrf", "", &csrf), ("file", "consents.xlsx", "PK…")],
        )
        .await;
    assert_eq!(unknown.status(), 422);
    let html = unknown.text().await.unwrap();
    assert!(
        html.contains("<code>format</code>"),
        "the format field is named"
    );

    let empty = agency
        .post_multipart(
            "/agency/upload",
            &[("csrf", "", &csrf), ("file", "consents.csv", "")],
        )
        .await;
    assert_eq!(empty.status(), 422);

    // All or nothing: a bad row stores nothing, and each row's outcome is shown.
    let csv = format!(
        "{}\nX-1,ABC123,AF1234/2026-12-01,Dupont,Marie,+33611111111,,,given,cancellation,mobile,AF,n-1,fr,{},signed_form,2026-11-20T09:30:00Z,,FR,not-a-signature\n",
        passerelle::service::ingest::csv::CSV_HEADER.join(","),
        crate::helpers::NOTICE_SHA256
    );
    let atomic = agency
        .post_multipart(
            "/agency/upload",
            &[
                ("csrf", "", &csrf),
                ("atomic", "", "yes"),
                ("file", "consents.csv", &csv),
            ],
        )
        .await;
    assert_eq!(atomic.status(), 422);
    let html = atomic.text().await.unwrap();
    assert!(
        html.contains("id=\"results\"") && html.contains("signature"),
        "each row's outcome"
    );
    let listed = app
        .get_json("/v1/consents", &app.agency.party.api_key)
        .await;
    assert!(listed["records"].as_array().unwrap().is_empty());
}

async fn a_pnrs_contact_elements_upload_from_the_page(app: TestApp) {
    let mut import = serde_json::json!({
        "gds": "amadeus",
        "booking": {"record_locator": "AMA001", "segments": [{"carrier": "AF", "flight_number": "1234", "date": crate::helpers::FLIGHT_DATE}]},
        "jurisdiction": "FR",
        "consent": {"purposes": ["cancellation"], "recipients": "itinerary",
            "notice": {"version": "n-1", "language": "fr", "sha256": crate::helpers::NOTICE_SHA256},
            "collection_method": "recorded_call", "collected_at": "2026-11-20T09:30:00Z"},
        "passengers": [
            {"ref": "P1", "surname": "Dupont", "given_name": "Marie", "record_id": "AMA001-1"},
            {"ref": "P2", "surname": "Dupont", "given_name": "Paul", "record_id": "AMA001-2"}
        ],
        "elements": "SRCTCM-33612345678/FR/P1\nSRCTCE-MARIE.DUPONT//EXAMPLE.FR/P1\nSRCTCR-REFUSED/P2",
    });
    let mut agency = Visitor::new(&app);
    agency.sign_in(&app.agency.party.api_key).await;
    let csrf = agency.csrf("/agency/upload").await;

    // Unsigned, each passenger is reported as lacking a signature; the statements the
    // API hands back to sign (they hold the contact) are not shown on the page.
    let unsigned = upload_ssr(&mut agency, &csrf, &import).await;
    assert_eq!(unsigned.status(), 200);
    let html = unsigned.text().await.unwrap();
    assert!(html.contains("passengers[0].signature") && html.contains("passengers[1].signature"));
    assert!(!html.contains("33612345678") && !html.to_lowercase().contains("marie.dupont"));

    let statements: Value = app
        .post_json("/v1/consents/ssr", &app.agency.party.api_key, &import)
        .await;
    for i in 0..2 {
        let statement = &statements["results"][i]["statement"];
        import["passengers"][i]["signature"] =
            app.signed(&app.agency.jwk, statement)["signature"].clone();
    }
    let signed = upload_ssr(&mut agency, &csrf, &import).await;
    let html = signed.text().await.unwrap();
    assert!(
        html.contains(r#"<strong id="count-stored">2</strong>"#),
        "both passengers stored"
    );
    assert_eq!(
        html.matches("class=\"copy withdrawal-code\"").count(),
        1,
        "a withdrawal code for the one who consented"
    );
}

/// Sends an SSR import through the agency's upload page.
async fn upload_ssr(agency: &mut Visitor, csrf: &str, import: &Value) -> reqwest::Response {
    let text = import.to_string();
    let fields = [
        ("csrf", "", csrf),
        ("format", "", "ssr"),
        ("file", "pnr.json", &text),
    ];
    agency.post_multipart("/agency/upload", &fields).await
}

async fn pages_speak_french_when_asked(app: TestApp) {
    let client = reqwest::Client::new();
    let french = client
        .get(format!("{}/sign-in", app.url))
        .header("accept-language", "fr-FR,fr;q=0.9,en;q=0.8")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(french.contains("<html lang=\"fr\">") && french.contains("Connexion à Passerelle"));
    let mut visitor = Visitor::new(&app);
    let chosen = visitor.get("/sign-in?lang=fr").await;
    assert!(chosen.text().await.unwrap().contains("Se connecter"));
    assert_eq!(
        visitor.cookies.get("passerelle_lang").map(String::as_str),
        Some("fr")
    );
    let remembered = visitor.get("/sign-in").await.text().await.unwrap();
    assert!(
        remembered.contains("Se connecter"),
        "the choice is remembered"
    );
}

/// With the shipped settings, every cookie is Secure, and behind a TLS proxy (an
/// https public URL) every answer carries HSTS.
mod behind_tls {
    use super::*;
    use crate::on_both_engines_with_engine;

    on_both_engines_with_engine!(
        the_session_cookie_is_secure,
        cookies_are_secure_by_default_even_over_plain_http
    );

    async fn the_session_cookie_is_secure(engine: crate::helpers::Engine) {
        let settings = Settings {
            public_url: "https://passerelle.example".into(),
            secure_cookies: true,
            ..crate::helpers::test_settings()
        };
        let Some(app) = TestApp::with(engine, settings).await else {
            return;
        };
        let mut visitor = Visitor::new(&app);
        let signed_in = visitor.sign_in(&app.agency.party.api_key).await;
        let cookies: Vec<String> = signed_in
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        assert!(
            cookies.iter().all(|c| c.contains("; Secure")),
            "{cookies:?}"
        );
        let hsts = signed_in.headers()["strict-transport-security"]
            .to_str()
            .unwrap();
        assert!(hsts.starts_with("max-age="), "{hsts}");
        let api = app.get("/healthz", "").await;
        assert!(api.headers().contains_key("strict-transport-security"));
    }

    async fn cookies_are_secure_by_default_even_over_plain_http(engine: crate::helpers::Engine) {
        let settings = Settings {
            outbound: passerelle::outbound::Outbound::allow_insecure(),
            ..Settings::default()
        };
        assert!(settings.secure_cookies, "the shipped default");
        let Some(app) = TestApp::with(engine, settings).await else {
            return;
        };
        let mut visitor = Visitor::new(&app);
        let form = visitor.get("/sign-in").await;
        let cookie = form.headers()[SET_COOKIE].to_str().unwrap().to_string();
        assert!(cookie.contains("; Secure"), "{cookie}");
        let signed_in = visitor.sign_in(&app.agency.party.api_key).await;
        let session = signed_in
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("passerelle_session="))
            .unwrap();
        assert!(session.contains("; Secure"), "{session}");
    }
}
