//! The bounded load test: the real broker (the release binary, on loopback) held by
//! 200 concurrent clients for several minutes, then stopped. Clients mix what a
//! disruption brings: airlines asking for tokens and redeeming them, agencies reading
//! the uses of their clients' data, the officer searching the audit trail, travellers
//! opening their page's data. It prints throughput, latency per kind of request (over
//! the whole run and its p50 in each tenth of it, so a slowdown names its request),
//! every error, and the broker's resident memory over the run.
//!
//! The broker runs with the shipped limits and tunables, unchanged: an airline asking
//! for tokens faster than its rate, or past its daily budget of reveals, and a
//! traveller's address asking more often than the public limit, are refused with `429`
//! and a `Retry-After`. Those refusals are what the product does under this load; they
//! are counted apart, per kind and status, and only other failures fail the run.
//!
//! `cargo bench --bench load` (`-- --seconds 180 --clients 200 --travellers 2000`;
//! `--postgres-url URL` runs it on a fresh schema of that PostgreSQL instead of SQLite).

#[path = "support/broker.rs"]
mod support;

use clap::Parser;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{drop_postgres_schema, fresh_postgres_schema, letters, upload_batch, Broker};

/// Options.
#[derive(Parser)]
struct Args {
    /// How long the clients run.
    #[arg(long, default_value_t = 180)]
    seconds: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// Travellers seeded on the demo flight.
    #[arg(long, default_value_t = 2000)]
    travellers: usize,
    /// Run on a fresh schema of this PostgreSQL instead of a SQLite file.
    #[arg(long)]
    postgres_url: Option<String>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Kinds of request, as reported.
const KINDS: [&str; 5] = [
    "token request",
    "release",
    "agency receipts",
    "audit search",
    "traveller uses",
];

fn start(dir: &Path, database_url: &str) -> Broker {
    // Travellers come from many addresses, each under the per-address limit of the
    // routes that need no key: the load generator names them in `X-Forwarded-For`,
    // as a reverse proxy in front of the broker would.
    Broker::demo(
        env!("CARGO_BIN_EXE_passerelle"),
        dir,
        database_url,
        &["--trusted-proxies", "127.0.0.1"],
    )
}

/// Whether an answer is a limit's deliberate refusal: `429` with a `Retry-After` (the
/// airline's rate or daily budget, the public routes' per-address limit).
fn is_limit(response: &reqwest::Response) -> bool {
    response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS
        && response
            .headers()
            .contains_key(reqwest::header::RETRY_AFTER)
}

/// Counts a limit's refusal under its kind of request and status.
fn count(refused: &Mutex<BTreeMap<String, u64>>, kind: &str, response: &reqwest::Response) {
    let key = format!("{kind}: {}", response.status());
    *refused.lock().unwrap().entry(key).or_default() += 1;
}

/// One kind's latencies (µs), each with the tenth of the run its request was sent in.
type Timed = Vec<(u8, u32)>;

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().unwrap();
    let database_url = match &args.postgres_url {
        None => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("passerelle.db").display()
        ),
        Some(base) => fresh_postgres_schema(base, "passerelle_load")
            .await
            .expect("PostgreSQL answers"),
    };
    let engine = if args.postgres_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite (synchronous=FULL)"
    };
    let broker = start(dir.path(), &database_url);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()
        .unwrap();

    // Seed: travellers on the demo flight, each with a signed consent.
    let demo = dir.path().join("passerelle-demo");
    let jwk = passerelle::cli::read_jwk(&demo.join("agency.jwk")).unwrap();
    let template: Value =
        serde_json::from_str(&std::fs::read_to_string(demo.join("consent.json")).unwrap()).unwrap();
    let request_template: Value =
        serde_json::from_str(&std::fs::read_to_string(demo.join("token-request.json")).unwrap())
            .unwrap();
    let mut signed = Vec::new();
    let mut travellers: Vec<Value> = Vec::new();
    for i in 0..args.travellers {
        let mut s = template.clone();
        let locator = format!("L{i:05}");
        let surname = format!("Load{}", letters(i));
        s["record_id"] = json!(format!("LOAD-{i}"));
        s["booking"]["record_locator"] = json!(locator);
        s["traveller"]["surname"] = json!(surname);
        s["traveller"]["mobile"] = json!(format!("+336{:08}", 20_000_000 + i));
        s["traveller"]["email"] = json!(format!("load{i}@example.fr"));
        signed.push(passerelle::cli::sign_statement(&jwk, &s.to_string()).unwrap());
        let mut request = request_template.clone();
        request["record_locator"] = json!(locator);
        request["traveller"]["surname"] = json!(surname.to_uppercase());
        travellers.push(request);
    }
    let seeded = Instant::now();
    let report: Value = upload_batch(&client, &broker, &signed, "")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let codes: Vec<String> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["withdrawal_code"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        codes.len(),
        args.travellers,
        "every traveller is seeded: {}",
        report["counts"]
    );
    // Tokens are granted under a declared disruption of their flight (the demo's, which
    // tells nobody: the clients ask for the tokens themselves).
    let (airline, agency, officer) = (
        broker.key("AIRLINE_KEY"),
        broker.key("AGENCY_KEY"),
        broker.key("OFFICER_KEY"),
    );
    let declaration: Value =
        serde_json::from_str(&std::fs::read_to_string(demo.join("disruption.json")).unwrap())
            .unwrap();
    let declared = client
        .post(format!("{}/v1/disruptions", broker.url))
        .bearer_auth(&airline)
        .json(&declaration)
        .send()
        .await
        .unwrap();
    assert!(declared.status().is_success(), "the disruption is declared");
    let declared: Value = declared.json().await.unwrap();
    for request in &mut travellers {
        request["disruption_id"] = declared["id"].clone();
    }
    println!(
        "load test on {engine}: {} travellers seeded in {:.1} s; {} clients for {} s",
        args.travellers,
        seeded.elapsed().as_secs_f64(),
        args.clients,
        args.seconds
    );

    let travellers = Arc::new(travellers);
    let codes = Arc::new(codes);
    let latencies: Arc<Mutex<Vec<Timed>>> = Arc::new(Mutex::new(vec![Vec::new(); KINDS.len()]));
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let refused: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let requests = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let run = Duration::from_secs(args.seconds.max(1));
    let tenth = move |sent: Instant| {
        ((sent - started).as_secs_f64() * 10.0 / run.as_secs_f64()).min(9.0) as u8
    };
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (client, url, travellers, codes, latencies, errors, requests) = (
            client.clone(),
            broker.url.clone(),
            travellers.clone(),
            codes.clone(),
            latencies.clone(),
            errors.clone(),
            requests.clone(),
        );
        let refused = refused.clone();
        let (airline, agency, officer) = (airline.clone(), agency.clone(), officer.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine: Vec<Timed> = vec![Vec::new(); KINDS.len()];
            let mut i = c;
            while Instant::now() < deadline {
                i += 1;
                let t = (c * 7919 + i) % travellers.len();
                let (kind, request) = match i % 10 {
                    0..=4 => (
                        0,
                        client
                            .post(format!("{url}/v1/release-tokens"))
                            .bearer_auth(&airline)
                            .json(&travellers[t]),
                    ),
                    5 | 6 => (
                        2,
                        client
                            .get(format!("{url}/v1/receipts?limit=50"))
                            .bearer_auth(&agency),
                    ),
                    7 | 8 => (
                        3,
                        client
                            .get(format!(
                                "{url}/v1/audit/entries?limit=50&action=token_redemption"
                            ))
                            .bearer_auth(&officer),
                    ),
                    _ => (
                        4,
                        client
                            .post(format!("{url}/v1/traveller/uses"))
                            .header(
                                "x-forwarded-for",
                                format!("198.18.{}.{}", t / 250, t % 250 + 1),
                            )
                            .json(&json!({"code": codes[t]})),
                    ),
                };
                let sent = Instant::now();
                let outcome = request.send().await;
                mine[kind].push((tenth(sent), sent.elapsed().as_micros() as u32));
                requests.fetch_add(1, Ordering::Relaxed);
                let response = match outcome {
                    Ok(r) if r.status().is_success() => r,
                    Ok(r) if is_limit(&r) => {
                        count(&refused, KINDS[kind], &r);
                        continue;
                    }
                    Ok(r) => {
                        errors
                            .lock()
                            .unwrap()
                            .push(format!("{}: {}", KINDS[kind], r.status()));
                        continue;
                    }
                    Err(e) => {
                        errors.lock().unwrap().push(format!("{}: {e}", KINDS[kind]));
                        continue;
                    }
                };
                if kind == 0 {
                    let Ok(granted) = response.json::<Value>().await else {
                        continue;
                    };
                    let token = granted["token"].as_str().unwrap_or_default().to_string();
                    let sent = Instant::now();
                    let released = client
                        .post(format!("{url}/v1/releases"))
                        .bearer_auth(&airline)
                        .json(&json!({"token": token}))
                        .send()
                        .await;
                    mine[1].push((tenth(sent), sent.elapsed().as_micros() as u32));
                    requests.fetch_add(1, Ordering::Relaxed);
                    match released {
                        Ok(r) if r.status().is_success() => {}
                        Ok(r) if is_limit(&r) => count(&refused, "release", &r),
                        Ok(r) => errors
                            .lock()
                            .unwrap()
                            .push(format!("release: {}", r.status())),
                        Err(e) => errors.lock().unwrap().push(format!("release: {e}")),
                    }
                } else {
                    let _ = response.bytes().await;
                }
            }
            let mut all = latencies.lock().unwrap();
            for (k, v) in mine.into_iter().enumerate() {
                all[k].extend(v);
            }
        }));
    }
    // Memory every tenth of the run.
    let mut samples = Vec::new();
    let step = Duration::from_secs(args.seconds.max(10) / 10);
    while Instant::now() < deadline {
        tokio::time::sleep(step.min(deadline.saturating_duration_since(Instant::now()))).await;
        let (rss, _) = broker.memory();
        samples.push((
            started.elapsed().as_secs(),
            rss,
            requests.load(Ordering::Relaxed),
        ));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = requests.load(Ordering::Relaxed);
    let (_, peak) = broker.memory();
    println!(
        "{total} requests in {elapsed:.1} s: {:.0} requests/s",
        total as f64 / elapsed
    );
    drop(broker);
    if let Some(base) = &args.postgres_url {
        drop_postgres_schema(base, &database_url).await;
    }
    let latencies = latencies.lock().unwrap();
    for (k, name) in KINDS.iter().enumerate() {
        let mut v: Vec<u32> = latencies[k].iter().map(|(_, l)| *l).collect();
        v.sort_unstable();
        println!(
            "  {name:16} {:>8} requests  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms",
            v.len(),
            percentile(&v, 0.5),
            percentile(&v, 0.99),
            v.last().copied().unwrap_or(0) as f64 / 1000.0
        );
    }
    println!("p50 in ms (and requests) in each tenth of the run:");
    for (k, name) in KINDS.iter().enumerate() {
        let mut line = format!("  {name:16}");
        for t in 0..10u8 {
            let mut v: Vec<u32> = latencies[k]
                .iter()
                .filter(|(at, _)| *at == t)
                .map(|(_, l)| *l)
                .collect();
            v.sort_unstable();
            line.push_str(&format!(" {:>6.1} ({:>5})", percentile(&v, 0.5), v.len()));
        }
        println!("{line}");
    }
    let refused = refused.lock().unwrap();
    println!(
        "refused by a shipped limit (429 with Retry-After): {}",
        refused.values().sum::<u64>()
    );
    for (what, n) in refused.iter() {
        println!("  {what}: {n}");
    }
    let errors = errors.lock().unwrap();
    println!("errors: {}", errors.len());
    for e in errors.iter().take(10) {
        println!("  {e}");
    }
    println!("broker resident memory (s: MiB, requests so far):");
    for (at, rss, n) in &samples {
        println!("  {at:>5} s: {:>7.1} MiB  {n}", *rss as f64 / 1024.0);
    }
    println!("peak resident memory: {:.1} MiB", peak as f64 / 1024.0);
    if let (Some(first), Some(last)) = (samples.get(samples.len() / 4), samples.last()) {
        println!(
            "memory from a quarter of the run to its end: {:+.1} MiB",
            (last.1 as f64 - first.1 as f64) / 1024.0
        );
    }
    if !errors.is_empty() {
        std::process::exit(1);
    }
}
