//! The disruption-day benchmark: an ash cloud closes airspace and every airline asks
//! for its passengers at once.
//!
//! It seeds a population (travellers across agencies, bookings of one or two, flights
//! of several airlines; consents given, refused, withdrawn and expired; a quarter of
//! the agencies relay-only; one flight of 400), starts the release binary on loopback
//! with the shipped policies and tunables, times grants of the large flight one at a
//! time and declarations of its cancellation, each telling all 400, then cancels a
//! tenth of the flights: the airlines declare each flight's disruption at once, each
//! declaration telling its travellers (the broker relays the airline's template to the
//! relay half, the airline gets the others' tokens), and wrk, an outside load
//! generator, redeems each token once while the broker relays. `/healthz` is then
//! driven by the same wrk client for as long, the ceiling releases are held to. On
//! another tenth of the flights, declared delayed, releases are sent at a fixed rate
//! (open loop) to read the latency at that rate, timed from when each was due.
//!
//! It prints, each beside its target and measured in the same run: consents ingested
//! per second beside their crypto floor (a verification and a countersignature each,
//! on every core); releases per second beside `/healthz`; the large flight's grant and
//! declaration times; the time from each declaration to its last message accepted by
//! the gateway, for the large flight and across the storm; the paced p99;
//! `audit verify`'s entries per second and inclusion proofs' latency; the broker's
//! memory before and after; and, with `--postgres-url`, PostgreSQL beside SQLite.
//! Beside a record's, a grant's, a release's and a `/healthz`'s rate it prints what
//! each cost in CPU time, the broker's and PostgreSQL's server processes': what the
//! ratios come down to on cores shared with the load generator.
//!
//! `cargo bench --bench disruption` (1,000,000 travellers, 5,000 flights);
//! `-- --ci` is the small run `.ci/run` makes; `--postgres-url URL` runs on SQLite,
//! then on PostgreSQL.

#[path = "support/broker.rs"]
mod support;
#[path = "support/wrk.rs"]
mod wrk;

use clap::Parser;
use passerelle::crypto::canonical;
use passerelle::crypto::jws::{self, Jwk};
use passerelle::store::Store;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{drop_postgres_schema, fresh_postgres_schema, letters, Broker, Cpu};
use tokio::sync::Semaphore;

/// Options.
#[derive(Parser)]
struct Args {
    /// Travellers.
    #[arg(long, default_value_t = 1_000_000)]
    travellers: usize,
    /// Flights.
    #[arg(long, default_value_t = 5_000)]
    flights: usize,
    /// Agencies.
    #[arg(long, default_value_t = 20)]
    agencies: usize,
    /// Airlines (at most 10).
    #[arg(long, default_value_t = 10)]
    airlines: usize,
    /// Requests in flight during the storm.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Releases per second of the paced phase.
    #[arg(long, default_value_t = 5_000)]
    paced_rate: u64,
    /// The small run of CI: 10,000 travellers, 100 flights, 4 agencies, 4 airlines.
    #[arg(long)]
    ci: bool,
    /// Run on a fresh schema of this PostgreSQL instead of a SQLite file.
    #[arg(long)]
    postgres_url: Option<String>,
    /// Leave the PostgreSQL schema in place when the run ends, to look at its tables
    /// and plans (its URL is printed; the next run drops it); dropped otherwise.
    #[arg(long)]
    keep_schema: bool,
    /// With `--postgres-url`, run on PostgreSQL only (no SQLite run, no comparison):
    /// to look at PostgreSQL alone at full size in half the time.
    #[arg(long, requires = "postgres_url")]
    postgres_only: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

const AIRLINES: [&str; 10] = ["AF", "KL", "LH", "BA", "IB", "AZ", "LX", "OS", "SN", "TP"];

/// A traveller of the population.
struct Traveller {
    agency: usize,
    statement: Value,
    /// 0 given, 1 refused, 2 withdrawn (after upload), 3 expired.
    state: u8,
}

fn iata(k: usize) -> String {
    let seven = 1_234_500 + k;
    format!("{seven:07}{}", seven % 7)
}

/// An agency that chose relay for all its clients (every fourth, see `run`).
const RELAYING_AGENCY: usize = 3;

/// The flight number of the one flight every traveller of [`LARGE_FLIGHT`] is on
/// (no flight of the population has it).
const LARGE_FLIGHT_NUMBER: &str = "4000";

/// Travellers of the large flight whose grant is timed on an idle broker.
const LARGE_FLIGHT: usize = 400;

/// Grants of the large flight timed, one after another.
const LARGE_FLIGHT_GRANTS: usize = 15;

fn population(args: &Args, date: &str) -> Vec<Traveller> {
    let mut travellers: Vec<Traveller> = (0..args.travellers)
        .map(|i| {
            let booking = i / 2;
            let flight = booking % args.flights;
            // Decorrelated from the flight (a hash of the index), so every flight
            // carries the same mix of states.
            let state = match (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) % 20 {
                0 => 1,
                1 => 2,
                2 => 3,
                _ => 0,
            };
            let segment = json!({"carrier": AIRLINES[flight % args.airlines], "flight_number": format!("{}", 100 + flight / args.airlines), "date": date});
            // The agency, decorrelated from the flight too: with `booking % agencies`
            // a flight's bookings all fell to the agencies of its own residue, and the
            // storm's flights never carried a relay-only agency's clients.
            let agency = ((booking as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize
                % args.agencies;
            traveller(i, &format!("D{booking:06}"), segment, agency, state)
        })
        .collect();
    // The large flight: every traveller consents, half booked through the first agency
    // (which reveals), half through the fourth (relay-only), so that declaring its
    // cancellation relays the airline's template to half of them.
    travellers.extend((0..LARGE_FLIGHT).map(|k| {
        let segment =
            json!({"carrier": AIRLINES[0], "flight_number": LARGE_FLIGHT_NUMBER, "date": date});
        traveller(
            args.travellers + k,
            &format!("L{:05}", k / 2),
            segment,
            if k % 2 == 0 {
                0
            } else {
                RELAYING_AGENCY % args.agencies
            },
            0,
        )
    }));
    travellers
}

/// Traveller `i`'s signed statement: `state` 0 given, 1 refused, 2 to be withdrawn,
/// 3 expired.
fn traveller(i: usize, locator: &str, segment: Value, agency: usize, state: u8) -> Traveller {
    let mut consent = json!({
        "purposes": ["cancellation", "delay", "schedule_change"],
        "data_categories": ["mobile", "email"],
        "recipients": "itinerary",
        "notice": {"version": "n-1", "language": "fr", "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
        "collection_method": "online_checkbox",
        "collected_at": "2026-10-01T09:30:00Z"
    });
    if state == 3 {
        consent["valid_until"] = json!("2026-11-01T00:00:00Z");
    }
    let mut person = json!({"surname": format!("Trav{}", letters(i)), "given_name": "Marie"});
    if state != 1 {
        person["mobile"] = json!(format!("+336{:08}", 10_000_000 + i % 80_000_000));
        person["email"] = json!(format!("t{i}@example.fr"));
    }
    let statement = json!({
        "schema_version": "passerelle.consent.v1",
        "record_id": format!("R{i}"),
        "agency": iata(agency),
        "jurisdiction": "FR",
        "booking": {"record_locator": locator, "segments": [segment]},
        "traveller": person,
        "decision": if state == 1 { "refused" } else { "given" },
        "consent": consent
    });
    Traveller {
        agency,
        statement,
        state,
    }
}

/// Ingest's crypto floor, measured now: records per second when each costs what
/// storing a record must, one Ed25519 verification of the agency's signature and the
/// broker's countersignature of its receipt (signed here over the statement, a payload
/// of the receipt's size), on every core.
fn crypto_floor(signed: &[(Vec<u8>, String, usize)], keys: &[[u8; 32]]) -> f64 {
    let sample = &signed[..signed.len().min(40_000)];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let broker = Jwk::generate("floor");
    let start = Instant::now();
    std::thread::scope(|s| {
        for chunk in sample.chunks(sample.len().div_ceil(threads)) {
            let broker = &broker;
            s.spawn(move || {
                for (payload, signature, agency) in chunk {
                    jws::parse(signature)
                        .unwrap()
                        .verify(&keys[*agency], payload)
                        .unwrap();
                    std::hint::black_box(broker.sign_detached(payload).unwrap());
                }
            });
        }
    });
    sample.len() as f64 / start.elapsed().as_secs_f64()
}

/// The broker's last log lines (warnings and errors: never a contact or a key).
fn log_tail(data_dir: &std::path::Path) -> String {
    let log = std::fs::read_to_string(data_dir.join("broker.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Raw multi-row INSERT rows per second on the same database (500 rows a statement,
/// 10,000 a transaction): the ceiling audited appends are compared with.
async fn raw_insert_limit(store: &Store, rows: usize) -> f64 {
    let pool = store.reader();
    sqlx::query("DROP TABLE IF EXISTS bench_raw")
        .execute(pool)
        .await
        .unwrap();
    // SQLite takes any type name, so one statement serves both engines.
    sqlx::query("CREATE TABLE bench_raw (idx BIGINT PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, hash BYTEA)")
        .execute(pool)
        .await
        .unwrap();
    let start = Instant::now();
    let mut idx = 0i64;
    while (idx as usize) < rows {
        let mut tx = pool.begin().await.unwrap();
        for _ in 0..20 {
            let mut sql =
                String::from("INSERT INTO bench_raw (idx, at, actor, action, hash) VALUES ");
            for k in 0..500 {
                if k > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "({}, {}, 'air_0123456789abcdef', 'token_redemption', NULL)",
                    idx,
                    1_790_000_000_000i64 + idx
                ));
                idx += 1;
            }
            sqlx::query(&sql).execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    let rate = idx as f64 / start.elapsed().as_secs_f64();
    sqlx::query("DROP TABLE bench_raw")
        .execute(pool)
        .await
        .unwrap();
    rate
}

fn percentiles(mut v: Vec<f64>) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} requests)",
        at(0.5),
        at(0.99),
        v[v.len() - 1],
        v.len()
    )
}

async fn start_broker(dir: &Path, database_url: &str, sink: &str) -> Broker {
    let exe = env!("CARGO_BIN_EXE_passerelle");
    for (flag, file) in [("--data-key", "data.key"), ("--broker-key", "broker.jwk")] {
        let status = Command::new(exe)
            .args(["keygen", flag])
            .arg(dir.join(file))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(exe)
        .arg("--data-dir")
        .arg(dir)
        .args([
            "--database-url",
            database_url,
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--sms-gateway-url",
            sink,
            // The SMS sink runs on loopback. The policies and tunables are the shipped
            // ones, built in: no limit is lifted.
            "--allow-insecure-outbound",
        ])
        .env("PASSERELLE_LOG", "warn")
        .env("PASSERELLE_SMS_GATEWAY_RECEIPT_SECRET", RECEIPT_SECRET)
        .stdout(Stdio::null())
        // Its warnings and errors (never a contact or a key), shown if a step fails.
        .stderr(std::fs::File::create(dir.join("broker.log")).expect("the broker's log"))
        .spawn()
        .expect("the broker starts");
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Broker {
                child,
                url,
                data_dir: dir.to_path_buf(),
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().ok();
    child.wait().ok();
    panic!("the broker did not become ready");
}

/// The secret the bench's gateway signs its delivery receipts with.
const RECEIPT_SECRET: &str = "bench-gateway-receipts";

/// An SMS gateway on loopback that accepts every message and, like a real one, then
/// posts a signed delivery receipt (`delivered`) back to the broker; it keeps when each
/// receipt was recorded, for the delivered-per-second figure.
struct Gateway {
    url: String,
    broker: Arc<std::sync::OnceLock<String>>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    recorded: Arc<std::sync::Mutex<Vec<Instant>>>,
}

impl Gateway {
    async fn start() -> Gateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/sms", listener.local_addr().unwrap());
        let broker: Arc<std::sync::OnceLock<String>> = Arc::default();
        let recorded: Arc<std::sync::Mutex<Vec<Instant>>> = Arc::default();
        let accepted: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
        let client = reqwest::Client::new();
        // Receipts posted at most this many at once, as a gateway's callback pool.
        let posting = Arc::new(Semaphore::new(16));
        let (to, kept, taken) = (broker.clone(), recorded.clone(), accepted.clone());
        let router = axum::Router::new().route(
            "/sms",
            axum::routing::post(move |body: axum::Json<Value>| {
                let (to, kept, client, posting) =
                    (to.clone(), kept.clone(), client.clone(), posting.clone());
                taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                async move {
                    let id = body["message_id"].as_str().unwrap_or_default().to_string();
                    tokio::spawn(async move {
                        let _slot = posting.acquire().await.unwrap();
                        let Some(broker) = to.get() else { return };
                        let receipt = json!({"message_id": id, "status": "delivered"}).to_string();
                        let at = time::OffsetDateTime::now_utc().unix_timestamp();
                        let signature = passerelle::crypto::signed_body::signature(
                            RECEIPT_SECRET.as_bytes(),
                            at,
                            &receipt,
                        );
                        let answer = client
                            .post(format!("{broker}/v1/gateway/sms/receipts"))
                            .header("Passerelle-Gateway-Signature", signature)
                            .header("Content-Type", "application/json")
                            .body(receipt)
                            .send()
                            .await;
                        if answer.is_ok_and(|a| a.status().is_success()) {
                            kept.lock().unwrap().push(Instant::now());
                        }
                    });
                    "ok"
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        Gateway {
            url,
            broker,
            accepted,
            recorded,
        }
    }

    /// Waits (a minute at most) until the gateway has taken `at_least` messages and
    /// recorded the receipt of each.
    async fn settled(&self, at_least: usize) {
        for _ in 0..600 {
            if self.accepted.load(std::sync::atomic::Ordering::Relaxed) >= at_least {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.drained().await;
    }

    /// Waits (a minute at most) until every message taken so far has its receipt.
    async fn drained(&self) {
        for _ in 0..600 {
            let taken = self.accepted.load(std::sync::atomic::Ordering::Relaxed);
            if self.recorded.lock().unwrap().len() >= taken {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (five minutes at most) until `messages` receipts are recorded at or after
    /// `since`; answers how many were and when the last was, in seconds after `since`.
    async fn delivered_since(&self, since: Instant, messages: u64) -> (usize, Option<f64>) {
        let (step, limit) = (Duration::from_millis(100), Duration::from_secs(300));
        let mut waited = Duration::ZERO;
        loop {
            let (n, last) = self.recorded_since(since);
            if n as u64 >= messages || waited >= limit {
                return (n, last.map(|l| l.duration_since(since).as_secs_f64()));
            }
            tokio::time::sleep(step).await;
            waited += step;
        }
    }

    /// Receipts recorded at or after `since`, and when the last was.
    fn recorded_since(&self, since: Instant) -> (usize, Option<Instant>) {
        let recorded = self.recorded.lock().unwrap();
        let after: Vec<&Instant> = recorded.iter().filter(|at| **at >= since).collect();
        (after.len(), after.iter().map(|at| **at).max())
    }
}

#[tokio::main]
async fn main() {
    let mut args = Args::parse();
    if args.ci {
        args.travellers = 10_000;
        args.flights = 100;
        args.agencies = 4;
        args.airlines = 4;
        args.paced_rate = args.paced_rate.min(2_000);
    }
    args.airlines = args.airlines.clamp(1, AIRLINES.len());
    if let (true, Some(url)) = (args.postgres_only, &args.postgres_url) {
        run(&args, Some(url)).await;
        return;
    }
    let sqlite = run(&args, None).await;
    let Some(url) = &args.postgres_url else {
        return;
    };
    let postgres = run(&args, Some(url)).await;
    println!();
    println!("PostgreSQL beside SQLite, same scenario, same run");
    for (what, pg, lite) in [
        ("releases", postgres.releases, sqlite.releases),
        ("ingest", postgres.ingest, sqlite.ingest),
    ] {
        println!(
            "  {what:<10} {pg:>9.0} /s vs {lite:>9.0} /s  -> {}",
            against(pg / lite, 0.5)
        );
    }
}

/// A ratio beside the least it should be.
fn against(ratio: f64, at_least: f64) -> String {
    let verdict = if ratio >= at_least { "met" } else { "MISSED" };
    format!("{ratio:.3} (target at least {at_least:.2}: {verdict})")
}

/// A figure beside the most it should be.
fn under(value: f64, at_most: f64, unit: &str) -> String {
    let verdict = if value < at_most { "met" } else { "MISSED" };
    format!("{value:.2} {unit} (target under {at_most} {unit}: {verdict})")
}

/// A figure beside the least it should be.
fn over(value: f64, at_least: f64, unit: &str) -> String {
    let verdict = if value >= at_least { "met" } else { "MISSED" };
    format!("{value:.0} {unit} (target at least {at_least:.0} {unit}: {verdict})")
}

/// What one engine's run gave, for the comparison.
struct Figures {
    releases: f64,
    ingest: f64,
}

/// The whole scenario on SQLite, or on a fresh schema of this PostgreSQL.
async fn run(args: &Args, postgres_url: Option<&str>) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let (database_url, engine) = match postgres_url {
        None => (
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("passerelle.db").display()
            ),
            "SQLite (synchronous=FULL)",
        ),
        Some(base) => (
            fresh_postgres_schema(base, "passerelle_disruption")
                .await
                .expect("PostgreSQL answers"),
            "PostgreSQL",
        ),
    };
    println!(
        "disruption day on {engine}: {} travellers, {} flights, {} agencies, {} airlines",
        args.travellers, args.flights, args.agencies, args.airlines
    );

    // Parties, provisioned in the database before the broker starts.
    let store = Store::connect(&database_url).await.unwrap();
    store.migrate().await.unwrap();
    let now = time::OffsetDateTime::now_utc();
    let agency_jwks: Vec<Jwk> = (0..args.agencies)
        .map(|k| Jwk::generate(&format!("a{k}")))
        .collect();
    let mut agency_keys = Vec::new();
    for (k, jwk) in agency_jwks.iter().enumerate() {
        let p = passerelle::service::parties::add_agency(
            &store,
            &iata(k),
            &format!("Agency {k}"),
            &[jwk.public()],
            now,
        )
        .await
        .unwrap();
        agency_keys.push(p.api_key);
    }
    let mut airline_keys = Vec::new();
    for code in &AIRLINES[..args.airlines] {
        let p = passerelle::service::parties::add_airline(
            &store,
            code,
            &format!("Airline {code}"),
            now,
        )
        .await
        .unwrap();
        airline_keys.push(p.api_key);
    }
    let officer_key = passerelle::service::parties::add_officer(&store, "Bench Officer", now)
        .await
        .unwrap()
        .api_key;
    let gateway = Gateway::start().await;
    let broker = start_broker(dir.path(), &database_url, &gateway.url).await;
    gateway.broker.set(broker.url.clone()).unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()
        .unwrap();

    // Sign the population on every core.
    let date = (now + time::Duration::days(3)).date().to_string();
    let travellers = population(args, &date);
    let signing = Instant::now();
    let signed: Vec<(Vec<u8>, String, usize)> = {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = travellers.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = travellers
                .chunks(chunk)
                .map(|part| {
                    let jwks = &agency_jwks;
                    s.spawn(move || {
                        part.iter()
                            .map(|t| {
                                let payload = canonical::to_vec(&t.statement);
                                let signature = jwks[t.agency].sign_detached(&payload).unwrap();
                                (payload, signature, t.agency)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        })
    };
    eprintln!(
        "signed {} statements in {:.1} s",
        signed.len(),
        signing.elapsed().as_secs_f64()
    );
    let public: Vec<[u8; 32]> = agency_jwks
        .iter()
        .map(|j| j.public_key_bytes().unwrap())
        .collect();
    let crypto_limit = crypto_floor(&signed, &public);

    // Relay-only agencies.
    for (k, key) in agency_keys.iter().enumerate() {
        if k % 4 == 3 {
            let r = client
                .put(format!("{}/v1/agency/delivery", broker.url))
                .bearer_auth(key)
                .json(&json!({"delivery": "relay"}))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
        }
    }

    // Ingest: each agency's records in NDJSON batches of 10,000, agencies in parallel.
    let cpu_before = Cpu::read(broker.child.id(), postgres_url.is_some());
    let ingest_started = Instant::now();
    let mut by_agency: Vec<Vec<String>> = vec![Vec::new(); args.agencies];
    for (payload, signature, agency) in &signed {
        let statement: Value = serde_json::from_slice(payload).unwrap();
        by_agency[*agency]
            .push(json!({"statement": statement, "signature": signature}).to_string());
    }
    let slots = Arc::new(Semaphore::new(2));
    let mut uploads = Vec::new();
    for (k, lines) in by_agency.into_iter().enumerate() {
        for batch in lines.chunks(10_000) {
            let body = batch.join("\n") + "\n";
            let (client, url, key, slots) = (
                client.clone(),
                broker.url.clone(),
                agency_keys[k].clone(),
                slots.clone(),
            );
            uploads.push(tokio::spawn(async move {
                let _slot = slots.acquire().await.unwrap();
                // An agency holds one upload turn at a time: a second batch of the
                // same agency is answered 503 with Retry-After while the first runs.
                let report: Value = loop {
                    let response = client
                        .post(format!("{url}/v1/consents/batch"))
                        .bearer_auth(&key)
                        .header("content-type", "application/x-ndjson")
                        .timeout(Duration::from_secs(3600))
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap();
                    if response.status() == 503 {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    break response.json().await.unwrap();
                };
                let results: Vec<(String, Option<String>)> = report["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| {
                        (
                            r["outcome"].as_str().unwrap_or("").to_string(),
                            r["consent_id"].as_str().map(str::to_string),
                        )
                    })
                    .collect();
                (k, results)
            }));
        }
    }
    let mut consent_ids: Vec<Vec<Option<String>>> = vec![Vec::new(); args.agencies];
    let mut stored = 0usize;
    for u in uploads {
        let (k, results) = u.await.unwrap();
        stored += results.iter().filter(|(o, _)| o == "stored").count();
        consent_ids[k].extend(results.into_iter().map(|(_, id)| id));
    }
    let ingest_seconds = ingest_started.elapsed().as_secs_f64();
    let ingest_rate = stored as f64 / ingest_seconds;
    let ingest_cpu = Cpu::read(broker.child.id(), postgres_url.is_some())
        .per_request_since(cpu_before, stored as u64);
    assert_eq!(stored, travellers.len(), "every record is stored");

    // Withdrawals: a twentieth of the travellers change their mind.
    let mut per_agency_index = vec![0usize; args.agencies];
    let mut withdrawals = Vec::new();
    for t in &travellers {
        let n = per_agency_index[t.agency];
        per_agency_index[t.agency] += 1;
        if t.state == 2 {
            withdrawals.push((t.agency, consent_ids[t.agency][n].clone().unwrap()));
        }
    }
    let slots = Arc::new(Semaphore::new(args.concurrency));
    let mut tasks = Vec::new();
    for (k, id) in withdrawals {
        let (client, url, key, slots) = (
            client.clone(),
            broker.url.clone(),
            agency_keys[k].clone(),
            slots.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _slot = slots.acquire().await.unwrap();
            let r = client
                .post(format!("{url}/v1/consents/{id}/withdrawal"))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    // Every airline's templates, for the broker to tell the relay half of each flight.
    register_templates(&client, &broker.url, &airline_keys).await;
    // One flight of 400 travellers, granted on an idle broker, one grant at a time.
    let cpu_before = Cpu::read(broker.child.id(), postgres_url.is_some());
    let large_grants = large_flight_grants(&client, &broker.url, &airline_keys[0], &date).await;
    let large_grants_cpu = Cpu::read(broker.child.id(), postgres_url.is_some())
        .per_request_since(cpu_before, large_grants.len() as u64);
    // Then its cancellation declared, each time telling every traveller at once.
    let told = told_declarations(
        &client,
        &broker.url,
        &airline_keys[0],
        &officer_key,
        &date,
        &gateway,
    )
    .await;

    // The storm: a tenth of the flights cancelled at once.
    let target = Target {
        client: &client,
        url: &broker.url,
        airline_keys: &airline_keys,
        dir: dir.path(),
        pid: broker.child.id(),
        postgres: postgres_url.is_some(),
    };
    // Every receipt of the messages so far recorded, so that the storm's are its own.
    gateway.drained().await;
    let audit_before = audit_size(&store).await;
    let memory_before = broker.memory().0 as f64 / 1024.0;
    let parts_before = broker.memory_parts();
    let process_before = process_memory(&client, &broker.url, &officer_key).await;
    let storm_started = Instant::now();
    // A tenth of each airline's flights (flight f is the (f / airlines)-th of airline
    // f % airlines): chosen as f % 10, with ten airlines every cancelled flight was the
    // first airline's, and at a million travellers its 500 passed its daily disruption
    // budget (every flight it operates, once).
    let airlines = args.airlines;
    let outcome = storm(
        args,
        &target,
        |f| (f / airlines) % 10 == 0,
        "cancellation",
        None,
    )
    .await;
    let storm_seconds = storm_started.elapsed().as_secs_f64();
    // Every storm traveller of the relay half told: from each declaration to its last
    // message accepted by the gateway.
    let storm_told = &outcome.told;
    let storm_to_tell = time_to_tell(
        &client,
        &broker.url,
        &officer_key,
        &storm_told.since,
        &storm_told.ids,
        storm_told.messages,
    )
    .await;
    // Delivered, not only accepted: every storm message's receipt recorded.
    let storm_delivered = gateway
        .delivered_since(storm_started, storm_told.messages)
        .await;
    let audit_after = audit_size(&store).await;
    let appended = (audit_after - audit_before) as f64;

    // Paced: another tenth, released at a fixed rate.
    let once = outcome.once.expect("the storm's releases went through wrk");
    // The HTTP stack's own ceiling: the same client, threads and connections, as long.
    let cpu_before = Cpu::read(broker.child.id(), false);
    let (healthz, healthz_requests) = {
        let url = broker.url.clone();
        let seconds = once.seconds.ceil() as u64;
        tokio::task::spawn_blocking(move || wrk::ceiling(&url, "/healthz", seconds))
            .await
            .unwrap()
    };
    let healthz_cpu =
        Cpu::read(broker.child.id(), false).per_request_since(cpu_before, healthz_requests);
    let releases_cpu = outcome
        .cpu
        .map(|(before, after)| after.per_request_since(before, once.ok + once.failed))
        .unwrap_or_default();

    // Paced: another tenth, released at a fixed rate.
    let paced_started = Instant::now();
    let paced = storm(
        args,
        &target,
        |f| (f / airlines) % 10 == 5,
        "delay",
        Some(args.paced_rate),
    )
    .await;
    let memory_at_end = broker.memory().0 as f64 / 1024.0;
    let parts_at_end = broker.memory_parts();
    let process_at_end = process_memory(&client, &broker.url, &officer_key).await;
    // Once the storm has passed, as `memory_before` was read once every message before it
    // had been delivered: the paced delays' messages delivered too (the relay worker may
    // still be sending them when the last release is answered), then the broker has given
    // back what it freed (it does so on a timer, `workers::memory`), so what stays
    // resident is what it holds.
    let paced_delivered = gateway
        .delivered_since(paced_started, paced.told.messages)
        .await;
    tokio::time::sleep(passerelle::workers::memory::INTERVAL + Duration::from_secs(2)).await;
    let memory_after = broker.memory().0 as f64 / 1024.0;
    let parts_after = broker.memory_parts();
    let process_after = process_memory(&client, &broker.url, &officer_key).await;

    let log = audit_log_figures(&client, &broker, &database_url, &officer_key).await;
    let raw_rate = raw_insert_limit(&store, if args.ci { 50_000 } else { 200_000 }).await;
    let peak = broker.memory().1 as f64 / 1024.0;
    store.close().await;

    let travellers_per_flight = once.ok as f64 / outcome.flights.max(1) as f64;
    let paced_p99 = quantile(&paced.releases, 0.99);
    println!(
        "consents ingested                 {stored} in {ingest_seconds:.1} s: {ingest_rate:.0} /s"
    );
    println!(
        "  beside its crypto floor         {crypto_limit:.0} /s (a verification and a countersignature each, all cores) -> {}",
        against(ingest_rate / crypto_limit, 0.5)
    );
    println!("  CPU per record                  {ingest_cpu}");
    println!(
        "a flight of {LARGE_FLIGHT} granted alone      {}",
        percentiles(large_grants.clone())
    );
    println!(
        "  p50                             {}",
        under(quantile(&large_grants, 0.5), 25.0, "ms")
    );
    println!("  CPU per grant                   {large_grants_cpu}");
    println!(
        "the {LARGE_FLIGHT} declared cancelled, told {}",
        percentiles(told.declared.clone())
    );
    println!(
        "  (each: {} tokens for the airline, {} messages queued durably)",
        told.tokens, told.messages
    );
    println!(
        "  p50                             {}",
        under(quantile(&told.declared, 0.5), 100.0, "ms")
    );
    println!(
        "  declaration to last message accepted by the gateway: {}",
        seconds(&told.to_last_message)
    );
    println!(
        "storm: flights cancelled          {} (each declared, telling its travellers: {travellers_per_flight:.0} tokens each on average, {} messages queued in all, {} flights not granted)",
        outcome.flights,
        storm_told.messages,
        storm_told.flights_failed
    );
    println!(
        "  declarations, all at once       {} (under the storm's load)",
        percentiles(outcome.requests.clone())
    );
    println!(
        "  declaration to last message accepted by the gateway: {}",
        seconds(&storm_to_tell)
    );
    let (delivered, delivered_in) = storm_delivered;
    println!(
        "  delivered (the gateway's receipts recorded): {delivered} of {} messages, the last {:.2} s after the storm began: {:.0} /s",
        storm_told.messages,
        delivered_in.unwrap_or(f64::NAN),
        delivered as f64 / delivered_in.unwrap_or(f64::NAN)
    );
    println!(
        "  releases of the tokens (wrk, {} threads, {} connections): {} answered 2xx, {} not, in {:.2} s: {:.0} /s; p50 {:.2} ms, p99 {:.2} ms",
        wrk::THREADS,
        wrk::CONNECTIONS,
        once.ok,
        once.failed,
        once.seconds,
        once.rate(),
        once.p50_ms,
        once.p99_ms
    );
    println!(
        "  CPU per release                 {releases_cpu} (the relay worker's sending included)"
    );
    println!("  /healthz, same client           {healthz:.0} /s");
    println!("  CPU per /healthz                {healthz_cpu}");
    println!(
        "  releases beside /healthz        {}",
        against(once.rate() / healthz, 0.5)
    );
    println!(
        "  audited appends                 {appended:.0} in {storm_seconds:.1} s: {:.0} /s; raw multi-row inserts {raw_rate:.0} rows/s",
        appended / storm_seconds
    );
    println!(
        "paced at {} /s: releases          {} (achieved {:.0} /s)",
        args.paced_rate,
        percentiles(paced.releases.clone()),
        paced.achieved
    );
    println!(
        "  p99 from when due               {}",
        under(paced_p99, 20.0, "ms")
    );
    let (delivered, delivered_in) = paced_delivered;
    println!(
        "  the delays' messages delivered: {delivered} of {}, the last {:.2} s after the paced phase began",
        paced.told.messages,
        delivered_in.unwrap_or(f64::NAN)
    );
    println!(
        "audit verify                      {} entries in {:.2} s: {}",
        log.entries,
        log.verify_seconds,
        over(
            log.entries as f64 / log.verify_seconds,
            1_000_000.0,
            "entries/s"
        )
    );
    println!(
        "inclusion proofs (HTTP)           {}",
        percentiles(log.proofs.clone())
    );
    println!(
        "  p99                             {}",
        under(quantile(&log.proofs, 0.99), 1.0, "ms")
    );
    println!(
        "broker memory                     {memory_before:.1} MiB before the storm, {memory_at_end:.1} MiB as the paced load ends, {memory_after:.1} MiB once it has passed, peak {peak:.1} MiB"
    );
    println!(
        "  after beside before             {:.3} (target at most 1.20 over a 10-minute run at 5,000 /s)",
        memory_after / memory_before
    );
    println!(
        "  as the load ends beside before  {:.3} (what the requests in flight hold, and what is not yet given back)",
        memory_at_end / memory_before
    );
    let mib = |kb: u64| kb as f64 / 1024.0;
    for (when, (anon, file, shmem, threads), process) in [
        ("before", parts_before, process_before),
        ("ends", parts_at_end, process_at_end),
        ("after", parts_after, process_after),
    ] {
        let (sqlite, allocated, resident) = process;
        let bytes = |b: u64| b as f64 / 1_048_576.0;
        let sqlite = sqlite.map_or(String::new(), |b| {
            format!(", SQLite's heap {:.1} within it", bytes(b))
        });
        println!(
            "  {when:<6} anonymous {:.1} (the allocator's {:.1} resident around {:.1} allocated{sqlite}), file-backed {:.1}, shared {:.1} MiB; {threads} threads",
            mib(anon),
            bytes(resident),
            bytes(allocated),
            mib(file),
            mib(shmem)
        );
    }
    for (phase, failed) in [("storm", &outcome.failed), ("paced", &paced.failed)] {
        if !failed.is_empty() {
            println!("{phase}: releases failed            {failed:?}");
        }
    }
    // The small run must be clean; a full run prints what an overloaded broker refused.
    if args.ci {
        assert!(
            outcome.failed.is_empty() && paced.failed.is_empty(),
            "every release succeeds"
        );
    }
    drop(broker);
    if let Some(base) = postgres_url {
        if args.keep_schema {
            println!("kept the schema of {database_url}");
        } else {
            drop_postgres_schema(base, &database_url).await;
        }
    }
    Figures {
        releases: once.rate(),
        ingest: ingest_rate,
    }
}

/// Milliseconds of each of [`LARGE_FLIGHT_GRANTS`] grants of the large flight, one
/// after another (each for a new event, so each issues every traveller a token).
async fn large_flight_grants(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    date: &str,
) -> Vec<f64> {
    let mut took = Vec::new();
    for k in 0..LARGE_FLIGHT_GRANTS {
        let flight =
            json!({"carrier": AIRLINES[0], "flight_number": LARGE_FLIGHT_NUMBER, "date": date});
        let disruption = declare(
            client,
            url,
            key,
            &flight,
            "schedule_change",
            &format!("SLOT-{k}"),
        )
        .await;
        let body = json!({
            "flight": flight,
            "purpose": "schedule_change",
            "disruption_id": disruption
        });
        let sent = Instant::now();
        let response = client
            .post(format!("{url}/v1/flights/release-tokens"))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let grant: Value = response.json().await.unwrap();
        took.push(sent.elapsed().as_secs_f64() * 1000.0);
        assert!(status.is_success(), "the large flight is granted: {grant}");
        assert_eq!(
            grant["counts"]["granted"], LARGE_FLIGHT,
            "every traveller of the large flight"
        );
    }
    took
}

/// What declaring the large flight's cancellation, telling its travellers, took.
struct Told {
    /// Milliseconds of each declaration, answered with every relay message queued.
    declared: Vec<f64>,
    /// Tokens and messages of one declaration.
    tokens: u64,
    messages: u64,
    /// Seconds from each declaration to its last message accepted by the gateway, as
    /// the officer's report shows it.
    to_last_message: Vec<f64>,
}

/// Declares the large flight cancelled [`LARGE_FLIGHT_GRANTS`] times on an idle broker
/// (each a new disruption, so each tells every traveller again), the broker relaying
/// the airline's template to the relay half and answering the tokens of the others;
/// then waits for the gateway to accept every message and reads the time to tell from
/// the officer's report.
async fn told_declarations(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    officer_key: &str,
    date: &str,
    gateway: &Gateway,
) -> Told {
    let flight =
        json!({"carrier": AIRLINES[0], "flight_number": LARGE_FLIGHT_NUMBER, "date": date});
    let mut told = Told {
        declared: Vec::new(),
        tokens: 0,
        messages: 0,
        to_last_message: Vec::new(),
    };
    let mut ids = Vec::new();
    let since = passerelle::domain::time::format_time(time::OffsetDateTime::now_utc());
    let base = gateway.accepted.load(std::sync::atomic::Ordering::Relaxed);
    for k in 0..LARGE_FLIGHT_GRANTS {
        let sent = Instant::now();
        let response = client
            .post(format!("{url}/v1/disruptions"))
            .bearer_auth(key)
            .json(&json!({
                "flights": [flight],
                "category": "cancellation",
                "reference": format!("SNOW-{k}"),
                "occurred_at": passerelle::domain::time::format_time(time::OffsetDateTime::now_utc()),
            }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let declared: Value = response.json().await.unwrap();
        told.declared.push(sent.elapsed().as_secs_f64() * 1000.0);
        assert!(
            status.is_success(),
            "the cancellation is declared: {declared}"
        );
        let counts = &declared["told"]["counts"];
        assert_eq!(counts["travellers"], LARGE_FLIGHT, "{counts}");
        told.tokens = counts["tokens"].as_u64().unwrap_or_default();
        told.messages = counts["messages"].as_u64().unwrap_or_default();
        assert!(told.messages > 0, "the relay half is written to: {counts}");
        ids.push(declared["id"].as_str().unwrap().to_string());
        // Each declaration on an idle broker: its messages sent and their receipts
        // recorded before the next.
        gateway
            .settled(base + told.messages as usize * ids.len())
            .await;
    }
    told.to_last_message = time_to_tell(
        client,
        url,
        officer_key,
        &since,
        &ids,
        told.messages * ids.len() as u64,
    )
    .await;
    told
}

/// Every airline's SMS templates of the categories the bench declares, in English and
/// French: what the broker relays to the relay half of each flight.
async fn register_templates(client: &reqwest::Client, url: &str, airline_keys: &[String]) {
    for key in airline_keys {
        for (category, language, sms) in [
            (
                "cancellation",
                "en",
                "Flight {flight} on {date} is cancelled. Ref {reference}.",
            ),
            (
                "cancellation",
                "fr",
                "Vol {flight} du {date} annulé. Réf. {reference}.",
            ),
            (
                "delay",
                "en",
                "Flight {flight} on {date} is delayed. Ref {reference}.",
            ),
            (
                "delay",
                "fr",
                "Vol {flight} du {date} retardé. Réf. {reference}.",
            ),
        ] {
            let r = client
                .put(format!("{url}/v1/airline/templates/{category}/{language}"))
                .bearer_auth(key)
                .json(&json!({ "sms": sms }))
                .send()
                .await
                .unwrap();
            assert!(
                r.status().is_success(),
                "the {category} template in {language} is registered"
            );
        }
    }
}

/// Waits until the gateway accepted every message the declarations `ids` queued
/// (`messages` in all) and answers, for each, the seconds from its declaration to its
/// last message accepted, as the officer's report shows them.
async fn time_to_tell(
    client: &reqwest::Client,
    url: &str,
    officer_key: &str,
    since: &str,
    ids: &[String],
    messages: u64,
) -> Vec<f64> {
    let report_url = format!("{url}/v1/audit/reports?since={since}");
    let mut seen = (0, 0);
    for _ in 0..1200 {
        let report: Value = client
            .get(&report_url)
            .bearer_auth(officer_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rows = report["disruptions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let last: Vec<f64> = rows
            .iter()
            .filter(|row| ids.iter().any(|id| row["event_reference"] == id.as_str()))
            .filter_map(|row| row["seconds_to_last_message"].as_f64())
            .collect();
        seen = (last.len(), delivered(&report));
        if last.len() == ids.len() && seen.1 >= messages {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the gateway did not accept every declaration's messages within two minutes: \
         {} of {} declarations with a last message, {} of {messages} messages",
        seen.0,
        ids.len(),
        seen.1
    );
}

/// The messages the report counts delivered (accepted by the gateway).
fn delivered(report: &Value) -> u64 {
    report["relay"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter(|r| r["outcome"] == "delivered")
                .filter_map(|r| r["count"].as_u64())
                .sum()
        })
        .unwrap_or_default()
}

/// Seconds, as median and maximum.
fn seconds(v: &[f64]) -> String {
    let max = v.iter().copied().fold(0.0, f64::max);
    format!(
        "p50 {:.2} s, max {max:.2} s ({} declarations)",
        quantile(v, 0.5),
        v.len()
    )
}

/// Declares a disruption of one flight and returns its id.
async fn declare(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    flight: &Value,
    category: &str,
    reference: &str,
) -> String {
    let response = client
        .post(format!("{url}/v1/disruptions"))
        .bearer_auth(key)
        .json(&json!({
            "flights": [flight],
            "category": category,
            "reference": reference,
            "occurred_at": passerelle::domain::time::format_time(time::OffsetDateTime::now_utc()),
            // The airline asks per flight: what the storm measures.
            "tell": false,
        }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let declared: Value = response.json().await.unwrap();
    assert!(
        status.is_success(),
        "the disruption is declared: {declared}"
    );
    declared["id"].as_str().unwrap().to_string()
}

/// The audit log as the run left it: how fast `passerelle audit verify` rebuilds and
/// checks it, and how long an officer waits for inclusion proofs.
struct LogFigures {
    entries: u64,
    verify_seconds: f64,
    proofs: Vec<f64>,
}

/// Signs a checkpoint covering the whole log, times 500 inclusion proofs of entries
/// spread over it, one after another, then runs `audit verify` beside the live broker.
async fn audit_log_figures(
    client: &reqwest::Client,
    broker: &Broker,
    database_url: &str,
    officer_key: &str,
) -> LogFigures {
    let signed: Value = client
        .post(format!("{}/v1/audit/checkpoints", broker.url))
        .bearer_auth(officer_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let size = signed["tree_size"]
        .as_u64()
        .expect("a checkpoint was signed");
    let mut proofs = Vec::new();
    let prove = |index: u64| {
        client
            .get(format!(
                "{}/v1/audit/proofs/inclusion?index={index}",
                broker.url
            ))
            .bearer_auth(officer_key)
            .send()
    };
    for k in 0..500u64 {
        let index = k.wrapping_mul(0x9E37_79B9_7F4A_7C15) % size;
        let sent = Instant::now();
        let r = prove(index).await.unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        if !status.is_success() {
            // Shown whole, with the broker's last log lines; asked once more, so that a
            // proof that fails for good fails the bench.
            println!(
                "inclusion proof of entry {index} FAILED: {status} {body}\n{}",
                log_tail(&broker.data_dir)
            );
            let again = prove(index).await.unwrap();
            assert!(
                again.status().is_success(),
                "entry {index} is proved when asked again: {}",
                again.status()
            );
        }
        proofs.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .arg("--data-dir")
        .arg(&broker.data_dir)
        .args(["--database-url", database_url, "audit", "verify"])
        .env("PASSERELLE_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "the log verifies: {text}");
    // "read N entries in S s (R entries/s)"
    let line = text
        .lines()
        .find(|l| l.starts_with("read "))
        .expect("a rate line");
    let words: Vec<&str> = line.split_whitespace().collect();
    LogFigures {
        entries: words[1].parse().unwrap(),
        verify_seconds: words[4].parse().unwrap(),
        proofs,
    }
}

/// What the broker's `/metrics` says of its memory, in bytes: SQLite's heap (`None` on
/// PostgreSQL), and the allocator's bytes allocated and resident.
async fn process_memory(
    client: &reqwest::Client,
    url: &str,
    officer_key: &str,
) -> (Option<u64>, u64, u64) {
    let text = client
        .get(format!("{url}/metrics"))
        .bearer_auth(officer_key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let gauge = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .map(|v| v.trim().parse().unwrap())
    };
    (
        gauge("passerelle_sqlite_heap_bytes"),
        gauge("passerelle_allocator_allocated_bytes").unwrap_or(0),
        gauge("passerelle_allocator_resident_bytes").unwrap_or(0),
    )
}

/// The `q` quantile of some milliseconds (0 for none).
fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

async fn audit_size(store: &Store) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM audit_entries")
        .fetch_one(store.reader())
        .await
        .unwrap();
    n
}

/// The broker a storm is sent to, and with what.
#[derive(Clone, Copy)]
struct Target<'a> {
    client: &'a reqwest::Client,
    url: &'a str,
    airline_keys: &'a [String],
    /// Where wrk's script and request list are written.
    dir: &'a Path,
    /// The broker's process, and whether its database is PostgreSQL: whose CPU time a
    /// release is charged.
    pid: u32,
    postgres: bool,
}

struct Storm {
    flights: usize,
    requests: Vec<f64>,
    releases: Vec<f64>,
    achieved: f64,
    /// Releases that failed, by status (or client error).
    failed: BTreeMap<String, usize>,
    /// The releases sent by wrk, when not paced.
    once: Option<wrk::Once>,
    /// The CPU readings before and after wrk's releases, when not paced.
    cpu: Option<(Cpu, Cpu)>,
    /// What the declarations told.
    told: Telling,
}

/// The declarations of a phase: which, and the messages they queued.
struct Telling {
    /// When the phase began, for the officer's report.
    since: String,
    /// The declarations that queued messages.
    ids: Vec<String>,
    messages: u64,
    /// Flights a declaration could not grant (a rate limit), so told nobody.
    flights_failed: u64,
}

/// Most paced releases in flight: beyond it a release waits in the client, its latency
/// still counted from when it was due (more would only run out of sockets).
const PACED_IN_FLIGHT: usize = 1_024;

/// The airlines declare each chosen flight's disruption, each declaration telling
/// every traveller at once (the broker relays the airline's template to the relay
/// half and answers the reveal half's tokens), then redeem every token: as fast as
/// wrk sends them, or at `rate` per second (latency measured from when each release
/// was due, so a late broker is not flattered).
async fn storm(
    args: &Args,
    broker: &Target<'_>,
    chosen: impl Fn(usize) -> bool,
    event: &str,
    rate: Option<u64>,
) -> Storm {
    let Target {
        client,
        url,
        airline_keys,
        dir,
        pid,
        postgres,
    } = *broker;
    let date = (time::OffsetDateTime::now_utc() + time::Duration::days(3))
        .date()
        .to_string();
    let since = passerelle::domain::time::format_time(time::OffsetDateTime::now_utc());
    let flights: Vec<usize> = (0..args.flights).filter(|f| chosen(*f)).collect();
    let slots = Arc::new(Semaphore::new(args.concurrency));
    let mut asks = Vec::new();
    for &f in &flights {
        let airline = f % args.airlines;
        let flight = json!({"carrier": AIRLINES[airline], "flight_number": format!("{}", 100 + f / args.airlines), "date": date});
        let body = json!({
            "flights": [flight],
            "category": event,
            "reference": format!("ASH-{event}-{f}"),
            "occurred_at": passerelle::domain::time::format_time(time::OffsetDateTime::now_utc()),
        });
        let (client, url, key, slots) = (
            client.clone(),
            url.to_string(),
            airline_keys[airline].clone(),
            slots.clone(),
        );
        asks.push(tokio::spawn(async move {
            let _slot = slots.acquire().await.unwrap();
            let sent = Instant::now();
            let response = client
                .post(format!("{url}/v1/disruptions"))
                .bearer_auth(&key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let declared: Value = response.json().await.unwrap();
            let took = sent.elapsed().as_secs_f64() * 1000.0;
            assert!(
                status.is_success(),
                "the disruption is declared: {declared}"
            );
            let told = &declared["told"];
            let granted: Vec<(String, String)> = told["flights"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|flight| flight["granted"].as_array().cloned().unwrap_or_default())
                .map(|t| (t["token"].as_str().unwrap().to_string(), key.clone()))
                .collect();
            let messages = told["counts"]["messages"].as_u64().unwrap_or_default();
            let failed = told["counts"]["flights_failed"]
                .as_u64()
                .unwrap_or_default();
            let id = declared["id"].as_str().unwrap().to_string();
            (took, granted, messages, failed, id)
        }));
    }
    let mut requests = Vec::new();
    let mut tokens = Vec::new();
    let mut told = Telling {
        since,
        ids: Vec::new(),
        messages: 0,
        flights_failed: 0,
    };
    for a in asks {
        let (took, granted, messages, failed, id) = a.await.unwrap();
        requests.push(took);
        tokens.extend(granted);
        told.messages += messages;
        told.flights_failed += failed;
        // A flight with no relay traveller sends nothing: no time to tell.
        if messages > 0 {
            told.ids.push(id);
        }
    }
    if rate.is_none() {
        // As fast as the broker answers, from wrk's own process: each token used once.
        let uses: Vec<(String, String, String)> = tokens
            .into_iter()
            .map(|(token, key)| {
                (
                    "/v1/releases".to_string(),
                    key,
                    json!({"token": token}).to_string(),
                )
            })
            .collect();
        let (url, dir) = (url.to_string(), dir.to_path_buf());
        let before = Cpu::read(pid, postgres);
        let once = tokio::task::spawn_blocking(move || wrk::send_once(&url, &uses, &dir))
            .await
            .unwrap();
        let after = Cpu::read(pid, postgres);
        let mut failed = BTreeMap::new();
        if once.failed > 0 {
            failed.insert("not 2xx".to_string(), once.failed as usize);
        }
        return Storm {
            flights: flights.len(),
            requests,
            releases: Vec::new(),
            achieved: once.rate(),
            failed,
            once: Some(once),
            cpu: Some((before, after)),
            told,
        };
    }
    let started = Instant::now();
    let mut releases = Vec::new();
    let mut tasks = Vec::new();
    let paced_slots = Arc::new(Semaphore::new(PACED_IN_FLIGHT));
    for (n, (token, key)) in tokens.into_iter().enumerate() {
        let due = rate.map(|r| started + Duration::from_secs_f64(n as f64 / r as f64));
        let (client, url) = (client.clone(), url.to_string());
        let slots = match due {
            Some(_) => paced_slots.clone(),
            None => slots.clone(),
        };
        tasks.push(tokio::spawn(async move {
            let (sent, _slot) = match due {
                Some(due) => {
                    tokio::time::sleep_until(due.into()).await;
                    (due, slots.acquire_owned().await.unwrap())
                }
                None => {
                    let slot = slots.acquire_owned().await.unwrap();
                    (Instant::now(), slot)
                }
            };
            let response = client
                .post(format!("{url}/v1/releases"))
                .bearer_auth(&key)
                .json(&json!({"token": token}))
                .send()
                .await;
            let outcome = match response {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(r.status().as_u16().to_string()),
                Err(e) if e.is_timeout() => Err("client timeout".to_string()),
                Err(_) => Err("connection error".to_string()),
            };
            (outcome, sent.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut failed = BTreeMap::new();
    for t in tasks {
        match t.await.unwrap() {
            (Ok(()), took) => releases.push(took),
            (Err(why), _) => *failed.entry(why).or_insert(0) += 1,
        }
    }
    let achieved = releases.len() as f64 / started.elapsed().as_secs_f64();
    Storm {
        flights: flights.len(),
        requests,
        releases,
        achieved,
        failed,
        once: None,
        cpu: None,
        told,
    }
}
