//! The audit log benchmark: audited appends per second through the group-committed
//! write path (single process, SQLite with synchronous=FULL and PostgreSQL), then
//! `audit verify` over a log of ten million entries (beside its target of a million
//! entries a second) and the time to answer inclusion proofs (beside their target, a
//! p99 under a millisecond) and a consistency proof on it; then `audit verify` over a
//! log of a million entries on PostgreSQL, beside SQLite's rate (target: half of it).
//!
//! `cargo bench --bench audit_log`
//! (`-- --log-entries 10000000 --postgres-log-entries 1000000 --appends 20000
//! --concurrency 64`; PostgreSQL at `--postgres-url`, default the local test database;
//! skipped when unreachable.)

#[path = "support/broker.rs"]
mod support;

use clap::Parser;
use passerelle::audit::merkle;
use passerelle::audit::{Action, AuditEntry, NewEntry, Outcome};
use passerelle::crypto::jws::Jwk;
use passerelle::service::checkpoints::{CheckpointSettings, Checkpointer};
use passerelle::service::verify_log as verify;
use passerelle::store::audit as stored;
use passerelle::store::Store;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Options.
#[derive(Parser)]
struct Args {
    /// Audited appends for the throughput figure.
    #[arg(long, default_value_t = 20_000)]
    appends: usize,
    /// Concurrent writers (requests in flight).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Entries in the log that is verified and proved on (SQLite): the ten million
    /// `audit verify` is held to.
    #[arg(long, default_value_t = 10_000_000)]
    log_entries: usize,
    /// Entries in the log verified on PostgreSQL, whose rate is set beside SQLite's.
    #[arg(long, default_value_t = 1_000_000)]
    postgres_log_entries: usize,
    /// PostgreSQL for the append and verification figures.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn entry(i: usize) -> NewEntry {
    NewEntry {
        at: OffsetDateTime::now_utc(),
        action: Action::TokenRedemption,
        outcome: Outcome::Released,
        reason: None,
        entry: AuditEntry {
            request_id: format!("req-{i:010}"),
            actor_kind: "airline".into(),
            actor_id: "air_0123456789abcdef".into(),
            agency_id: Some("agy_0123456789abcdef".into()),
            airline_id: Some("air_0123456789abcdef".into()),
            booking_id: Some(format!("bkg_{i:016}")),
            traveller_id: Some(format!("trv_{i:016}")),
            consent_id: Some(format!("cns_{i:016}")),
            token_id: Some(format!("tok_{i:016}")),
            purpose: Some("cancellation".into()),
            event_category: Some("cancellation".into()),
            event_reference: Some("IRR-2026-1201-AF1234".into()),
            flight: Some("AF1234/2026-12-01".into()),
            channel: Some("sms,email".into()),
            policies: Some("permit-operational-release".into()),
            policy_digest: Some("9f2c".repeat(16)),
            ..AuditEntry::default()
        },
    }
}

/// Each of `concurrency` writers appends its share, one transaction per append, as
/// requests do; returns appends per second.
async fn appends_per_second(store: &Store, appends: usize, concurrency: usize) -> f64 {
    let started = Instant::now();
    let per_writer = appends / concurrency;
    let writers = (0..concurrency).map(|w| {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..per_writer {
                let mut tx = store.begin().await.expect("begin");
                let (connection, right_edge) = tx.connection_and_right_edge();
                stored::append_many(connection, right_edge, vec![entry(w * per_writer + i)])
                    .await
                    .expect("append");
                tx.commit().await.expect("commit");
            }
        })
    });
    for writer in writers {
        writer.await.expect("writer");
    }
    (per_writer * concurrency) as f64 / started.elapsed().as_secs_f64()
}

/// Appends `entries` more to `store`'s log, through the same append, 20,000 at a time.
async fn build_log(store: &Store, entries: usize, engine: &str) {
    let started = Instant::now();
    let mut written = 0;
    while written < entries {
        let mut tx = store.begin().await.expect("begin");
        let end = (written + 20_000).min(entries);
        let (connection, right_edge) = tx.connection_and_right_edge();
        let news = (written..end).map(entry).collect();
        stored::append_many(connection, right_edge, news)
            .await
            .expect("append");
        tx.commit().await.expect("commit");
        written = end;
    }
    println!(
        "  {engine}: built a log of {written} more entries in {:.1} s ({:.0} appends/s, 20,000 a call)",
        started.elapsed().as_secs_f64(),
        written as f64 / started.elapsed().as_secs_f64()
    );
}

/// `audit verify` over `store`'s whole log; prints and answers its entries a second.
async fn verify_rate(store: &Store, checkpointer: &Checkpointer, engine: &str) -> f64 {
    let report = verify::verify(store, checkpointer.log_key(), Vec::new())
        .await
        .expect("verify runs");
    assert!(report.finding.is_none(), "{}", report.summary());
    let rate = report.entries as f64 / report.elapsed.as_secs_f64();
    println!(
        "  {engine}: audit verify: {} entries in {:.2} s = {rate:.0} entries/s",
        report.entries,
        report.elapsed.as_secs_f64(),
    );
    rate
}

/// Times a thousand inclusion proofs spread over the checkpoint's tree, read as the
/// broker reads them, and prints their p50 and p99 beside the target.
async fn proof_times(store: &Store, checkpoint: &stored::StoredCheckpoint, engine: &str) {
    let size = checkpoint.tree_size;
    let samples = 1000u64;
    let mut took = Vec::with_capacity(samples as usize);
    for s in 0..samples {
        let index = (s * 7_919 * 104_729) % size;
        let one = Instant::now();
        let proof = stored::inclusion_proof_now(store, index, checkpoint)
            .await
            .expect("proof")
            .expect("covered");
        took.push(one.elapsed());
        assert!(proof.hashes.len() <= 64 - (size - 1).leading_zeros() as usize);
    }
    took.sort();
    let p99 = took[took.len() * 99 / 100];
    println!(
        "  {engine}: inclusion proof on {size} entries: p50 {:.0} µs, p99 {:.0} µs (target under 1,000 µs: {}), worst {:.0} µs (at most {} hashes, {samples} proofs)",
        took[took.len() / 2].as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        if p99 < Duration::from_millis(1) { "met" } else { "MISSED" },
        took[took.len() - 1].as_secs_f64() * 1e6,
        64 - (size - 1).leading_zeros()
    );
}

async fn sqlite(dir: &std::path::Path, name: &str) -> Store {
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", dir.join(name).display()))
        .await
        .expect("sqlite opens");
    store.migrate().await.expect("migrates");
    store
}

/// A store on a fresh schema of the PostgreSQL at `url`, and that schema's URL (to
/// drop it after); `None` when PostgreSQL is unreachable.
async fn postgres(url: &str) -> Option<(Store, String)> {
    let on_schema = support::fresh_postgres_schema(url, "passerelle_bench")
        .await
        .ok()?;
    let store = Store::connect(&on_schema).await.ok()?;
    store.migrate().await.ok()?;
    Some((store, on_schema))
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "audit log benchmark ({} CPUs)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let store = sqlite(dir.path(), "appends.db").await;
    let rate = appends_per_second(&store, args.appends, args.concurrency).await;
    println!(
        "  SQLite (synchronous=FULL): {rate:>9.0} audited appends/s ({} appends, {} concurrent writers)",
        args.appends, args.concurrency
    );
    let single = appends_per_second(&store, args.appends / 20, 1).await;
    println!(
        "  SQLite, one writer at a time: {single:>9.0} audited appends/s (no batching possible)"
    );
    store.close().await;

    let postgres = postgres(&args.postgres_url).await;
    match &postgres {
        Some((store, _)) => {
            let rate = appends_per_second(store, args.appends, args.concurrency).await;
            println!(
                "  PostgreSQL:                {rate:>9.0} audited appends/s ({} appends, {} concurrent writers)",
                args.appends, args.concurrency
            );
        }
        None => println!(
            "  PostgreSQL: unreachable at {}, skipped",
            args.postgres_url
        ),
    }

    let store = sqlite(dir.path(), "log.db").await;
    build_log(&store, args.log_entries, "SQLite").await;
    let key = Jwk::generate("bench");
    let checkpointer = Checkpointer::new(CheckpointSettings::default(), key, Default::default())
        .expect("checkpointer");
    let checkpoint = checkpointer
        .sign_now(&store, OffsetDateTime::now_utc())
        .await
        .expect("checkpoint");
    let rate = verify_rate(&store, &checkpointer, "SQLite").await;
    println!(
        "    target at least 1,000,000 /s: {}",
        if rate >= 1_000_000.0 { "met" } else { "MISSED" }
    );
    if let Some((on_postgres, on_schema)) = postgres {
        // The log of the appends above, grown to its size: read as `audit verify` reads
        // PostgreSQL, beside SQLite's rate.
        let have = stored::size(&mut on_postgres.reader().acquire().await.unwrap())
            .await
            .unwrap() as usize;
        build_log(
            &on_postgres,
            args.postgres_log_entries.saturating_sub(have),
            "PostgreSQL",
        )
        .await;
        let pg_rate = verify_rate(&on_postgres, &checkpointer, "PostgreSQL").await;
        println!(
            "    PostgreSQL beside SQLite: {:.2} (target at least 0.50: {})",
            pg_rate / rate,
            if pg_rate / rate >= 0.5 {
                "met"
            } else {
                "MISSED"
            }
        );
        let on_its_log = checkpointer
            .sign_now(&on_postgres, OffsetDateTime::now_utc())
            .await
            .expect("checkpoint");
        proof_times(&on_postgres, &on_its_log, "PostgreSQL").await;
        on_postgres.close().await;
        support::drop_postgres_schema(&args.postgres_url, &on_schema).await;
    }

    // Inclusion proofs as the broker reads them (on the SQLite file directly).
    proof_times(&store, &checkpoint, "SQLite").await;
    let size = checkpoint.tree_size;
    let mut conn = store.reader().acquire().await.expect("connection");
    let started = Instant::now();
    let proof = stored::consistency_proof(&mut conn, size / 3, size)
        .await
        .expect("proof");
    println!(
        "  consistency proof {} → {size}: {:.0} µs ({} hashes)",
        size / 3,
        started.elapsed().as_secs_f64() * 1e6,
        proof.len()
    );
    let first = stored::root_at(&mut conn, size / 3).await.expect("root");
    assert!(merkle::verify_consistency(
        size / 3,
        size,
        &first,
        &checkpoint.root,
        &proof
    ));
}
