//! What an operator runs: API keys rotated, revoked and expired, the broker's keys held
//! to the database they sealed, files private to their owner, and no secret on a
//! command line. Run against the real binary, on SQLite and PostgreSQL.

use crate::broker::Broker;
use crate::helpers::{database, Engine, TestApp, START};
use crate::{on_both_engines, on_both_engines_with_engine};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

on_both_engines_with_engine!(
    an_operator_rotates_and_revokes_api_keys_and_each_change_is_audited,
    the_broker_refuses_another_data_key_and_a_reused_broker_key_id,
);

mod through_the_store {
    use super::*;
    on_both_engines!(
        a_key_issued_with_an_expiry_stops_working_at_it,
        a_reloaded_keyring_that_changes_a_key_is_refused_and_reads_go_on,
    );
}

/// `passerelle --data-dir DIR [--database-url URL] …`.
fn passerelle(dir: &Path, url: Option<&str>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_passerelle"));
    command
        .arg("--data-dir")
        .arg(dir)
        .env_remove("DATABASE_URL")
        .env_remove("PASSERELLE_DATABASE_URL")
        .env("PASSERELLE_LOG", "warn");
    if let Some(url) = url {
        command.env("PASSERELLE_DATABASE_URL", url);
    }
    command
}

/// Runs a command that should end by itself (a broker that refuses to start), killing
/// it if it is still running after 30 s so that a broker that wrongly starts fails the
/// test instead of hanging it.
fn briefly(command: &mut Command) -> Output {
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = child.id();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(30));
        let _ = Command::new("kill").arg(id.to_string()).status();
    });
    drop(watchdog);
    child.wait_with_output().unwrap()
}

/// `passerelle keygen <flag> FILE [--kid KID]`: a data key or a broker key.
fn keygen(dir: &Path, flag: &str, file: &Path, kid: Option<&str>) {
    let mut command = passerelle(dir, None);
    command.args(["keygen", flag]).arg(file);
    if let Some(kid) = kid {
        command.args(["--kid", kid]);
    }
    ok(command.output().unwrap());
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn failed(output: Output) -> String {
    assert!(!output.status.success(), "it should have failed");
    String::from_utf8(output.stderr).unwrap()
}

/// A key printed on a line ending with it.
fn key_in(text: &str, prefix: &str) -> String {
    let at = text.find(prefix).expect("a key is printed");
    text[at..].split_whitespace().next().unwrap().to_string()
}

async fn status_with(client: &reqwest::Client, url: &str, key: &str) -> u16 {
    client
        .get(format!("{url}/v1/consents"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn an_operator_rotates_and_revokes_api_keys_and_each_change_is_audited(engine: Engine) {
    let Some(db) = database(engine).await else {
        return;
    };
    let broker = Broker::demo(
        env!("CARGO_BIN_EXE_passerelle"),
        db.dir.path(),
        &db.url,
        &[],
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let agency = broker.key("AGENCY_KEY");
    let airline = broker.key("AIRLINE_KEY");
    let officer = broker.key("OFFICER_KEY");
    let cli = || passerelle(db.dir.path(), Some(&db.url));

    // The agency has a page session open with its key.
    let session = crate::broker::page_session(&client, &broker.url, &agency).await;
    let page = |cookie: String| {
        let client = client.clone();
        let url = format!("{}/agency", broker.url);
        async move {
            client
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(page(session.clone()).await, 200);

    let listed = ok(cli().args(["party", "api-key", "list"]).output().unwrap());
    assert!(
        listed.contains("airline") && listed.contains("live"),
        "{listed}"
    );
    assert!(!listed.contains(&airline), "never a secret");

    // The airline's key leaked: rotate it, the old one stops at once.
    let rotated = ok(cli()
        .args(["party", "api-key", "rotate", "--party", "AF"])
        .output()
        .unwrap());
    let new_airline = key_in(&rotated, "pas_airline_");
    assert_eq!(status_with(&client, &broker.url, &airline).await, 401);
    assert_eq!(
        status_with(&client, &broker.url, &new_airline).await,
        403,
        "a live airline key, on an agency route"
    );

    // A rotation with a grace period leaves the old key working until it ends.
    let graced = ok(cli()
        .args([
            "party",
            "api-key",
            "rotate",
            "--party",
            "AF",
            "--grace-minutes",
            "30",
        ])
        .output()
        .unwrap());
    assert!(graced.contains("stop working at"), "{graced}");
    assert_eq!(status_with(&client, &broker.url, &new_airline).await, 403);
    let listed = ok(cli()
        .args(["party", "api-key", "list", "--party", "AF"])
        .output()
        .unwrap());
    assert_eq!(
        listed.lines().filter(|l| l.contains(" live")).count(),
        2,
        "{listed}"
    );

    // Revoking the agency's keys refuses its next request and ends its session.
    let revoked = ok(cli()
        .args(["party", "api-key", "revoke", "--party", "12345675"])
        .output()
        .unwrap());
    assert!(revoked.contains("revoked 1"), "{revoked}");
    assert_eq!(status_with(&client, &broker.url, &agency).await, 401);
    assert_eq!(page(session).await, 303, "the page session ended");
    let again = failed(
        cli()
            .args(["party", "api-key", "revoke", "--party", "12345675"])
            .output()
            .unwrap(),
    );
    assert!(again.contains("nothing was revoked"), "{again}");
    let unknown = failed(
        cli()
            .args(["party", "api-key", "rotate", "--party", "ZZ"])
            .output()
            .unwrap(),
    );
    assert!(unknown.contains("no party"), "{unknown}");

    let entries: Value = client
        .get(format!(
            "{}/v1/audit/entries?action=api_key_change",
            broker.url
        ))
        .bearer_auth(&officer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reasons: Vec<&str> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["api_key_rotated", "api_key_rotated", "api_key_revoked"]
    );
    assert_eq!(entries["entries"][0]["actor_kind"], "operator");
    broker.kill();
}

async fn a_key_issued_with_an_expiry_stops_working_at_it(app: TestApp) {
    let party = passerelle::service::parties::find_party(&app.store, "AF")
        .await
        .unwrap();
    passerelle::service::parties::expire_api_keys(
        &app.store,
        &party,
        START + time::Duration::hours(1),
    )
    .await
    .unwrap();
    let status = || async {
        app.get(
            "/v1/messages/msg_00000000000000000000000000000000",
            &app.airline.api_key,
        )
        .await
        .status()
        .as_u16()
    };
    assert_eq!(status().await, 404, "live until its expiry");
    app.clock.advance(time::Duration::hours(2));
    assert_eq!(status().await, 401, "expired");
}

async fn a_reloaded_keyring_that_changes_a_key_is_refused_and_reads_go_on(app: TestApp) {
    let uploaded = app.upload_default().await;
    let path = format!("/v1/consents/{}", uploaded["consent_id"].as_str().unwrap());
    // The keyring file is replaced by another key (a wrong file copied in place).
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(
        &app.keyring_path,
        passerelle::crypto::seal::DataKey::generate_base64(),
    )
    .unwrap();
    let read = app.get(&path, &app.agency.party.api_key).await;
    assert_eq!(read.status(), 200, "the keys in use are kept");
    let record: Value = read.json().await.unwrap();
    assert_eq!(
        record["statement"]["traveller"]["mobile"],
        crate::helpers::MOBILE
    );
    let view = app
        .post(
            "/v1/traveller/uses",
            "",
            &serde_json::json!({"code": uploaded["withdrawal_code"]}),
        )
        .await;
    assert_eq!(view.status(), 200);
}

async fn the_broker_refuses_another_data_key_and_a_reused_broker_key_id(engine: Engine) {
    let Some(db) = database(engine).await else {
        return;
    };
    let dir = db.dir.path();
    let broker = Broker::demo(env!("CARGO_BIN_EXE_passerelle"), dir, &db.url, &[]);
    let jwks_before: Value = reqwest::get(format!("{}/.well-known/jwks.json", broker.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first_kid = jwks_before["keys"][0]["kid"].as_str().unwrap().to_string();
    broker.kill();
    let serve = |extra: &[&str]| {
        briefly(
            passerelle(dir, Some(&db.url))
                .args(["serve", "--listen", "127.0.0.1:0", "--demo"])
                .args(extra),
        )
    };

    // Another data key in the file: the broker does not start.
    let key_file = dir.join("data.key");
    let kept = std::fs::read(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    keygen(dir, "--data-key", &key_file, None);
    let said = failed(serve(&[]));
    assert!(
        said.contains("is not the one this database was sealed under"),
        "{said}"
    );
    std::fs::remove_file(&key_file).unwrap();
    std::fs::write(&key_file, &kept).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Another broker key under the same id: refused, since it would stop old receipts
    // from verifying under that id.
    let broker_key = dir.join("broker.jwk");
    std::fs::remove_file(&broker_key).unwrap();
    keygen(dir, "--broker-key", &broker_key, Some(&first_kid));
    let said = failed(serve(&[]));
    assert!(
        said.contains("not the key this database knows under that id"),
        "{said}"
    );

    // A new key under a new id: the JWKS then holds both, the new one first.
    std::fs::remove_file(&broker_key).unwrap();
    keygen(dir, "--broker-key", &broker_key, Some("broker-next"));
    let broker = Broker::demo(env!("CARGO_BIN_EXE_passerelle"), dir, &db.url, &[]);
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", broker.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, ["broker-next", first_kid.as_str()]);
    broker.kill();
}

#[test]
fn without_the_demo_a_missing_broker_key_stops_the_broker_and_none_is_made() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), "--data-key", &dir.path().join("data.key"), None);
    let said = failed(briefly(passerelle(dir.path(), None).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
    ])));
    assert!(said.contains("no broker key at"), "{said}");
    assert!(said.contains("keygen --broker-key"), "{said}");
    assert!(!dir.path().join("broker.jwk").exists(), "none was made");
}

#[test]
fn key_files_others_can_read_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data_key = dir.path().join("data.key");
    let broker_key = dir.path().join("broker.jwk");
    keygen(dir.path(), "--data-key", &data_key, None);
    keygen(dir.path(), "--broker-key", &broker_key, None);
    for file in [&data_key, &broker_key] {
        assert_eq!(
            std::fs::metadata(file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    std::fs::set_permissions(&data_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let said = failed(briefly(passerelle(dir.path(), None).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
    ])));
    assert!(
        said.contains("chmod 600") && said.contains("data.key"),
        "{said}"
    );
    std::fs::set_permissions(&data_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&broker_key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let said = failed(briefly(passerelle(dir.path(), None).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
    ])));
    assert!(
        said.contains("chmod 600") && said.contains("broker.jwk"),
        "{said}"
    );
}

#[test]
fn a_fresh_data_directory_and_its_database_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let broker = Broker::demo(
        env!("CARGO_BIN_EXE_passerelle"),
        &dir,
        &format!("sqlite://{}?mode=rwc", dir.join("passerelle.db").display()),
        &[],
    );
    let client = reqwest::blocking::Client::new();
    let written = client
        .put(format!("{}/v1/agency/delivery", broker.url))
        .bearer_auth(broker.key("AGENCY_KEY"))
        .json(&serde_json::json!({"delivery": "relay"}))
        .send()
        .unwrap();
    assert_eq!(written.status(), 200);
    assert_eq!(mode(&dir), 0o700, "the data directory");
    assert_eq!(
        mode(&dir.join("passerelle-demo")),
        0o700,
        "the demo's files"
    );
    for file in [
        "passerelle.db",
        "passerelle.db-wal",
        "data.key",
        "broker.jwk",
    ] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    broker.kill();
    // An older database left readable by others is restricted when the broker opens it.
    let db = dir.join("passerelle.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    ok(passerelle(&dir, None).arg("migrate").output().unwrap());
    assert_eq!(mode(&db), 0o600);
}

#[test]
fn a_password_on_the_command_line_is_refused_and_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec![
            "--database-url",
            "postgres://passerelle:s3cret-pw@db.example/passerelle",
            "migrate",
        ],
        vec![
            "--database-url=postgres://db.example/passerelle?password=s3cret-pw",
            "migrate",
        ],
        vec![
            "serve",
            "--smtp-url",
            "smtp://relay:s3cret-pw@mail.example:587",
        ],
    ] {
        let output = briefly(passerelle(dir.path(), None).args(&args));
        let said = failed(output.clone());
        assert!(said.contains("holds a password"), "{said}");
        assert!(
            said.contains("PASSERELLE_"),
            "it names the variable to use: {said}"
        );
        assert!(!said.contains("s3cret-pw"), "{said}");
        assert!(!String::from_utf8_lossy(&output.stdout).contains("s3cret-pw"));
    }
    // From a file, readable by its owner only, the URL is taken.
    let url_file = dir.path().join("database.url");
    let sqlite = format!("sqlite://{}", dir.path().join("from-file.db").display());
    std::fs::write(&url_file, &sqlite).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    ok(passerelle(dir.path(), None)
        .arg("--database-url-file")
        .arg(&url_file)
        .arg("migrate")
        .output()
        .unwrap());
    assert!(dir.path().join("from-file.db").exists());
}

#[test]
fn a_checkpoint_url_that_points_inside_stops_the_broker_unless_outbound_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), "--data-key", &dir.path().join("data.key"), None);
    keygen(
        dir.path(),
        "--broker-key",
        &dir.path().join("broker.jwk"),
        None,
    );
    for (url, why) in [
        ("http://witness.example/cp", "must be https"),
        ("https://169.254.169.254/cp", "not on the public internet"),
        (
            "https://user:pw@witness.example/cp",
            "must not carry credentials",
        ),
    ] {
        let said = failed(briefly(
            passerelle(dir.path(), None)
                .args(["serve", "--listen", "127.0.0.1:0"])
                .env("PASSERELLE_CHECKPOINT_URL", url),
        ));
        assert!(
            said.contains("--checkpoint-url") && said.contains(why),
            "{url}: {said}"
        );
    }
    let said = failed(briefly(
        passerelle(dir.path(), None)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("PASSERELLE_SMS_GATEWAY_URL", "https://10.1.2.3/sms"),
    ));
    assert!(said.contains("--sms-gateway-url"), "{said}");
}

#[tokio::test]
async fn a_checkpoint_push_is_never_redirected_and_is_logged_without_the_urls_secrets() {
    let witness = crate::fakes::FakeHttp::start().await;
    let elsewhere = crate::fakes::FakeHttp::start().await;
    witness.redirect_to(&elsewhere.url);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/hooks/s3cret-path?key=s3cret-query", witness.url);
    let mut child = passerelle(dir.path(), None)
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .args(["--checkpoint-interval-seconds", "1"])
        .env("PASSERELLE_CHECKPOINT_URL", &url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while witness.received().is_empty() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no push"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("could not push the checkpoint"), "{log}");
    assert!(log.contains("http 307"), "{log}");
    assert!(!log.contains("s3cret-query"), "{log}");
    assert!(!log.contains("s3cret-path"), "{log}");
    assert!(
        elsewhere.received().is_empty(),
        "the redirect was not followed"
    );
}
