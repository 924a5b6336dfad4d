//! The audit log is a Merkle tree under signed checkpoints: every entry can be proved,
//! and any edit, deletion, reordering or insertion made behind the broker's back is
//! caught by `audit verify`.

use crate::helpers::{assert_problem, TestApp};
use crate::on_both_engines;
use passerelle::audit::checkpoint::{Checkpoint, LogKey};
use passerelle::audit::merkle;
use passerelle::audit::proof::{self, InclusionProof};
use passerelle::audit::AuditEntry;
use passerelle::clock::Clock;
use passerelle::service::verify_log::{self as verify, Expected, Report};
use passerelle::store::audit as stored;
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_engines!(
    each_entry_is_proved_against_a_signed_checkpoint_and_the_proof_checks_offline,
    an_airline_proves_its_own_release_and_sees_no_other_entry,
    later_checkpoints_are_consistent_with_earlier_ones,
    a_proof_of_an_altered_entry_does_not_check,
    an_untouched_log_verifies,
    an_edited_entry_is_caught_at_its_index,
    an_entry_edited_with_its_leaf_hash_is_caught_by_the_stored_tree,
    a_deleted_entry_is_caught_at_its_index,
    swapped_entries_are_caught_at_the_first,
    an_entry_slipped_in_is_caught,
    a_history_rewritten_with_its_whole_tree_is_caught_by_the_checkpoint,
    deleting_the_newest_entries_is_caught_against_an_exported_checkpoint,
    deleting_the_newest_entries_behind_the_head_is_caught_by_the_head,
    entries_appended_while_the_log_is_verified_are_left_to_the_next_run,
    a_tree_size_without_a_checkpoint_or_a_bad_index_is_refused_by_name,
    an_append_rolled_back_leaves_nothing_in_the_right_edge_the_writer_keeps,
    concurrent_actions_commit_in_groups_into_a_dense_verifiable_log,
);

/// A cancellation declared, two travellers uploaded, two tokens granted and one
/// redeemed, a refused ask and a refused second use: a log of eight entries. Returns
/// the release response.
pub(crate) async fn busy_log(app: &TestApp) -> Value {
    app.disruption().await;
    for (record, surname, mobile) in [
        ("CRM-1", "Dupont", "+33612345678"),
        ("CRM-2", "Martin", "+33612345679"),
    ] {
        let response = app
            .upload(&app.statement_for(record, surname, mobile))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let mut tokens = Vec::new();
    for surname in ["DUPONT", "MARTIN"] {
        let mut request = app.token_request().await;
        request["traveller"] = json!({"surname": surname, "given_name": "MARIE"});
        let response = app.request_token(&app.airline.api_key, &request).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        tokens.push(body["token"].as_str().unwrap().to_string());
    }
    let mut marketing = app.token_request().await;
    marketing["purpose"] = json!("marketing");
    app.request_token(&app.airline.api_key, &marketing).await;
    let release = app.redeem(&app.airline.api_key, &tokens[0]).await;
    assert_eq!(release.status(), StatusCode::OK);
    let release: Value = release.json().await.unwrap();
    app.redeem(&app.airline.api_key, &tokens[0]).await;
    assert_eq!(app.audit_entries().await.len(), 8);
    release
}

async fn sign_checkpoint(app: &TestApp) -> Value {
    let response = app
        .post("/v1/audit/checkpoints", &app.officer.api_key, &json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

pub(crate) async fn log_key(app: &TestApp) -> LogKey {
    let body = app.get_json("/v1/audit/log-key", "").await;
    LogKey::parse(body["log_key"].as_str().unwrap()).unwrap()
}

async fn proof_of(app: &TestApp, key: &str, index: u64) -> reqwest::Response {
    app.get(&format!("/v1/audit/proofs/inclusion?index={index}"), key)
        .await
}

async fn each_entry_is_proved_against_a_signed_checkpoint_and_the_proof_checks_offline(
    app: TestApp,
) {
    busy_log(&app).await;
    let checkpoint = sign_checkpoint(&app).await;
    assert_eq!(checkpoint["tree_size"], 8);
    let key = log_key(&app).await;
    let opened = Checkpoint::open(checkpoint["note"].as_str().unwrap(), &key).unwrap();
    assert_eq!(opened.size, 8);
    for index in 0..8 {
        let response = proof_of(&app, &app.officer.api_key, index).await;
        assert_eq!(response.status(), StatusCode::OK);
        let proof: InclusionProof = response.json().await.unwrap();
        assert_eq!(proof.entry.index, index as i64);
        assert_eq!(proof.tree_size, 8);
        assert_eq!(proof.hashes.len(), 3, "log2(8) hashes");
        assert_eq!(proof.check(&key).unwrap(), opened);
    }
}

async fn an_airline_proves_its_own_release_and_sees_no_other_entry(app: TestApp) {
    let release = busy_log(&app).await;
    let index = release["audit_index"].as_u64().unwrap();
    // No checkpoint covers the release yet, and asking for its proof signs none: the
    // airline is told to come back after the next.
    let early = proof_of(&app, &app.airline.api_key, index).await;
    assert_eq!(early.headers()["retry-after"], "60");
    assert_problem(early, 404, "no-checkpoint").await;
    let checkpoints = app
        .get_json("/v1/audit/checkpoints", &app.officer.api_key)
        .await;
    assert!(checkpoints["checkpoints"].as_array().unwrap().is_empty());
    app.checkpoint().await;
    let response = proof_of(&app, &app.airline.api_key, index).await;
    assert_eq!(response.status(), StatusCode::OK);
    let proof: InclusionProof = response.json().await.unwrap();
    assert_eq!(proof.entry.action, "token_redemption");
    assert_eq!(proof.entry.outcome, "released");
    proof.check(&log_key(&app).await).unwrap();

    // AF's own declaration is its to prove; the agency's upload is not the airline's
    // to see, nor is AF's release KLM's.
    let declared = proof_of(&app, &app.airline.api_key, 0).await;
    assert_eq!(declared.status(), StatusCode::OK);
    assert_problem(
        proof_of(&app, &app.airline.api_key, 1).await,
        404,
        "entry-not-found",
    )
    .await;
    assert_problem(
        proof_of(&app, &app.other_airline.api_key, index).await,
        404,
        "entry-not-found",
    )
    .await;
    // The agency proves what was done with its client's data.
    let response = proof_of(&app, &app.agency.party.api_key, index).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_problem(
        proof_of(&app, &app.other_agency.party.api_key, index).await,
        404,
        "entry-not-found",
    )
    .await;
}

async fn later_checkpoints_are_consistent_with_earlier_ones(app: TestApp) {
    app.upload_default().await;
    let first = sign_checkpoint(&app).await;
    busy_log_more(&app).await;
    let second = sign_checkpoint(&app).await;
    let key = log_key(&app).await;
    let a = Checkpoint::open(first["note"].as_str().unwrap(), &key).unwrap();
    let b = Checkpoint::open(second["note"].as_str().unwrap(), &key).unwrap();
    assert!(a.size < b.size);
    let body = app
        .get_json(
            &format!("/v1/audit/proofs/consistency?from={}&to={}", a.size, b.size),
            &app.airline.api_key,
        )
        .await;
    let hashes =
        proof::decode(&serde_json::from_value::<Vec<String>>(body["hashes"].clone()).unwrap())
            .unwrap();
    assert!(merkle::verify_consistency(
        a.size, b.size, &a.root, &b.root, &hashes
    ));
    assert!(!merkle::verify_consistency(
        a.size, b.size, &b.root, &b.root, &hashes
    ));

    // Signing again without new entries returns the same checkpoint.
    let again = sign_checkpoint(&app).await;
    assert_eq!(again["tree_size"], second["tree_size"]);
    let list = app
        .get_json("/v1/audit/checkpoints", &app.agency.party.api_key)
        .await;
    assert_eq!(list["checkpoints"].as_array().unwrap().len(), 2);
    let latest = app
        .get_json("/v1/audit/checkpoint", &app.airline.api_key)
        .await;
    assert_eq!(latest["note"], second["note"]);
}

async fn busy_log_more(app: &TestApp) {
    let response = app
        .request_token(&app.airline.api_key, &app.token_request().await)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let mut marketing = app.token_request().await;
    marketing["purpose"] = json!("marketing");
    app.request_token(&app.airline.api_key, &marketing).await;
}

async fn a_proof_of_an_altered_entry_does_not_check(app: TestApp) {
    busy_log(&app).await;
    app.checkpoint().await;
    let key = log_key(&app).await;
    let proof: InclusionProof = proof_of(&app, &app.officer.api_key, 6)
        .await
        .json()
        .await
        .unwrap();
    let mut altered = proof.clone();
    altered.entry.outcome = "refused".into();
    assert!(altered.check(&key).unwrap_err().contains("altered"));
    let mut moved = proof.clone();
    moved.entry.index = 5;
    assert!(moved.check(&key).is_err());
    let mut forged = proof.clone();
    forged.leaf_hash = passerelle::domain::ids::hex(&altered.entry.leaf_hash());
    forged.entry = altered.entry.clone();
    assert!(forged.check(&key).unwrap_err().contains("path"));
    let other_key = LogKey::of(&key.name, &passerelle::crypto::jws::Jwk::generate("x")).unwrap();
    assert!(proof.check(&other_key).is_err());
}

async fn verify_log(app: &TestApp, exported: Vec<Expected>) -> Report {
    verify::verify(&app.store, app.state.checkpointer.log_key(), exported)
        .await
        .expect("verification runs")
}

async fn execute(app: &TestApp, sql: &str) {
    sqlx::query(sql)
        .execute(app.store.reader())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn entry(app: &TestApp, index: u64) -> AuditEntry {
    let mut conn = app.store.reader().acquire().await.unwrap();
    stored::entry_at(&mut conn, index).await.unwrap().unwrap().0
}

/// Rewrites entry `entry.index` in place, leaf hash included, as an attacker with
/// write access to the database would.
async fn rewrite(app: &TestApp, entry: &AuditEntry) {
    sqlx::query(
        "UPDATE audit_entries SET outcome = $1, request_id = $2, leaf_hash = $3 WHERE idx = $4",
    )
    .bind(&entry.outcome)
    .bind(&entry.request_id)
    .bind(entry.leaf_hash().to_vec())
    .bind(entry.index)
    .execute(app.store.reader())
    .await
    .unwrap();
}

/// Writes a copy of entry `from` at index `to` under another request id, with the
/// leaf hash that index and id give it, as an attacker (or a concurrent append) would.
async fn copy_entry(app: &TestApp, from: u64, to: u64, request_id: &str) {
    let mut copy = entry(app, from).await;
    copy.index = to as i64;
    copy.request_id = request_id.into();
    sqlx::query(
        "INSERT INTO audit_entries (idx, at, request_id, actor_kind, actor_id, action, outcome, reason, \
         agency_id, airline_id, booking_id, traveller_id, consent_id, token_id, purpose, event_category, \
         event_reference, flight, message_id, channel, policies, policy_digest, leaf_hash) \
         SELECT $1, at, $2, actor_kind, actor_id, action, outcome, reason, agency_id, airline_id, booking_id, \
         traveller_id, consent_id, token_id, purpose, event_category, event_reference, flight, message_id, \
         channel, policies, policy_digest, $3 FROM audit_entries WHERE idx = $4",
    )
    .bind(copy.index)
    .bind(&copy.request_id)
    .bind(copy.leaf_hash().to_vec())
    .bind(from as i64)
    .execute(app.store.reader())
    .await
    .unwrap();
}

fn failed_at(report: &Report) -> (u64, String) {
    let finding = report.finding.clone().expect("the tampering is caught");
    (finding.index.expect("an index is named"), finding.what)
}

async fn an_untouched_log_verifies(app: TestApp) {
    busy_log(&app).await;
    sign_checkpoint(&app).await;
    busy_log_more(&app).await;
    sign_checkpoint(&app).await;
    let report = verify_log(&app, Vec::new()).await;
    assert_eq!(report.finding, None, "{}", report.summary());
    assert_eq!(report.entries, 10);
    assert_eq!(report.checkpoints, 2);
}

async fn an_edited_entry_is_caught_at_its_index(app: TestApp) {
    busy_log(&app).await;
    sign_checkpoint(&app).await;
    execute(
        &app,
        "UPDATE audit_entries SET outcome = 'granted', reason = NULL WHERE idx = 5",
    )
    .await;
    let (index, what) = failed_at(&verify_log(&app, Vec::new()).await);
    assert_eq!(index, 5);
    assert!(what.contains("leaf hash"), "{what}");
}

async fn an_entry_edited_with_its_leaf_hash_is_caught_by_the_stored_tree(app: TestApp) {
    busy_log(&app).await;
    let mut refusal = entry(&app, 5).await;
    refusal.outcome = "granted".into();
    refusal.request_id = "forged".into();
    rewrite(&app, &refusal).await;
    let (index, what) = failed_at(&verify_log(&app, Vec::new()).await);
    assert_eq!(index, 4, "the subtree of entries 4 and 5 is named first");
    assert!(what.contains("entries 4 to 5"), "{what}");
}

async fn a_deleted_entry_is_caught_at_its_index(app: TestApp) {
    busy_log(&app).await;
    execute(&app, "DELETE FROM audit_entries WHERE idx = 3").await;
    let (index, what) = failed_at(&verify_log(&app, Vec::new()).await);
    assert_eq!(index, 3);
    assert!(what.contains("missing"), "{what}");
}

async fn swapped_entries_are_caught_at_the_first(app: TestApp) {
    busy_log(&app).await;
    execute(&app, "UPDATE audit_entries SET idx = 100 WHERE idx = 2").await;
    execute(&app, "UPDATE audit_entries SET idx = 2 WHERE idx = 3").await;
    execute(&app, "UPDATE audit_entries SET idx = 3 WHERE idx = 100").await;
    let (index, what) = failed_at(&verify_log(&app, Vec::new()).await);
    assert_eq!(index, 2);
    assert!(what.contains("changed or moved"), "{what}");
}

async fn an_entry_slipped_in_is_caught(app: TestApp) {
    busy_log(&app).await;
    // Make room at index 4, renumbering (and rehashing) every later entry, then write
    // a forged grant there and count it in the head.
    for index in (4..8).rev() {
        let mut moved = entry(&app, index).await;
        moved.index += 1;
        sqlx::query("UPDATE audit_entries SET idx = $1, leaf_hash = $2 WHERE idx = $3")
            .bind(moved.index)
            .bind(moved.leaf_hash().to_vec())
            .bind(index as i64)
            .execute(app.store.reader())
            .await
            .unwrap();
    }
    copy_entry(&app, 3, 4, "slipped-in").await;
    execute(&app, "UPDATE audit_head SET size = size + 1").await;
    let report = verify_log(&app, Vec::new()).await;
    let (index, what) = failed_at(&report);
    assert_eq!(index, 4, "{what}");
    assert!(what.contains("subtree"), "{what}");
}

async fn a_history_rewritten_with_its_whole_tree_is_caught_by_the_checkpoint(app: TestApp) {
    busy_log(&app).await;
    sign_checkpoint(&app).await;
    busy_log_more(&app).await;
    let mut refusal = entry(&app, 5).await;
    refusal.outcome = "granted".into();
    rewrite(&app, &refusal).await;
    // The attacker also recomputes every stored subtree.
    execute(&app, "DELETE FROM audit_nodes").await;
    let mut conn = app.store.reader().acquire().await.unwrap();
    stored::complete_tree(&mut conn).await.unwrap();
    drop(conn);
    let (index, what) = failed_at(&verify_log(&app, Vec::new()).await);
    assert_eq!(index, 0, "no earlier checkpoint matched");
    assert!(what.contains("do not match the checkpoint"), "{what}");
    // And the broker refuses to sign over the rewritten history.
    let response = app
        .post("/v1/audit/checkpoints", &app.officer.api_key, &json!({}))
        .await;
    assert_problem(response, 500, "log-inconsistent").await;
}

async fn deleting_the_newest_entries_is_caught_against_an_exported_checkpoint(app: TestApp) {
    busy_log(&app).await;
    let exported = sign_checkpoint(&app).await["note"]
        .as_str()
        .unwrap()
        .to_string();
    // Remove the last two entries and every trace of them: head, subtrees, checkpoints.
    execute(&app, "DELETE FROM audit_entries WHERE idx >= 6").await;
    execute(&app, "DELETE FROM audit_nodes WHERE last_leaf >= 6").await;
    execute(&app, "DELETE FROM audit_checkpoints").await;
    execute(&app, "UPDATE audit_head SET size = 6").await;
    let report = verify_log(&app, Vec::new()).await;
    assert_eq!(report.finding, None, "the database alone cannot tell");
    let key = app.state.checkpointer.log_key();
    let exported = Expected {
        source: "checkpoint.8".into(),
        checkpoint: Checkpoint::open(&exported, key).unwrap(),
    };
    let (index, what) = failed_at(&verify_log(&app, vec![exported]).await);
    assert_eq!(index, 6);
    assert!(
        what.contains("covers 8 entries but the log holds 6"),
        "{what}"
    );
}

async fn deleting_the_newest_entries_behind_the_head_is_caught_by_the_head(app: TestApp) {
    busy_log(&app).await;
    execute(&app, "DELETE FROM audit_entries WHERE idx >= 6").await;
    execute(&app, "DELETE FROM audit_nodes WHERE last_leaf >= 6").await;
    let (index, what) = failed_at(&verify_log(&app, Vec::new()).await);
    assert_eq!(index, 6);
    assert!(what.contains("counts 8 entries but only 6"), "{what}");
}

/// What a verification that read the head just before an append commits finds: one
/// more entry stored than the head it read counts.
async fn entries_appended_while_the_log_is_verified_are_left_to_the_next_run(app: TestApp) {
    busy_log(&app).await;
    copy_entry(&app, 7, 8, "appended").await;
    let report = verify_log(&app, Vec::new()).await;
    assert_eq!(report.finding, None, "{}", report.summary());
    assert_eq!(report.entries, 8, "the run covers what the head counted");
}

async fn a_tree_size_without_a_checkpoint_or_a_bad_index_is_refused_by_name(app: TestApp) {
    busy_log(&app).await;
    let key = &app.officer.api_key;
    let body = assert_problem(
        app.get("/v1/audit/proofs/inclusion?index=2&tree_size=5", key)
            .await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "tree_size");
    let body = assert_problem(
        app.get("/v1/audit/proofs/inclusion?index=-1", key).await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "index");
    assert_problem(
        app.get("/v1/audit/proofs/inclusion?index=99", key).await,
        404,
        "entry-not-found",
    )
    .await;
    let body = assert_problem(
        app.get("/v1/audit/proofs/consistency?from=3&to=99", key)
            .await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "to");
    assert_problem(
        app.get("/v1/audit/checkpoint", key).await,
        404,
        "no-checkpoint",
    )
    .await;
    assert_problem(
        app.post("/v1/audit/checkpoints", &app.airline.api_key, &json!({}))
            .await,
        403,
        "wrong-party-kind",
    )
    .await;
}

/// Uploads `count` travellers' consents through the broker at `base`, all at once.
async fn upload_many(app: &TestApp, base: &str, prefix: &str, count: usize) -> Vec<u16> {
    let uploads = (0..count).map(|i| {
        let statement = app.statement_for(
            &format!("{prefix}-{i}"),
            &format!(
                "Nom{prefix}{}",
                i.to_string()
                    .chars()
                    .map(|d| (b'a' + d as u8 - b'0') as char)
                    .collect::<String>()
            ),
            &format!("+3361234{:04}", i + if prefix == "B" { 5000 } else { 0 }),
        );
        let body = app.signed(&app.agency.jwk, &statement);
        let request = app
            .client
            .post(format!("{base}/v1/consents"))
            .bearer_auth(&app.agency.party.api_key)
            .json(&body);
        async move {
            request
                .send()
                .await
                .expect("request sent")
                .status()
                .as_u16()
        }
    });
    futures_util::future::join_all(uploads).await
}

/// The writer keeps the tree's right edge between appends. An append rolled back must
/// leave no leaf in it, even when the index it gave back is then taken by an append
/// that did not go through that edge (another broker's, on PostgreSQL).
async fn an_append_rolled_back_leaves_nothing_in_the_right_edge_the_writer_keeps(app: TestApp) {
    assert!(upload_many(&app, &app.url, "A", 3)
        .await
        .iter()
        .all(|s| *s == 201));
    let probe = |request_id: &str| passerelle::audit::NewEntry {
        at: app.clock.now(),
        action: passerelle::audit::Action::SettingsChange,
        outcome: passerelle::audit::Outcome::Changed,
        reason: None,
        entry: AuditEntry {
            request_id: request_id.into(),
            actor_kind: "broker".into(),
            actor_id: "broker".into(),
            ..AuditEntry::default()
        },
    };
    let mut tx = app.store.begin().await.unwrap();
    let (connection, right_edge) = tx.connection_and_right_edge();
    stored::append_many(connection, right_edge, vec![probe("rolled-back")])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    // The index given back is taken by an append that reads the edge from the tree.
    let mut tx = app.store.begin().await.unwrap();
    stored::append_many(&mut tx, &mut None, vec![probe("kept")])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Entries 4 to 7: the last completes the subtree of 0 to 7, over the edge's 0 to 3.
    assert!(upload_many(&app, &app.url, "B", 4)
        .await
        .iter()
        .all(|s| *s == 201));
    sign_checkpoint(&app).await;
    let report = verify_log(&app, Vec::new()).await;
    assert_eq!(report.finding, None, "{}", report.summary());
    assert_eq!(report.entries, 8);
}

async fn concurrent_actions_commit_in_groups_into_a_dense_verifiable_log(app: TestApp) {
    let statuses = upload_many(&app, &app.url, "A", 60).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let entries = app.audit_entries().await;
    let indexes: Vec<i64> = entries
        .iter()
        .map(|e| e["index"].as_i64().unwrap())
        .collect();
    assert_eq!(indexes, (0..60).collect::<Vec<_>>());
    sign_checkpoint(&app).await;
    let report = verify_log(&app, Vec::new()).await;
    assert_eq!(report.finding, None, "{}", report.summary());
    assert_eq!(report.entries, 60);
}

#[tokio::test]
async fn two_brokers_on_one_postgresql_keep_one_verifiable_log() {
    let Some(app) = TestApp::postgres().await else {
        return;
    };
    let (second, second_state) = app.another_broker().await;
    let (a, b) = tokio::join!(
        upload_many(&app, &app.url, "A", 50),
        upload_many(&app, &second, "B", 50)
    );
    assert!(a.iter().chain(&b).all(|s| *s == 201), "{a:?} {b:?}");
    // Each broker signs checkpoints as it goes; they agree.
    let first = sign_checkpoint(&app).await;
    let (c, d) = tokio::join!(
        upload_many(&app, &app.url, "C", 20),
        upload_many(&app, &second, "D", 20)
    );
    assert!(c.iter().chain(&d).all(|s| *s == 201));
    let later = second_state
        .checkpointer
        .tick(&second_state.store, second_state.clock.now())
        .await
        .expect("the second broker signs over the shared log");
    assert_eq!(first["tree_size"], 100);
    assert_eq!(later.tree_size, 140);
    let report = verify_log(&app, Vec::new()).await;
    assert_eq!(report.finding, None, "{}", report.summary());
    assert_eq!(report.entries, 140);
    assert_eq!(report.checkpoints, 2);
}

/// The operator's commands on a real log: `audit verify`, `audit prove`, and the
/// offline `audit check-proof`, which needs no database.
#[tokio::test]
async fn the_operator_verifies_the_log_and_proves_an_entry_offline_with_the_command_line() {
    let app = TestApp::sqlite().await;
    let release = busy_log(&app).await;
    let exported = sign_checkpoint(&app).await["note"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let checkpoint_file = dir.path().join("checkpoint.8");
    std::fs::write(&checkpoint_file, &exported).unwrap();
    let key = app.state.checkpointer.log_key().to_string();
    let binary = env!("CARGO_BIN_EXE_passerelle");
    let run = |args: &[&str]| {
        std::process::Command::new(binary)
            .arg("--database-url")
            .arg(&app.database_url)
            .args(args)
            .env_remove("PASSERELLE_DATABASE_URL")
            .output()
            .expect("passerelle runs")
    };

    let verified = run(&[
        "audit",
        "verify",
        "--log-key",
        &key,
        "--checkpoint",
        checkpoint_file.to_str().unwrap(),
    ]);
    let out = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(out.contains("audit log intact: 8 entries"), "{out}");

    let index = release["audit_index"].as_u64().unwrap().to_string();
    let proved = run(&["audit", "prove", "--entry", &index]);
    assert!(
        proved.status.success(),
        "{}",
        String::from_utf8_lossy(&proved.stderr)
    );
    let proof_file = dir.path().join("proof.json");
    std::fs::write(&proof_file, &proved.stdout).unwrap();

    // Offline: no database flag, only the proof, the key and the kept checkpoint.
    let check = |proof: &std::path::Path| {
        std::process::Command::new(binary)
            .args(["audit", "check-proof", "--log-key", &key, "--checkpoint"])
            .arg(&checkpoint_file)
            .arg("--proof")
            .arg(proof)
            .output()
            .unwrap()
    };
    let checked = check(&proof_file);
    let out = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        out.contains(&format!("entry {index} (token_redemption released")),
        "{out}"
    );

    let tampered = String::from_utf8(proved.stdout.clone())
        .unwrap()
        .replace("\"released\"", "\"refused\"");
    let tampered_file = dir.path().join("tampered.json");
    std::fs::write(&tampered_file, tampered).unwrap();
    let refused = check(&tampered_file);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("altered"));

    execute(
        &app,
        "UPDATE audit_entries SET outcome = 'granted' WHERE idx = 2",
    )
    .await;
    let failed = run(&["audit", "verify", "--log-key", &key]);
    assert!(!failed.status.success());
    let out = String::from_utf8_lossy(&failed.stdout);
    assert!(out.contains("FAILED at index 2"), "{out}");
}
