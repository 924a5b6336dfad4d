//! The ingest benchmark: loads signed consent records into a real broker over HTTP on
//! loopback, in NDJSON batches, and prints records per second next to its crypto
//! floor measured in the same run: one Ed25519 verification and one countersignature
//! per record, on every core.
//!
//! `cargo bench --bench ingest -- --records 100000`
//! (add `--database-url postgres://…` for PostgreSQL; default: a SQLite file in a
//! temporary directory, synchronous=FULL).

#[path = "support/broker.rs"]
mod support;

use clap::Parser;
use passerelle::clock::SystemClock;
use passerelle::crypto::jws::Jwk;
use passerelle::crypto::keyring::{Keyring, Keys};
use passerelle::crypto::seal::DataKey;
use passerelle::crypto::{canonical, jws};
use passerelle::router::build_router;
use passerelle::service::parties as provision;
use passerelle::service::{AppState, Settings};
use passerelle::store::Store;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use support::letters;

/// Options.
#[derive(Parser)]
struct Args {
    /// Records to load.
    #[arg(long, default_value_t = 100_000)]
    records: usize,
    /// Records per request.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Database (default: a fresh SQLite file in a temporary directory).
    #[arg(long)]
    database_url: Option<String>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn statement(i: usize, date: &str) -> serde_json::Value {
    let name = letters(i);
    json!({
        "schema_version": "passerelle.consent.v1",
        "record_id": format!("BENCH-{i}"),
        "agency": "12345675",
        "jurisdiction": "FR",
        "booking": {
            "record_locator": format!("B{:07}", i / 3),
            "segments": [{"carrier": "AF", "flight_number": format!("{}", 1 + i % 5000), "date": date}]
        },
        "traveller": {
            "surname": format!("Traveller{name}"),
            "given_name": "Marie",
            "mobile": format!("+336{:08}", 10_000_000 + i % 80_000_000),
            "email": format!("t{i}@example.fr")
        },
        "decision": "given",
        "consent": {
            "purposes": ["cancellation", "delay", "schedule_change"],
            "data_categories": ["mobile", "email"],
            "recipients": "itinerary",
            "notice": {"version": "n-1", "language": "fr", "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
            "collection_method": "online_checkbox",
            "collected_at": "2026-11-20T09:30:00Z"
        }
    })
}

/// Ingest's crypto floor on one core and on every core, measured now: records per
/// second when each costs one Ed25519 verification (the agency's signature) and one
/// Ed25519 signature (the broker's countersigned receipt, here over the statement).
fn crypto_floor(jwk: &Jwk, lines: &[(Vec<u8>, String)]) -> (f64, f64) {
    let public = jwk.public_key_bytes().expect("key");
    let broker = Jwk::generate("floor");
    let sample = &lines[..lines.len().min(20_000)];
    let verify_and_sign = |items: &[(Vec<u8>, String)]| {
        for (payload, signature) in items {
            jws::parse(signature)
                .unwrap()
                .verify(&public, payload)
                .unwrap();
            std::hint::black_box(broker.sign_detached(payload).unwrap());
        }
    };
    let start = Instant::now();
    verify_and_sign(sample);
    let one = sample.len() as f64 / start.elapsed().as_secs_f64();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let start = Instant::now();
    std::thread::scope(|s| {
        for chunk in sample.chunks(sample.len().div_ceil(threads)) {
            s.spawn(|| verify_and_sign(chunk));
        }
    });
    let all = sample.len() as f64 / start.elapsed().as_secs_f64();
    (one, all)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile_dir()?;
    // PostgreSQL: a schema of the run's own, dropped at the end, so that runs neither
    // meet each other's agency nor leave their records behind.
    let url = match &args.database_url {
        Some(base) => support::fresh_postgres_schema(base, "passerelle_ingest").await?,
        None => format!("sqlite://{}/bench.db?mode=rwc", dir.display()),
    };
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let now = time::OffsetDateTime::now_utc();
    let jwk = Jwk::generate("bench");
    let agency =
        provision::add_agency(&store, "12345675", "Bench Voyages", &[jwk.public()], now).await?;
    let keys = Keyring::fixed(Keys::parse(&DataKey::generate_base64())?);
    let state = AppState::new(
        store.clone(),
        keys,
        Jwk::generate("broker"),
        Arc::new(SystemClock),
        Settings::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, build_router(state)).await });

    let date = (now + time::Duration::days(7)).date().to_string();
    eprintln!("signing {} records…", args.records);
    let lines: Vec<(Vec<u8>, String)> = (0..args.records)
        .map(|i| {
            let s = statement(i, &date);
            let payload = canonical::to_vec(&s);
            let signature = jwk.sign_detached(&payload).expect("signs");
            (payload, signature)
        })
        .collect();
    let (one_core, all_cores) = crypto_floor(&jwk, &lines);

    let client = reqwest::Client::new();
    let start = Instant::now();
    let mut stored = 0u64;
    for (n, chunk) in lines.chunks(args.batch).enumerate() {
        let body: String = chunk
            .iter()
            .map(|(payload, signature)| {
                let statement: serde_json::Value = serde_json::from_slice(payload).expect("json");
                json!({"statement": statement, "signature": signature}).to_string() + "\n"
            })
            .collect();
        let batch_start = Instant::now();
        let response = client
            .post(format!("{base}/v1/consents/batch"))
            .bearer_auth(&agency.api_key)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let report: serde_json::Value = response.json().await?;
        anyhow::ensure!(status == 200, "batch {n} answered {status}: {report}");
        stored += report["counts"]["stored"].as_u64().unwrap_or(0);
        eprintln!(
            "batch {n}: {} records in {:.2} s",
            chunk.len(),
            batch_start.elapsed().as_secs_f64()
        );
    }
    let elapsed = start.elapsed().as_secs_f64();
    let rate = stored as f64 / elapsed;
    let engine = if url.starts_with("sqlite") {
        "SQLite (synchronous=FULL)"
    } else {
        "PostgreSQL"
    };
    println!("engine                              {engine}");
    println!(
        "records stored                      {stored} in {elapsed:.1} s ({} per request)",
        args.batch
    );
    println!("ingest                              {rate:.0} records/s (signature checked, sealed, audited, receipt countersigned)");
    println!("crypto floor, one core              {one_core:.0} records/s (a verification and a countersignature each)");
    println!("crypto floor, all cores             {all_cores:.0} records/s");
    println!(
        "ingest beside its floor             {:.3} (target at least 0.50)",
        rate / all_cores
    );
    store.close().await;
    if let Some(base) = &args.database_url {
        support::drop_postgres_schema(base, &url).await;
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("passerelle-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
