//! Crashes: the real broker is killed with SIGKILL in the middle of an all-or-nothing
//! bulk upload and of a release storm, then restarted on the same database. Nothing
//! acknowledged is lost, no batch is half stored, no release lacks its audit entry,
//! and `passerelle audit verify` passes.

use crate::broker::{letters, upload_batch, Broker};
use crate::helpers::{database, Database, Engine};
use crate::on_both_engines_with_engine;
use passerelle::store::Store;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

on_both_engines_with_engine!(
    a_bulk_upload_killed_midway_is_stored_whole_or_not_at_all,
    a_release_storm_killed_midway_keeps_every_acknowledged_release_and_its_audit_entry,
);

fn start(db: &Database) -> Broker {
    Broker::demo(
        env!("CARGO_BIN_EXE_passerelle"),
        db.dir.path(),
        &db.url,
        &[],
    )
}

/// `n` signed statements for the demo agency, one traveller each on the demo flight.
fn statements(demo: &Path, n: usize, prefix: &str) -> Vec<Value> {
    let jwk = passerelle::cli::read_jwk(&demo.join("agency.jwk")).unwrap();
    let template: Value =
        serde_json::from_str(&std::fs::read_to_string(demo.join("consent.json")).unwrap()).unwrap();
    (0..n)
        .map(|i| {
            let mut s = template.clone();
            s["record_id"] = json!(format!("{prefix}-{i}"));
            s["booking"]["record_locator"] = json!(format!("{}{i:05}", &prefix[..1]));
            s["traveller"]["surname"] = json!(format!("Traveller{}", letters(i)));
            s["traveller"]["mobile"] = json!(format!("+336{:08}", 10_000_000 + i));
            s["traveller"]["email"] = json!(format!("t{i}@example.fr"));
            passerelle::cli::sign_statement(&jwk, &s.to_string()).unwrap()
        })
        .collect()
}

fn audit_verify(db: &Database) {
    let output = Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .arg("--data-dir")
        .arg(db.dir.path())
        .args(["--database-url", &db.url, "audit", "verify"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && said.contains("intact"),
        "audit verify: {said} {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn count(store: &Store, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql).fetch_one(store.reader()).await.unwrap();
    n
}

async fn a_bulk_upload_killed_midway_is_stored_whole_or_not_at_all(engine: Engine) {
    let Some(db) = database(engine).await else {
        return;
    };
    let broker = start(&db);
    const N: usize = 1500;
    let client = reqwest::Client::new();
    let bulk = statements(&broker.demo_dir(), N, "BULK");
    let upload = upload_batch(&client, &broker, &bulk, "?atomic=true").send();
    let upload = tokio::spawn(upload);
    // Kill while the batch is being verified and written.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let acknowledged = upload.is_finished();
    broker.kill();
    let answered = upload.await.unwrap().map(|r| r.status().as_u16()).ok();

    let broker = start(&db);
    let store = Store::connect(&db.url).await.unwrap();
    let stored = count(
        &store,
        "SELECT COUNT(*) FROM consents WHERE agency_record_id LIKE 'BULK-%'",
    )
    .await;
    let audited = count(
        &store,
        "SELECT COUNT(*) FROM audit_entries WHERE action = 'consent_upload'",
    )
    .await;
    eprintln!("bulk upload killed after 400 ms: {stored} of {N} stored, answered {answered:?}");
    assert!(
        stored == 0 || stored == N as i64,
        "no half-stored batch: {stored} of {N}"
    );
    if acknowledged || answered == Some(200) {
        assert_eq!(stored, N as i64, "an acknowledged batch is kept");
    }
    assert_eq!(
        audited, stored,
        "each stored record has its audit entry, and no entry is without one"
    );
    store.close().await;
    drop(broker);
    audit_verify(&db);

    // The broker works on after the crash: the same batch again is stored whole.
    let broker = start(&db);
    let after = statements(&broker.demo_dir(), 20, "AFTER");
    let again = upload_batch(&client, &broker, &after, "?atomic=true")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200, "{}", again.text().await.unwrap());
}

async fn a_release_storm_killed_midway_keeps_every_acknowledged_release_and_its_audit_entry(
    engine: Engine,
) {
    let Some(db) = database(engine).await else {
        return;
    };
    let broker = start(&db);
    let client = reqwest::Client::new();
    let storm = statements(&broker.demo_dir(), 300, "STORM");
    let uploaded = upload_batch(&client, &broker, &storm, "")
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 200);
    let mut request: Value = serde_json::from_str(
        &std::fs::read_to_string(broker.demo_dir().join("flight-request.json")).unwrap(),
    )
    .unwrap();
    let airline = broker.key("AIRLINE_KEY");
    let disruption: Value = serde_json::from_str(
        &std::fs::read_to_string(broker.demo_dir().join("disruption.json")).unwrap(),
    )
    .unwrap();
    let declared: Value = client
        .post(format!("{}/v1/disruptions", broker.url))
        .bearer_auth(&airline)
        .json(&disruption)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    request["disruption_id"] = declared["id"].clone();
    let grant: Value = client
        .post(format!("{}/v1/flights/release-tokens", broker.url))
        .bearer_auth(&airline)
        .json(&request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tokens = crate::helpers::granted_tokens(&grant);
    assert_eq!(tokens.len(), 300, "{}", grant["counts"]);

    // 32 clients redeem every token; the broker is killed a third of the way in.
    let acknowledged: Arc<std::sync::Mutex<Vec<(i64, String)>>> = Arc::default();
    let done = Arc::new(AtomicUsize::new(0));
    let queue = Arc::new(std::sync::Mutex::new(tokens));
    let mut clients = Vec::new();
    for _ in 0..32 {
        let (queue, acknowledged, done, client, url, airline) = (
            queue.clone(),
            acknowledged.clone(),
            done.clone(),
            client.clone(),
            broker.url.clone(),
            airline.clone(),
        );
        clients.push(tokio::spawn(async move {
            loop {
                let Some(token) = queue.lock().unwrap().pop() else {
                    return;
                };
                let Ok(response) = client
                    .post(format!("{url}/v1/releases"))
                    .bearer_auth(&airline)
                    .json(&json!({"token": token}))
                    .send()
                    .await
                else {
                    return;
                };
                if response.status() == 200 {
                    if let Ok(released) = response.json::<Value>().await {
                        acknowledged.lock().unwrap().push((
                            released["audit_index"].as_i64().unwrap(),
                            released["token_id"].as_str().unwrap().to_string(),
                        ));
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    while done.load(Ordering::Relaxed) < 100 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    broker.kill();
    for c in clients {
        c.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    eprintln!(
        "release storm killed after {} acknowledged releases of 300",
        acknowledged.len()
    );
    assert!(
        !acknowledged.is_empty() && acknowledged.len() < 300,
        "killed midway: {}",
        acknowledged.len()
    );

    let broker = start(&db);
    let store = Store::connect(&db.url).await.unwrap();
    for (index, token_id) in &acknowledged {
        let row: Option<(String, String, Option<String>)> =
            sqlx::query_as("SELECT action, outcome, token_id FROM audit_entries WHERE idx = $1")
                .bind(index)
                .fetch_optional(store.reader())
                .await
                .unwrap();
        let (action, outcome, logged) =
            row.unwrap_or_else(|| panic!("acknowledged release at {index} is in the log"));
        assert_eq!(
            (action.as_str(), outcome.as_str()),
            ("token_redemption", "released")
        );
        assert_eq!(logged.as_deref(), Some(token_id.as_str()));
    }
    // Every use taken from a token has its audit entry, and no entry is without one.
    let per_token: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT t.id, CAST(t.uses_left AS BIGINT), CAST((SELECT COUNT(*) FROM audit_entries e \
         WHERE e.token_id = t.id AND e.action = 'token_redemption' AND e.outcome = 'released') AS BIGINT) \
         FROM release_tokens t",
    )
    .fetch_all(store.reader())
    .await
    .unwrap();
    let uses = grant["granted"][0]["uses"].as_i64().unwrap();
    for (token, left, released) in &per_token {
        assert_eq!(
            uses - left,
            *released,
            "token {token}: uses taken = releases in the log"
        );
    }
    let total: i64 = per_token.iter().map(|(_, _, r)| r).sum();
    assert!(total >= acknowledged.len() as i64);
    store.close().await;
    drop(broker);
    audit_verify(&db);
}
