//! The three flows of the pages, driven in Debian's Chromium (headless, through
//! chromedriver and WebDriver): an officer signs in, filters the audit trail, opens a
//! proof and runs a verification; an agency uploads a CSV and sees each record's
//! outcome; a traveller opens their page with the code from their receipt and
//! withdraws, after which the airline's token request is refused.
//!
//! Each page is saved as a PNG under `target/tmp/e2e-screenshots/`. Without
//! `/usr/bin/chromium` and `/usr/bin/chromedriver` these tests say why and pass,
//! except under `CI=true`, where `.ci/run` installs both and a missing browser fails.

use crate::helpers::{assert_problem, skip_unless_ci, TestApp, FLIGHT_DATE, NOTICE_SHA256};
use crate::on_both_engines;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

on_both_engines!(
    an_officer_signs_in_filters_the_trail_opens_a_proof_and_verifies_the_log,
    an_agency_uploads_a_csv_and_sees_each_records_outcome,
    a_traveller_withdraws_from_their_page_and_the_airline_is_refused,
    a_contact_is_confirmed_from_the_agencys_page_and_from_the_emailed_link,
);

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium session, and the chromedriver serving it (killed on drop).
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
    prefix: String,
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.driver.kill().ok();
        self.driver.wait().ok();
    }
}

impl Browser {
    /// Starts chromedriver and a browser, or `None` when they are not installed
    /// (outside CI).
    async fn start(app: &TestApp, flow: &str) -> Option<Browser> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            skip_unless_ci(&format!(
                "{CHROMIUM} or {CHROMEDRIVER} is missing (Debian's chromium and chromium-driver; .ci/run installs them)"
            ));
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--lang=en-GB",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(err) if started.elapsed() < Duration::from_secs(20) => {
                    let _ = err;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(err) => panic!("chromedriver did not start a browser: {err}"),
            }
        };
        let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        let engine = if app.sqlite_path.is_some() {
            "sqlite"
        } else {
            "postgres"
        };
        Some(Browser {
            client,
            driver,
            _profile: profile,
            shots,
            prefix: format!("{engine}-{flow}"),
        })
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("the page opens");
    }

    async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("no {css} on the page: {err}"))
    }

    async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.unwrap()
    }

    /// Clicks a link or a submit button and waits for the next page: every click in
    /// these pages navigates (they run no script), and reading before the new document
    /// replaced the old one would find the old page's element of the same id.
    async fn click(&self, css: &str) {
        let before = self
            .client
            .find(Locator::Css("html"))
            .await
            .expect("a page is open");
        self.wait_for(css).await.click().await.unwrap();
        let started = Instant::now();
        // The old document's root goes stale once the new one replaced it.
        while before.tag_name().await.is_ok() {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "clicking {css} opened no new page"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn type_into(&self, css: &str, text: &str) {
        self.wait_for(css).await.send_keys(text).await.unwrap();
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    /// Saves what the browser shows as `<engine>-<flow>-<name>.png`.
    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(self.shots.join(format!("{}-{name}.png", self.prefix)), png).unwrap();
    }

    async fn sign_in(&self, app: &TestApp, key: &str) {
        self.goto(&format!("{}/sign-in", app.url)).await;
        self.type_into("#key", key).await;
        self.click("#sign-in").await;
    }

    async fn close(mut self) {
        let client = self.client.clone();
        client.close().await.ok();
        self.driver.kill().ok();
    }
}

/// Some history in the log: a consent uploaded, a token granted and redeemed by AF,
/// and KLM refused (it does not fly the booking's AF flight under this consent).
async fn some_history(app: &TestApp) -> Value {
    let uploaded = app.upload_default().await;
    let granted = app
        .request_token(&app.airline.api_key, &app.token_request().await)
        .await;
    assert_eq!(granted.status(), 201);
    let token = granted.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.redeem(&app.airline.api_key, &token).await.status(), 200);
    let refused = app
        .request_token(&app.other_airline.api_key, &app.token_request().await)
        .await;
    assert!(refused.status().is_client_error());
    uploaded
}

async fn an_officer_signs_in_filters_the_trail_opens_a_proof_and_verifies_the_log(app: TestApp) {
    some_history(&app).await;
    let Some(browser) = Browser::start(&app, "officer").await else {
        return;
    };

    browser.sign_in(&app, &app.officer.api_key).await;
    browser.wait_for("#entries").await;
    assert_eq!(browser.path().await, "/console");
    browser.screenshot("1-audit-trail").await;

    // Filter: only contacts revealed.
    browser
        .wait_for("#action")
        .await
        .select_by_value("token_redemption")
        .await
        .unwrap();
    browser.click("#filter").await;
    browser.wait_for("#entries").await;
    assert!(
        browser.text("#summary").await.contains(": 1 "),
        "one entry matches"
    );
    let rows = browser
        .client
        .find_all(Locator::Css("#entries tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].text().await.unwrap().contains("token_redemption"));
    browser.screenshot("2-filtered").await;

    // Open the entry: no checkpoint covers it yet, and reading signs none; the
    // officer signs one from the page, which then shows the proof.
    browser.click("#entries tbody tr a").await;
    assert!(browser
        .text("#proof-missing")
        .await
        .contains("No signed checkpoint"));
    browser.click("#sign-checkpoint").await;
    browser.client.set_window_size(1280, 1400).await.unwrap();
    let verdict = browser.text("#proof-result").await;
    assert!(verdict.starts_with('✓'), "the proof holds: {verdict}");
    assert!(browser.text("#entry").await.contains("token_redemption"));
    browser.screenshot("3-entry-and-proof").await;

    // Run a verification and wait for its result (the page refreshes itself).
    browser
        .goto(&format!("{}/console/integrity", app.url))
        .await;
    browser.click("#verify").await;
    let started = Instant::now();
    let result = loop {
        // The page refreshes itself: an element found just before a refresh is gone
        // when read, and is looked for again.
        if let Ok(found) = browser
            .client
            .find(Locator::Css("#verification-result"))
            .await
        {
            if let Ok(text) = found.text().await {
                break text;
            }
        }
        // A liveness bound, not a timing: the whole suite shares two cores with it.
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the verification ends"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(result.contains("Intact"), "the log verifies: {result}");
    assert!(browser.text("#tree-size").await.parse::<u64>().unwrap() >= 4);
    browser.screenshot("4-integrity").await;

    browser
        .goto(&format!(
            "{}/console/reports?since=2026-11-01&until=2026-12-31",
            app.url
        ))
        .await;
    browser.wait_for("svg").await;
    browser.client.set_window_size(1280, 2600).await.unwrap();
    browser.screenshot("5-reports").await;
    browser
        .goto(&format!("{}/console/policies?lang=fr", app.url))
        .await;
    assert!(browser.text("h1").await.contains("Règles en vigueur"));
    browser.screenshot("6-policies-fr").await;

    let page = browser.client.source().await.unwrap();
    assert!(!page.contains(crate::helpers::MOBILE) && !page.contains(crate::helpers::EMAIL));
    browser.close().await;
}

/// A CSV of three records for the test agency: two signed, one whose mobile number
/// is a landline (rejected).
fn upload_csv(app: &TestApp) -> String {
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(passerelle::service::ingest::csv::CSV_HEADER)
        .unwrap();
    for (record_id, surname, mobile) in [
        ("WEB-1", "Leroy", "+33611111111"),
        ("WEB-2", "Moreau", "+33622222222"),
        ("WEB-3", "Fournier", "+33142685300"),
    ] {
        let statement = json!({
            "schema_version": "passerelle.consent.v1", "record_id": record_id, "agency": crate::helpers::AGENCY_IATA,
            "jurisdiction": "FR",
            "booking": {"record_locator": "WEB123", "segments": [{"carrier": "AF", "flight_number": "1234", "date": FLIGHT_DATE}]},
            "traveller": {"surname": surname, "given_name": "Marie", "mobile": mobile},
            "decision": "given",
            "consent": {"purposes": ["cancellation", "delay"], "data_categories": ["mobile"], "recipients": ["AF"],
                "notice": {"version": "n-1", "language": "fr", "sha256": NOTICE_SHA256},
                "collection_method": "signed_form", "collected_at": "2026-11-20T09:30:00Z"}
        });
        let signature = app.signed(&app.agency.jwk, &statement)["signature"]
            .as_str()
            .unwrap()
            .to_string();
        csv.write_record(passerelle::service::ingest::csv::csv_record(
            &statement, &signature,
        ))
        .unwrap();
    }
    String::from_utf8(csv.into_inner().unwrap()).unwrap()
}

async fn an_agency_uploads_a_csv_and_sees_each_records_outcome(app: TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("consents.csv");
    std::fs::write(&file, upload_csv(&app)).unwrap();
    let Some(browser) = Browser::start(&app, "agency").await else {
        return;
    };

    browser.sign_in(&app, &app.agency.party.api_key).await;
    browser.wait_for("#records").await;
    assert_eq!(browser.path().await, "/agency");

    browser.click("a[href='/agency/upload']").await;
    browser
        .type_into("#file", &file.display().to_string())
        .await;
    browser.click("#upload").await;
    browser.wait_for("#outcome").await;
    assert_eq!(browser.text("#count-stored").await, "2");
    assert_eq!(browser.text("#count-rejected").await, "1");
    let rows = browser
        .client
        .find_all(Locator::Css("#results tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    let third = rows[2].text().await.unwrap();
    assert!(
        third.contains("rejected") && third.contains("mobile"),
        "the landline is refused, naming the field: {third}"
    );
    let codes = browser
        .client
        .find_all(Locator::Css("input.withdrawal-code"))
        .await
        .unwrap();
    assert_eq!(
        codes.len(),
        2,
        "each stored record has its traveller's withdrawal code"
    );
    for code in codes {
        let value = code.prop("value").await.unwrap().unwrap_or_default();
        assert!(value.starts_with("pas_wd_"), "{value}");
    }
    let page_link = browser.text("a.traveller-link").await;
    assert!(
        page_link.ends_with("/t"),
        "the page where they type it: {page_link}"
    );
    browser.client.set_window_size(1280, 1200).await.unwrap();
    browser.screenshot("1-upload-outcome").await;
    let page = browser.client.source().await.unwrap();
    assert!(
        !page.contains("+33611111111"),
        "no contact value on the agency's pages"
    );

    browser.click("a[href='/agency']").await;
    let records = browser
        .client
        .find_all(Locator::Css("#records tbody tr"))
        .await
        .unwrap();
    assert_eq!(records.len(), 2);
    browser.screenshot("2-records").await;

    // The records are stored: the API agrees.
    let listed = app
        .get_json("/v1/consents", &app.agency.party.api_key)
        .await;
    assert_eq!(listed["records"].as_array().unwrap().len(), 2);

    // AF is told of a cancellation and gets Mrs Leroy's contact: the agency sees it.
    let mut request = app.token_request().await;
    request["record_locator"] = json!("WEB123");
    request["traveller"]["surname"] = json!("LEROY");
    let granted = app.request_token(&app.airline.api_key, &request).await;
    assert_eq!(granted.status(), 201);
    let token: Value = granted.json().await.unwrap();
    let released = app
        .redeem(&app.airline.api_key, token["token"].as_str().unwrap())
        .await;
    assert_eq!(released.status(), 200);
    browser.goto(&format!("{}/agency/receipts", app.url)).await;
    let uses = browser.text("#receipts tbody").await;
    assert!(
        uses.contains("token_request") && uses.contains("token_redemption"),
        "{uses}"
    );
    assert!(uses.contains("Air France (AF)"));
    browser.screenshot("3-receipts").await;

    // The disruption is open: the agency follows it from the menu, with its client
    // and the last step under it, then every use under it.
    browser.click("a[href='/agency/disruptions']").await;
    let disruption = app.disruption().await;
    let section = browser.text(&format!("section[id='{disruption}']")).await;
    assert!(
        section.contains("WEB123") && section.contains("token_redemption"),
        "{section}"
    );
    browser.screenshot("4-open-disruptions").await;
    browser
        .click(&format!(
            "a[href='/agency/receipts?event_reference={disruption}']"
        ))
        .await;
    let under = browser.text("#receipts tbody").await;
    assert!(under.contains("token_redemption"), "{under}");
    // Above them, how long its clients waited to be told: one contact revealed.
    let waited = browser.text("#time-to-tell").await;
    assert!(waited.contains("(1)"), "{waited}");
    browser.screenshot("5-time-to-tell").await;
    // Every contact tried so far reached its traveller: nothing to fix before the trip.
    browser.click("a[href='/agency/contacts']").await;
    let none = browser.text("#no-contact-to-fix").await;
    assert!(none.contains("No contact to fix"), "{none}");
    browser.screenshot("6-contacts-to-fix").await;
    browser.close().await;
}

async fn a_traveller_withdraws_from_their_page_and_the_airline_is_refused(app: TestApp) {
    let uploaded = some_history(&app).await;
    // The receipt gives the page (`<public URL>/t`, a placeholder for the test broker,
    // so the page is opened on the test server) and the code, which is typed, never
    // put in a URL.
    assert!(uploaded["traveller_page"].as_str().unwrap().ends_with("/t"));
    let code = uploaded["withdrawal_code"].as_str().unwrap().to_string();
    let Some(browser) = Browser::start(&app, "traveller").await else {
        return;
    };

    browser.client.set_window_size(412, 915).await.unwrap();
    browser.goto(&format!("{}/t", app.url)).await;
    browser.type_into("#code", &code).await;
    browser.screenshot("0-open").await;
    browser.click("#open").await;
    let contact = browser.text("#contact").await;
    assert!(
        contact.contains("+33 6•• •• •• 78"),
        "the mobile, masked: {contact}"
    );
    assert_eq!(browser.path().await, "/t", "the code is in no URL");
    let page = browser.client.source().await.unwrap();
    assert!(!page.contains(crate::helpers::MOBILE) && !page.contains("marie.dupont"));
    let uses = browser.text("#uses").await;
    assert!(
        uses.contains("Air France") && uses.contains("received your contact"),
        "{uses}"
    );
    browser.screenshot("1-page-on-a-phone").await;

    browser.click("#withdraw").await;
    browser.wait_for("#confirm-withdraw").await;
    browser.screenshot("2-confirm").await;
    browser.click("#confirm-withdraw").await;
    browser.wait_for("#withdrawn").await;
    browser.screenshot("3-withdrawn").await;
    assert!(!browser.path().await.contains("pas_wd_"));

    browser.click("#back").await;
    assert!(browser.text("#consent-state").await.contains("withdrawn"));
    assert!(
        browser
            .client
            .find(Locator::Css("#withdraw"))
            .await
            .is_err(),
        "nothing left to withdraw"
    );
    browser.close().await;

    assert_problem(
        app.request_token(&app.airline.api_key, &app.token_request().await)
            .await,
        403,
        "consent-inactive",
    )
    .await;
}

async fn a_contact_is_confirmed_from_the_agencys_page_and_from_the_emailed_link(app: TestApp) {
    // The same engine, with a relay that sends the SMS and the email.
    let engine = match app.sqlite_path {
        Some(_) => crate::helpers::Engine::Sqlite,
        None => crate::helpers::Engine::Postgres,
    };
    drop(app);
    let policies = passerelle::policy::engine::Policies::built_in().unwrap();
    let Some(r) = crate::relay::with_relay(engine, policies).await else {
        return;
    };
    let uploaded = r.app.upload_default().await;
    let consent = uploaded["consent_id"].as_str().unwrap().to_string();
    let Some(browser) = Browser::start(&r.app, "verify").await else {
        return;
    };

    // The agency asks from the record's page; Marie reads the SMS's code to the agent.
    browser.sign_in(&r.app, &r.app.agency.party.api_key).await;
    browser
        .goto(&format!("{}/agency/records/{consent}", r.app.url))
        .await;
    browser.click("#verify-sms").await;
    let on_its_way = browser.text("#verification-state").await;
    assert!(on_its_way.contains("sms"), "{on_its_way}");
    r.deliver().await;
    let code = r.last_code();
    browser.type_into("#code", &code).await;
    browser.screenshot("0-agency-types-the-code").await;
    browser.click("#confirm-code").await;
    let confirmed = browser.text("#verification-confirmed").await;
    assert!(confirmed.contains("reaches the traveller"), "{confirmed}");
    browser.screenshot("1-agency-contact-confirmed").await;

    // The email's link opens a page in Marie's language, with one button.
    browser.click("#verify-email").await;
    let id = browser.text("#verification-state").await;
    assert!(id.contains("email"), "{id}");
    r.deliver().await;
    let id = r
        .app
        .audit_entries()
        .await
        .iter()
        .rev()
        .find(|e| e["action"] == "contact_verification" && e["channel"] == "email")
        .and_then(|e| e["message_id"].as_str().map(str::to_string))
        .unwrap();
    let (path, _) = r.emailed_link(&id);
    browser.client.set_window_size(412, 915).await.unwrap();
    browser.goto(&format!("{}/verify{path}", r.app.url)).await;
    browser.wait_for("#confirm-contact").await;
    let title = browser.text("h1").await;
    assert!(title.contains("Confirmez"), "in Marie's language: {title}");
    browser.screenshot("2-confirm-address").await;
    // In English, the page still confirms.
    browser.click("a[hreflang='en']").await;
    let title = browser.text("h1").await;
    assert!(title.contains("Confirm your email"), "{title}");
    browser.click("#confirm-contact").await;
    browser.wait_for("#contact-confirmed").await;
    browser.screenshot("3-address-confirmed").await;
    assert_eq!(browser.path().await, "/verify", "the answer is posted");
    browser.close().await;
    let verification = r
        .app
        .get_json(
            &format!("/v1/contact-verifications/{id}"),
            &r.app.agency.party.api_key,
        )
        .await;
    assert_eq!(verification["state"], "confirmed");
}
