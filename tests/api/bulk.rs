//! Bulk uploads in the formats agencies have: a JSON array, NDJSON, CSV and the PNR
//! contact elements of each GDS, with an outcome per record.

use crate::broker::letters;
use crate::helpers::{assert_problem, TestApp, AGENCY_IATA, FLIGHT_DATE, NOTICE_SHA256};
use crate::on_both_engines;
use serde_json::{json, Value};

on_both_engines!(
    a_json_array_reports_each_record_stored_duplicate_or_rejected,
    ndjson_larger_than_a_chunk_is_stored_whole,
    an_atomic_batch_with_one_bad_record_stores_nothing,
    a_body_that_is_not_an_array_is_refused_and_nothing_is_kept,
    csv_with_the_documented_header_is_stored_row_by_row,
    a_pnrs_contact_elements_import_in_each_gds_form,
    an_ssr_line_that_does_not_read_is_refused_by_its_place,
    records_of_one_traveller_in_one_batch_supersede_each_other_in_order,
);

fn signed_record(app: &TestApp, i: usize) -> Value {
    let mobile = format!("+336{:08}", 10_000_000 + i);
    app.signed(
        &app.agency.jwk,
        &app.statement_for(
            &format!("B-{i}"),
            &format!("Traveller{}", letters(i)),
            &mobile,
        ),
    )
}

async fn batch(app: &TestApp, query: &str, content_type: &str, body: String) -> reqwest::Response {
    app.post_raw(
        &format!("/v1/consents/batch{query}"),
        &app.agency.party.api_key,
        content_type,
        body,
    )
    .await
}

async fn a_json_array_reports_each_record_stored_duplicate_or_rejected(app: TestApp) {
    let good = signed_record(&app, 0);
    let mut bad = signed_record(&app, 1);
    bad["statement"]["traveller"]["mobile"] = json!("+33 1 42 68 53 00");
    let mut tampered = signed_record(&app, 2);
    tampered["statement"]["consent"]["purposes"] = json!(["delay"]);
    let body = json!([good, bad, good, tampered]).to_string();
    let response = batch(&app, "", "application/json", body).await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    let outcomes: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["stored", "rejected", "duplicate", "rejected"]);
    assert_eq!(
        report["counts"],
        json!({"stored": 1, "duplicate": 1, "rejected": 2})
    );
    assert_eq!(report["results"][1]["field"], "statement.traveller.mobile");
    assert_eq!(
        report["results"][1]["record_id"],
        Value::Null,
        "checks failed before the id was read"
    );
    assert_eq!(
        report["results"][3]["type"],
        "urn:passerelle:problem:bad-signature"
    );
    assert_eq!(report["results"][3]["record_id"], "B-2");
    assert!(report["results"][0]["withdrawal_code"]
        .as_str()
        .unwrap()
        .starts_with("pas_wd_"));
    assert_eq!(
        report["results"][2]["consent_id"],
        report["results"][0]["consent_id"]
    );
    let entries = app.audit_entries().await;
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["outcome"] == "recorded")
            .count(),
        1
    );
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["reason"] == "bad_signature")
            .count(),
        1
    );
}

async fn ndjson_larger_than_a_chunk_is_stored_whole(app: TestApp) {
    let count = 300;
    let body: String = (0..count)
        .map(|i| signed_record(&app, i).to_string() + "\n")
        .collect();
    let response = batch(&app, "", "application/x-ndjson", body).await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["counts"]["stored"], count);
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM consents")
        .fetch_one(app.store.reader())
        .await
        .unwrap();
    assert_eq!(rows, count as i64);
    // Each record went in with its own document, many to a statement.
    let (matched,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM consents c JOIN consent_documents d ON d.consent_id = c.id",
    )
    .fetch_one(app.store.reader())
    .await
    .unwrap();
    assert_eq!(matched, count as i64);
    let indexes: Vec<u64> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, (0..count as u64).collect::<Vec<_>>());
}

async fn an_atomic_batch_with_one_bad_record_stores_nothing(app: TestApp) {
    let mut records: Vec<Value> = (0..3).map(|i| signed_record(&app, i)).collect();
    records[2]["signature"] = records[0]["signature"].clone();
    let body: String = records.iter().map(|r| r.to_string() + "\n").collect();
    let problem = assert_problem(
        batch(&app, "?atomic=true", "application/x-ndjson", body).await,
        422,
        "batch-rejected",
    )
    .await;
    let outcomes: Vec<&str> = problem["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["not_stored", "not_stored", "rejected"]);
    assert!(problem["results"][0].get("withdrawal_code").is_none());
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM consents")
        .fetch_one(app.store.reader())
        .await
        .unwrap();
    assert_eq!(rows, 0);
    let entries = app.audit_entries().await;
    assert_eq!(entries.len(), 1, "only the signature refusal is audited");
    assert_eq!(entries[0]["reason"], "bad_signature");

    records.truncate(2);
    let body: String = records.iter().map(|r| r.to_string() + "\n").collect();
    let report: Value = batch(&app, "?atomic=true", "application/x-ndjson", body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["counts"]["stored"], 2);
}

async fn a_body_that_is_not_an_array_is_refused_and_nothing_is_kept(app: TestApp) {
    assert_problem(
        batch(&app, "", "application/json", "{\"statement\": 1}".into()).await,
        400,
        "batch-unreadable",
    )
    .await;
    let truncated = format!("[{}, {{\"statement\"", signed_record(&app, 0));
    let problem = assert_problem(
        batch(&app, "?atomic=true", "application/json", truncated.clone()).await,
        422,
        "batch-rejected",
    )
    .await;
    assert_eq!(problem["results"][0]["outcome"], "not_stored");
    let problem = assert_problem(
        batch(&app, "", "application/json", truncated).await,
        400,
        "batch-unreadable",
    )
    .await;
    assert_eq!(
        problem["results"][0]["outcome"], "stored",
        "what was read before the fault is reported"
    );
    assert_problem(
        batch(&app, "", "text/plain", "x".into()).await,
        415,
        "unsupported-media-type",
    )
    .await;
    assert_problem(
        batch(&app, "?atomic=maybe", "application/json", "[]".into()).await,
        422,
        "invalid-field",
    )
    .await;
    let empty: Value = batch(&app, "", "application/json", " [ ] ".into())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        empty["counts"],
        json!({"stored": 0, "duplicate": 0, "rejected": 0})
    );
    // All or nothing of nothing is nothing, not a fault of the audit log.
    let atomic = batch(&app, "?atomic=true", "application/json", "[]".into()).await;
    assert_eq!(atomic.status(), 200);
    let atomic: Value = atomic.json().await.unwrap();
    assert_eq!(
        atomic["counts"],
        json!({"stored": 0, "duplicate": 0, "rejected": 0})
    );
    let after = batch(&app, "", "application/json", "[]".into()).await;
    assert_eq!(after.status(), 200, "the broker still takes uploads");
}

async fn csv_with_the_documented_header_is_stored_row_by_row(app: TestApp) {
    let header = passerelle::service::ingest::csv::CSV_HEADER.join(",");
    let row = |record_id: &str, surname: &str, mobile: &str, decision: &str| {
        let email = if decision == "given" {
            format!("{}@example.fr", surname.to_lowercase())
        } else {
            String::new()
        };
        let mobile = if decision == "given" {
            mobile.to_string()
        } else {
            String::new()
        };
        let categories = "mobile email";
        let mut traveller = json!({"surname": surname, "given_name": "Marie"});
        if !mobile.is_empty() {
            traveller["mobile"] = json!(mobile);
            traveller["email"] = json!(email);
        }
        let statement = json!({
            "schema_version": "passerelle.consent.v1", "record_id": record_id, "agency": AGENCY_IATA,
            "jurisdiction": "FR",
            "booking": {"record_locator": "ABC123", "segments": [{"carrier": "AF", "flight_number": "1234", "date": FLIGHT_DATE}]},
            "traveller": traveller, "decision": decision,
            "consent": {"purposes": ["cancellation", "delay"], "data_categories": ["mobile", "email"], "recipients": ["AF"],
                "notice": {"version": "n-1", "language": "fr", "sha256": NOTICE_SHA256},
                "collection_method": "signed_form", "collected_at": "2026-11-20T09:30:00Z"}
        });
        let signature = app.signed(&app.agency.jwk, &statement)["signature"]
            .as_str()
            .unwrap()
            .to_string();
        format!(
            "{record_id},ABC123,AF1234/{FLIGHT_DATE},{surname},Marie,{mobile},{email},,{decision},cancellation delay,{categories},AF,n-1,fr,{NOTICE_SHA256},signed_form,2026-11-20T09:30:00Z,,FR,{signature}"
        )
    };
    let body = format!(
        "{header}\r\n{}\r\n{}\r\n{}\r\nonly,three,cells\r\n",
        row("C-1", "Dupont", "+33611111111", "given"),
        row("C-2", "Martin", "", "refused"),
        row("C-3", "Durand", "+33 1 42 68 53 00", "given"),
    );
    let response = batch(&app, "", "text/csv", body).await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    let outcomes: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["stored", "stored", "rejected", "rejected"]);
    assert_eq!(report["results"][2]["field"], "statement.traveller.mobile");
    assert!(report["results"][3]["reason"]
        .as_str()
        .unwrap()
        .contains("cells"));
    let problem = assert_problem(
        batch(&app, "", "text/csv", "record_id,surname\n".into()).await,
        400,
        "batch-unreadable",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("lacks"));
}

/// A two-passenger PNR, in each GDS's form: P1 gave a mobile and an email, P2 refused.
fn elements(gds: &str) -> (&'static str, &'static str, String) {
    match gds {
        "amadeus" => ("P1", "P2", "SRCTCM-33612345678/FR/P1\nSRCTCE-MARIE.DUPONT//EXAMPLE.FR/P1\nSRCTCR-REFUSED/P2".into()),
        "sabre" => ("1.1", "1.2", "3CTCM/33612345678/FR-1.1\n3CTCE/MARIE.DUPONT//EXAMPLE.FR-1.1\n3CTCR/REFUSED TO PROVIDE CTC INFO-1.2".into()),
        "travelport" => ("P1", "P2", "SI.P1/SSRCTCMYYHK1/33612345678/FR\nSI.P1/SSRCTCEYYHK1/MARIE.DUPONT//EXAMPLE.FR\nSI.P2/SSRCTCRYYHK1/REFUSED".into()),
        _ => ("P1", "P2", "SSR CTCM AF HK1 33612345678/FR/P1\nSSR CTCE AF HK1 MARIE.DUPONT//EXAMPLE.FR/P1\nSSR CTCR AF HK1 REFUSED/P2".into()),
    }
}

fn import(gds: &str, locator: &str) -> Value {
    let (p1, p2, lines) = elements(gds);
    json!({
        "gds": gds,
        "booking": {"record_locator": locator, "segments": [{"carrier": "AF", "flight_number": "1234", "date": FLIGHT_DATE}]},
        "jurisdiction": "FR",
        "consent": {"purposes": ["cancellation"], "recipients": "itinerary",
            "notice": {"version": "n-1", "language": "fr", "sha256": NOTICE_SHA256},
            "collection_method": "recorded_call", "collected_at": "2026-11-20T09:30:00Z"},
        "passengers": [
            {"ref": p1, "surname": "Dupont", "given_name": "Marie", "record_id": format!("{locator}-1")},
            {"ref": p2, "surname": "Dupont", "given_name": "Paul", "record_id": format!("{locator}-2")}
        ],
        "elements": lines,
    })
}

async fn a_pnrs_contact_elements_import_in_each_gds_form(app: TestApp) {
    let key = &app.agency.party.api_key;
    for (gds, locator) in [
        ("amadeus", "AMA001"),
        ("sabre", "SAB001"),
        ("travelport", "GAL001"),
        ("travelsky", "TSK001"),
    ] {
        // Unsigned: each passenger's statement comes back, to be signed.
        let mut body = import(gds, locator);
        let first: Value = app.post_json("/v1/consents/ssr", key, &body).await;
        assert_eq!(first["counts"]["rejected"], 2, "{gds}: {first}");
        assert_eq!(first["results"][0]["field"], "passengers[0].signature");
        let p1 = first["results"][0]["statement"].clone();
        let p2 = first["results"][1]["statement"].clone();
        assert_eq!(p1["traveller"]["mobile"], "+33612345678", "{gds}");
        assert_eq!(p1["traveller"]["email"], "marie.dupont@example.fr", "{gds}");
        assert_eq!(p2["decision"], "refused", "{gds}");
        body["passengers"][0]["signature"] = app.signed(&app.agency.jwk, &p1)["signature"].clone();
        body["passengers"][1]["signature"] = app.signed(&app.agency.jwk, &p2)["signature"].clone();
        let response = app.post("/v1/consents/ssr", key, &body).await;
        assert_eq!(response.status(), 200, "{gds}");
        let report: Value = response.json().await.unwrap();
        assert_eq!(report["counts"]["stored"], 2, "{gds}: {report}");
    }
    let refused: Value = app.get_json("/v1/consents?state=refused", key).await;
    assert_eq!(refused["records"].as_array().unwrap().len(), 4);
}

async fn an_ssr_line_that_does_not_read_is_refused_by_its_place(app: TestApp) {
    let key = &app.agency.party.api_key;
    let mut body = import("amadeus", "AMA002");
    body["elements"] = json!("SRCTCM-33612345678/P1\nSRCTCE-A+B//EXAMPLE.FR/P2");
    let problem = assert_problem(
        app.post("/v1/consents/ssr", key, &body).await,
        422,
        "invalid-field",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "elements[1]");
    assert!(problem["errors"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("`+`"));
    body["elements"] = json!("SRCTCM-33612345678/P9");
    let problem = assert_problem(
        app.post("/v1/consents/ssr", key, &body).await,
        422,
        "invalid-field",
    )
    .await;
    assert!(problem["errors"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("P9"));
}

/// A batch writes its bookings and travellers first, for all its records; the records
/// of one traveller still supersede each other in the batch's order, after the one
/// stored before the batch, and each new version of a record id counts the last.
async fn records_of_one_traveller_in_one_batch_supersede_each_other_in_order(app: TestApp) {
    let before = app.upload_default().await;
    let version = |mobile: &str| {
        let mut statement = app.statement();
        statement["traveller"]["mobile"] = json!(mobile);
        app.signed(&app.agency.jwk, &statement)
    };
    // A traveller new to the broker, with two versions in the batch.
    let newcomer = |mobile: &str| {
        let statement = app.statement_for("B-7", "Newcomer", mobile);
        app.signed(&app.agency.jwk, &statement)
    };
    let body = json!([
        version("+33611111111"),
        newcomer("+33644444444"),
        version("+33622222222"),
        newcomer("+33655555555"),
        version("+33633333333")
    ])
    .to_string();
    let response = batch(&app, "", "application/json", body).await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    let results = report["results"].as_array().unwrap();
    let versions: Vec<i64> = results
        .iter()
        .map(|r| r["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [2, 1, 3, 2, 4]);
    let current: Vec<String> = sqlx::query(
        "SELECT c.id FROM consents c JOIN consents first ON first.traveller_id = c.traveller_id \
         WHERE first.id = $1 AND c.superseded_by IS NULL",
    )
    .bind(before["consent_id"].as_str().unwrap())
    .fetch_all(app.store.reader())
    .await
    .unwrap()
    .iter()
    .map(|row| sqlx::Row::get(row, "id"))
    .collect();
    assert_eq!(current, [results[4]["consent_id"].as_str().unwrap()]);
    let superseded_by = |id: &str| superseded_by(&app, id.to_string());
    let id = |i: usize| results[i]["consent_id"].as_str().unwrap().to_string();
    assert_eq!(
        superseded_by(before["consent_id"].as_str().unwrap()).await,
        Some(id(0))
    );
    assert_eq!(superseded_by(&id(0)).await, Some(id(2)));
    assert_eq!(superseded_by(&id(2)).await, Some(id(4)));
    assert_eq!(superseded_by(&id(1)).await, Some(id(3)));
    assert_eq!(superseded_by(&id(3)).await, None);
}

/// The record that superseded this one, if any.
async fn superseded_by(app: &TestApp, id: String) -> Option<String> {
    let row = sqlx::query("SELECT superseded_by FROM consents WHERE id = $1")
        .bind(id)
        .fetch_one(app.store.reader())
        .await
        .unwrap();
    sqlx::Row::get(&row, "superseded_by")
}
