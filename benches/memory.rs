//! Memory under hostile input: the release broker (the demo, with the shipped limits
//! and tunables, unchanged) is sent, by several clients at once and round after round,
//! the worst inputs each limit allows, and its peak resident memory is read from
//! `/proc` and printed beside the bound it must stay under.
//!
//! The inputs, each at its configured limit:
//! - a batch of `--max-batch-records` valid signed records with the largest statements
//!   the types allow (32 segments, 64-character names, 254-character emails), plain and
//!   all-or-nothing, and with an `Idempotency-Key` (its answer is kept for replay);
//! - a batch one record over the cap (`413`, after reading the cap's worth);
//! - a body of tiny junk lines up to `--max-batch-bytes` (what took a broker to 3 GB);
//! - elements just under the 64 KiB line limit, each a JSON value that expands when
//!   parsed, up to the body cap;
//! - an SSR import of 99 passengers (the PNR limit) without signatures, whose answer
//!   holds each passenger's statement, and one whose booking is 20,000 elements;
//! - the agency's upload page, with a file at the body cap (held whole by the page).
//!
//! `cargo bench --bench memory` (8 clients, 3 rounds); `-- --ci` is the small run
//! `.ci/run` makes (4 clients, 1 round). It exits non-zero if the peak passes the bound.

#[path = "support/broker.rs"]
mod support;

use clap::Parser;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{letters, Broker};

/// The bound the issue sets: peak resident memory under the worst inputs.
const BOUND_MIB: f64 = 256.0;
/// The second agency's IATA number (valid check digit).
const SECOND_AGENCY: &str = "76543213";

/// Options.
#[derive(Parser)]
struct Args {
    /// Clients sending at once.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Rounds of every input per client.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The small run of CI.
    #[arg(long)]
    ci: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The shipped limits (see `serve --help`): the bench sends at them, never lifts them.
fn limits() -> passerelle::service::settings::BatchLimits {
    passerelle::service::settings::BatchLimits::default()
}

/// The largest valid statement: every field as long as its type allows.
fn fat_statement(template: &Value, i: usize) -> Value {
    let mut s = template.clone();
    let date = s["booking"]["segments"][0]["date"]
        .as_str()
        .unwrap()
        .to_string();
    let segments: Vec<Value> = (0..32)
        .map(|k| json!({"carrier": "AF", "flight_number": format!("{}", 1000 + k), "date": date}))
        .collect();
    s["record_id"] = json!(format!("MEM-{i:06}-{}", "x".repeat(52)));
    s["booking"]["record_locator"] = json!(format!("M{:05}", i % 100_000));
    s["booking"]["segments"] = json!(segments);
    let name = |prefix: &str| {
        format!(
            "{prefix}{}",
            "a".repeat(64 - prefix.len() - 6) + &letters(i + 100_000_000)
        )
    };
    s["traveller"]["surname"] = json!(name("Mem"));
    s["traveller"]["given_name"] = json!(name("Giv"));
    s["traveller"]["mobile"] = json!(format!("+336{:08}", 10_000_000 + i));
    let local = format!("{}.{i}", "m".repeat(50));
    let domain = ["d", "e", "f"].map(|c| c.repeat(50)).join(".");
    s["traveller"]["email"] = json!(format!("{local}@{domain}.example.fr"));
    s["consent"]["purposes"] = json!([
        "schedule_change",
        "delay",
        "cancellation",
        "rebooking",
        "seat_change",
        "gate_change",
        "baggage",
        "check_in"
    ]);
    s
}

/// A small statement: the demo's, for traveller `i`.
fn thin_statement(template: &Value, i: usize) -> Value {
    let mut s = template.clone();
    s["record_id"] = json!(format!("THIN-{i}"));
    s["booking"]["record_locator"] = json!(format!("T{:05}", i % 100_000));
    s["traveller"]["surname"] = json!(format!("Thin{}", letters(i)));
    s["traveller"]["mobile"] = json!(format!("+336{:08}", 30_000_000 + i));
    s["traveller"]["email"] = json!(format!("t{i}@example.fr"));
    s
}

/// The batch routes answer `503` with `Retry-After` while their turns are taken: a
/// client waits and sends again.
async fn send(request: reqwest::RequestBuilder) -> (u16, usize) {
    loop {
        let attempt = request.try_clone().expect("a body that clones");
        match attempt.send().await {
            Ok(r) if r.status() == 503 => tokio::time::sleep(Duration::from_millis(500)).await,
            Ok(r) => {
                let status = r.status().as_u16();
                let bytes = r.bytes().await.map(|b| b.len()).unwrap_or(0);
                return (status, bytes);
            }
            Err(e) => panic!("a request failed: {e}"),
        }
    }
}

#[tokio::main]
async fn main() {
    let mut args = Args::parse();
    if args.ci {
        args.clients = 4;
        args.rounds = 1;
    }
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("passerelle.db").display()
    );
    let broker = Broker::demo(
        env!("CARGO_BIN_EXE_passerelle"),
        dir.path(),
        &database_url,
        &[],
    );
    let (idle, _) = broker.memory();
    let demo = broker.demo_dir();
    // A second agency, with the demo agency's public key: an agency holds at most half
    // the upload turns, so two fill them all.
    let added = std::process::Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "party",
            "add",
            "agency",
            "--iata",
            SECOND_AGENCY,
            "--name",
            "Second Voyages",
            "--public-key",
        ])
        .arg(demo.join("agency.pub.jwk"))
        .env("PASSERELLE_DATABASE_URL", &database_url)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let stdout = String::from_utf8(added.stdout).unwrap();
    let second_key = stdout[stdout.find("pas_agency_").unwrap()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let jwk = passerelle::cli::read_jwk(&demo.join("agency.jwk")).unwrap();
    let template: Value =
        serde_json::from_str(&std::fs::read_to_string(demo.join("consent.json")).unwrap()).unwrap();
    let limits = limits();
    let max_bytes = passerelle::service::settings::DEFAULT_MAX_BATCH_BYTES;

    // The inputs, built once and sent by every client.
    let signing = Instant::now();
    let sign = |mut statement: Value, agency: &str| {
        statement["agency"] = json!(agency);
        passerelle::cli::sign_statement(&jwk, &statement.to_string())
            .unwrap()
            .to_string()
            + "\n"
    };
    // The fattest records pass the body cap before the record cap: as many as fit.
    let first_agency = template["agency"].as_str().unwrap().to_string();
    let fat_batch = |agency: &str| {
        let mut batch = String::new();
        for i in 0..limits.max_records {
            let line = sign(fat_statement(&template, i), agency);
            if batch.len() + line.len() > max_bytes {
                break;
            }
            batch.push_str(&line);
        }
        batch
    };
    let at_cap = [fat_batch(&first_agency), fat_batch(SECOND_AGENCY)];
    let fat_records = at_cap[0].lines().count();
    let over_cap = |agency: &str| -> String {
        (0..limits.max_records + 1)
            .map(|i| sign(thin_statement(&template, i), agency))
            .collect()
    };
    let over_cap = [over_cap(&first_agency), over_cap(SECOND_AGENCY)];
    println!(
        "{fat_records} of the largest records fill the {:.0} MiB body cap ({} bytes each); \
         {} small ones make {:.1} MiB; signed in {:.1} s",
        max_bytes as f64 / 1048576.0,
        at_cap[0].len() / fat_records,
        limits.max_records + 1,
        over_cap[0].len() as f64 / 1048576.0,
        signing.elapsed().as_secs_f64()
    );
    let junk = "1\n".repeat(max_bytes / 2);
    let element = format!(
        "{{\"statement\":{{\"booking\":[{}0]}},\"signature\":\"x\"}}",
        "0,".repeat(30_000)
    );
    let mut wide = String::from("[");
    while wide.len() + element.len() + 2 < max_bytes {
        if wide.len() > 1 {
            wide.push(',');
        }
        wide.push_str(&element);
    }
    wide.push(']');
    let passengers: Vec<Value> = (0..99)
        .map(|i| json!({"ref": format!("P{}", i + 1), "surname": "Dupont", "given_name": letters(i), "record_id": format!("SSR-{i}")}))
        .collect();
    let elements: Vec<String> = (0..99)
        .map(|i| format!("SRCTCM-3361{:07}/P{}", 3_000_000 + i, i + 1))
        .collect();
    let ssr = json!({
        "gds": "amadeus",
        "booking": template["booking"],
        "jurisdiction": "FR",
        "consent": {"purposes": ["cancellation"], "recipients": "itinerary",
            "notice": template["consent"]["notice"],
            "collection_method": "recorded_call", "collected_at": template["consent"]["collected_at"]},
        "passengers": passengers,
        "elements": elements.join("\n"),
    });
    let mut ssr_junk = ssr.clone();
    ssr_junk["booking"] = json!(vec![0; 20_000]);
    let inputs = |fat: String, over: String| -> Vec<(&'static str, &'static str, String)> {
        vec![
            ("records at the caps", "", fat.clone()),
            ("records at the caps, all or nothing", "?atomic=true", fat),
            ("one record over the cap", "", over),
            ("junk lines to the body cap", "", junk.clone()),
            ("64 KiB elements that expand", "", wide.clone()),
        ]
    };
    let [first_fat, second_fat] = at_cap;
    let [first_over, second_over] = over_cap;
    let inputs = [
        Arc::new(inputs(first_fat, first_over)),
        Arc::new(inputs(second_fat, second_over)),
    ];

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let agencies = [broker.key("AGENCY_KEY"), second_key];
    let peak_seen = Arc::new(AtomicU64::new(0));
    let sampler = {
        let pid = broker.child.id();
        let peak = peak_seen.clone();
        tokio::spawn(async move {
            loop {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                if let Some(kb) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                {
                    peak.fetch_max(kb, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (client, url, agency, inputs) = (
            client.clone(),
            broker.url.clone(),
            agencies[c % 2].clone(),
            inputs[c % 2].clone(),
        );
        let (ssr, ssr_junk) = (ssr.clone(), ssr_junk.clone());
        let rounds = args.rounds;
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for round in 0..rounds {
                for (name, query, body) in inputs.iter() {
                    let mut request = client
                        .post(format!("{url}/v1/consents/batch{query}"))
                        .bearer_auth(&agency)
                        .header(
                            "content-type",
                            if body.starts_with('[') {
                                "application/json"
                            } else {
                                "application/x-ndjson"
                            },
                        )
                        .body(body.clone());
                    if query.is_empty() && name.starts_with("records") {
                        request = request.header("idempotency-key", format!("mem-{c}-{round}"));
                    }
                    let sent = Instant::now();
                    let (status, answer) = send(request).await;
                    eprintln!(
                        "  client {c}: {name}: {status}, {:.1} MiB answer in {:.1} s",
                        answer as f64 / 1048576.0,
                        sent.elapsed().as_secs_f64()
                    );
                    seen.push(format!("{name}: {status}"));
                }
                for import in [&ssr, &ssr_junk] {
                    let request = client
                        .post(format!("{url}/v1/consents/ssr"))
                        .bearer_auth(&agency)
                        .json(import);
                    let (status, _) = send(request).await;
                    seen.push(format!("ssr import: {status}"));
                }
            }
            seen
        }));
    }
    // The upload page holds its file whole: one agency session sends one at the cap.
    let page = tokio::spawn(upload_page(
        broker.url.clone(),
        agencies[0].clone(),
        "1\n".repeat(max_bytes / 2 - 1024),
    ));
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for t in tasks {
        for seen in t.await.unwrap() {
            *outcomes
                .entry(seen.split(" (").next().unwrap().to_string())
                .or_default() += 1;
        }
    }
    let page_status = page.await.unwrap();
    *outcomes
        .entry(format!("upload page: {page_status}"))
        .or_default() += 1;
    sampler.abort();
    let (_, hwm) = broker.memory();
    let peak_mib = hwm.max(peak_seen.load(Ordering::Relaxed)) as f64 / 1024.0;
    println!(
        "{} clients x {} rounds of the worst inputs at the shipped limits \
         (--max-batch-records {}, --max-rejected-records {}, --parallel-uploads {}, \
         --max-batch-bytes {} MiB) in {:.1} s",
        args.clients,
        args.rounds,
        limits.max_records,
        limits.max_rejected,
        limits.parallel,
        max_bytes / 1048576,
        started.elapsed().as_secs_f64()
    );
    for (outcome, n) in &outcomes {
        println!("  {n:>3} x {outcome}");
    }
    println!(
        "broker resident memory: {:.1} MiB idle, peak {peak_mib:.1} MiB = {:.2} of the {BOUND_MIB} MiB bound",
        idle as f64 / 1024.0,
        peak_mib / BOUND_MIB
    );
    broker.kill();
    let unexpected: Vec<&String> = outcomes
        .keys()
        .filter(|o| o.ends_with(": 500") || o.ends_with(": 502"))
        .collect();
    if peak_mib > BOUND_MIB || !unexpected.is_empty() {
        eprintln!("memory bound passed or a request failed: {unexpected:?}");
        std::process::exit(1);
    }
}

/// Signs the agency in on its pages and uploads `file` as a CSV through the form;
/// returns the page's status.
async fn upload_page(url: String, key: String, file: String) -> u16 {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let session = support::page_session(&client, &url, &key).await;
    let page = client
        .get(format!("{url}/agency/upload"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    let token = &page[at..at + page[at..].find('"').unwrap()];
    let boundary = "passerelle-memory-bench";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{token}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"format\"\r\n\r\nndjson\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"junk.ndjson\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    body.push_str(&file);
    body.push_str(&format!("\r\n--{boundary}--\r\n"));
    loop {
        let response = client
            .post(format!("{url}/agency/upload"))
            .header("cookie", &session)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body.clone())
            .send()
            .await
            .unwrap();
        if response.status() != 503 {
            return response.status().as_u16();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
