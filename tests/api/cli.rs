//! The command line as an operator and an agency use it, and the demo walkthrough the
//! README prints, run end to end against the real binary.

use passerelle::crypto::{canonical, jws};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

fn passerelle(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_passerelle"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .env_remove("PASSERELLE_DATABASE_URL");
    command
}

fn run_ok(command: &mut Command) -> String {
    let output = command.output().expect("passerelle runs");
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn sign(data_dir: &Path, key: &Path, statement: &[u8]) -> Value {
    let mut child = passerelle(data_dir)
        .args(["sign", "--key"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(statement).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn keygen_and_party_add_provision_an_agency_whose_key_is_shown_once() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("agency");
    run_ok(
        passerelle(dir.path())
            .args(["keygen", "--kid", "k7", "--out"])
            .arg(&prefix),
    );
    let private = dir.path().join("agency.jwk");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&private).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let public: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("agency.pub.jwk")).unwrap())
            .unwrap();
    assert_eq!(public["kid"], "k7");
    assert!(
        public.get("d").is_none(),
        "the public file holds no private part"
    );

    let add = |iata: &str| {
        passerelle(dir.path())
            .args([
                "party",
                "add",
                "agency",
                "--iata",
                iata,
                "--name",
                "Voyages Dupuis",
                "--public-key",
            ])
            .arg(dir.path().join("agency.pub.jwk"))
            .output()
            .unwrap()
    };
    let first = add("12345675");
    assert!(first.status.success());
    let stdout = String::from_utf8(first.stdout).unwrap();
    assert!(stdout.contains("API key (shown once"), "{stdout}");
    assert!(stdout.contains("pas_agency_"));
    let again = add("12345675");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    let bad = add("12345670");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("check digit"));
    assert!(
        dir.path().join("passerelle.db").exists(),
        "the SQLite file is created in the data directory"
    );
}

#[test]
fn party_key_adds_and_revokes_an_agencys_signing_keys() {
    let dir = tempfile::tempdir().unwrap();
    for (prefix, kid) in [("k1", "k1"), ("k2", "k2")] {
        run_ok(
            passerelle(dir.path())
                .args(["keygen", "--kid", kid, "--out"])
                .arg(dir.path().join(prefix)),
        );
    }
    run_ok(
        passerelle(dir.path())
            .args([
                "party",
                "add",
                "agency",
                "--iata",
                "12345675",
                "--name",
                "Voyages Dupuis",
                "--public-key",
            ])
            .arg(dir.path().join("k1.pub.jwk")),
    );
    let added = run_ok(
        passerelle(dir.path())
            .args([
                "party",
                "key",
                "add",
                "--agency",
                "12345675",
                "--public-key",
            ])
            .arg(dir.path().join("k2.pub.jwk")),
    );
    assert!(added.contains("registered key `k2`"), "{added}");
    let revoked = run_ok(passerelle(dir.path()).args([
        "party", "key", "revoke", "--agency", "12345675", "--kid", "k1",
    ]));
    assert!(revoked.contains("still verify"), "{revoked}");
    let again = passerelle(dir.path())
        .args([
            "party", "key", "revoke", "--agency", "12345675", "--kid", "k1",
        ])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no live key"));
}

#[test]
fn sign_prints_a_body_whose_signature_verifies_over_the_canonical_statement() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(
        passerelle(dir.path())
            .args(["keygen", "--out"])
            .arg(dir.path().join("a")),
    );
    let body = sign(
        dir.path(),
        &dir.path().join("a.jwk"),
        r#"{"b": 1, "a": {"y": "é", "x": [true]}}"#.as_bytes(),
    );
    let public = passerelle::cli::read_jwk(&dir.path().join("a.pub.jwk"))
        .unwrap()
        .public_key_bytes()
        .unwrap();
    let signature = jws::parse(body["signature"].as_str().unwrap()).unwrap();
    assert_eq!(signature.kid, "k1");
    signature
        .verify(&public, &canonical::to_vec(&body["statement"]))
        .expect("signature verifies");
}

#[test]
fn the_demo_walkthrough_works_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let (gateway, texts) = one_shot_gateway();
    let mut server = passerelle(dir.path())
        .args([
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--sms-gateway-url",
            &gateway,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("the demo prints its address").unwrap();
        if let Some(url) = line.strip_prefix("Passerelle demo is ready at ") {
            break url.trim().to_string();
        }
    };
    let demo = dir.path().join("passerelle-demo");
    let env = std::fs::read_to_string(demo.join("demo.env")).unwrap();
    let key = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .unwrap()
            .to_string()
    };

    let client = Blocking {
        url,
        client: reqwest::blocking::Client::new(),
    };
    let signed = sign(
        dir.path(),
        &demo.join("agency.jwk"),
        &std::fs::read(demo.join("consent.json")).unwrap(),
    );
    let (status, recorded) = client.post("/v1/consents", &key("AGENCY_KEY"), &signed);
    assert_eq!(status, 201);
    // 1b: the receipt verifies offline against the published key set, and a changed
    // receipt does not.
    let jwks: Value = client
        .client
        .get(format!("{}/.well-known/jwks.json", client.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    std::fs::write(demo.join("jwks.json"), jwks.to_string()).unwrap();
    std::fs::write(demo.join("recorded.json"), recorded.to_string()).unwrap();
    let verify = |file: &str| {
        passerelle(dir.path())
            .args(["receipt", "verify", "--receipt"])
            .arg(demo.join(file))
            .arg("--keys")
            .arg(demo.join("jwks.json"))
            .output()
            .unwrap()
    };
    let verified = verify("recorded.json");
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(String::from_utf8_lossy(&verified.stdout).contains("verifies"));
    let mut forged = recorded.clone();
    forged["receipt"]["receipt"]["jurisdiction"] = "US".into();
    std::fs::write(demo.join("forged.json"), forged.to_string()).unwrap();
    assert!(!verify("forged.json").status.success());
    let disruption: Value =
        serde_json::from_slice(&std::fs::read(demo.join("disruption.json")).unwrap()).unwrap();
    let (status, declared) = client.post("/v1/disruptions", &key("AIRLINE_KEY"), &disruption);
    assert_eq!(status, 201, "{declared}");
    let mut request: Value =
        serde_json::from_slice(&std::fs::read(demo.join("token-request.json")).unwrap()).unwrap();
    assert_eq!(
        request["disruption_id"], "DISRUPTION_ID",
        "the walkthrough fills it in"
    );
    request["disruption_id"] = declared["id"].clone();
    let (status, grant) = client.post("/v1/release-tokens", &key("AIRLINE_KEY"), &request);
    assert_eq!(status, 201, "{grant}");
    let (status, release) = client.post(
        "/v1/releases",
        &key("AIRLINE_KEY"),
        &serde_json::json!({"token": grant["token"]}),
    );
    assert_eq!(status, 200);
    assert_eq!(release["contact"]["mobile"], "+33612345678");
    let (status, trail) = client.get("/v1/audit/entries", &key("OFFICER_KEY"));
    assert_eq!(status, 200);
    assert_eq!(trail["tree_size"], 4, "upload, declaration, grant, release");
    // 5: relay-only for a cancelled flight: the broker's worker hands the text to the
    // SMS gateway; the airline sees no contact.
    let (status, _) = client.put(
        "/v1/agency/delivery",
        &key("AGENCY_KEY"),
        &serde_json::json!({"delivery": "relay"}),
    );
    assert_eq!(status, 200);
    let mut flight: Value =
        serde_json::from_slice(&std::fs::read(demo.join("flight-request.json")).unwrap()).unwrap();
    flight["disruption_id"] = declared["id"].clone();
    let (status, tokens) = client.post("/v1/flights/release-tokens", &key("AIRLINE_KEY"), &flight);
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["granted"][0]["delivery"], "relay");
    let message = serde_json::json!({
        "token": tokens["granted"][0]["token"], "channel": "sms", "category": "cancellation",
        "text": "Flight cancelled; you are rebooked."
    });
    let (status, accepted) = client.post("/v1/messages", &key("AIRLINE_KEY"), &message);
    assert_eq!(status, 202, "{accepted}");
    assert!(!accepted.to_string().contains("+33612345678"));
    let sent = texts
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the worker delivers to the gateway");
    assert!(
        sent.contains("+33612345678") && sent.contains("rebooked"),
        "{sent}"
    );
    let path = format!("/v1/messages/{}", accepted["message_id"].as_str().unwrap());
    let delivered = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        client.get(&path, &key("AIRLINE_KEY")).1["status"] == "delivered"
    });
    assert!(delivered, "the message reads delivered");
    let (_, feed) = client.get("/v1/receipts", &key("AGENCY_KEY"));
    assert!(feed["receipts"].as_array().unwrap().len() >= 3, "{feed}");
    // 6: the traveller withdraws with the code alone.
    let withdrawn: Value = client
        .client
        .post(format!("{}/v1/withdrawals", client.url))
        .json(&serde_json::json!({"code": recorded["withdrawal_code"]}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(withdrawn["state"], "withdrawn");
    let (status, _) = client.post("/v1/release-tokens", &key("AIRLINE_KEY"), &request);
    assert_eq!(status, 403);

    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(
        server.wait().unwrap().success(),
        "the broker stops cleanly on SIGTERM"
    );
}

#[test]
fn an_invalid_policy_stops_the_broker_and_policy_check_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    for name in ["schema.cedarschema", "release.cedar", "tunables.toml"] {
        let from = format!("{}/policies/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::copy(from, policies.join(name)).unwrap();
    }
    let checked = passerelle(dir.path())
        .args(["policy", "check", "--dir"])
        .arg(&policies)
        .output()
        .unwrap();
    assert!(checked.status.success());
    assert!(String::from_utf8_lossy(&checked.stdout).contains("forbid no-marketing"));

    let file = policies.join("release.cedar");
    let text = std::fs::read_to_string(&file).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("when { resource.superseded };"))
        .unwrap()
        + 1;
    std::fs::write(
        &file,
        text.replace("resource.superseded }", "resource.superseded == 1 }"),
    )
    .unwrap();
    let checked = passerelle(dir.path())
        .args(["policy", "check", "--dir"])
        .arg(&policies)
        .output()
        .unwrap();
    assert!(!checked.status.success());
    let said = String::from_utf8_lossy(&checked.stderr);
    assert!(said.contains(&format!("release.cedar:{line}")), "{said}");
    let served = passerelle(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--policy-dir"])
        .arg(&policies)
        .output()
        .unwrap();
    assert!(!served.status.success(), "the broker does not start");
    let said = String::from_utf8_lossy(&served.stderr);
    assert!(said.contains(&format!("release.cedar:{line}")), "{said}");
}

#[test]
fn a_search_total_limit_below_one_stops_the_broker_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let served = passerelle(dir.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--search-total-limit",
            "0",
        ])
        .output()
        .unwrap();
    assert!(!served.status.success(), "the broker does not start");
    let said = String::from_utf8_lossy(&served.stderr);
    assert!(said.contains("--search-total-limit"), "{said}");
    assert!(said.contains("0 is not in 1.."), "{said}");
}

/// An SMS gateway on loopback that takes one request, answers 200, and hands its body
/// over.
fn one_shot_gateway() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = socket.read(&mut buffer).unwrap();
            request.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&request).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .unwrap();
                    send.send(body.to_string()).ok();
                    return;
                }
            }
        }
    });
    (url, receive)
}

/// A small blocking client, as a shell user with curl would be.
struct Blocking {
    url: String,
    client: reqwest::blocking::Client,
}

impl Blocking {
    fn post(&self, path: &str, key: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .bearer_auth(key)
            .json(body)
            .send()
            .unwrap();
        (response.status().as_u16(), response.json().unwrap())
    }
    fn put(&self, path: &str, key: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .put(format!("{}{path}", self.url))
            .bearer_auth(key)
            .json(body)
            .send()
            .unwrap();
        (response.status().as_u16(), response.json().unwrap())
    }
    fn get(&self, path: &str, key: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .bearer_auth(key)
            .send()
            .unwrap();
        (response.status().as_u16(), response.json().unwrap())
    }
}
