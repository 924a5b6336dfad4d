//! The outside load generator: `wrk` (Debian package `wrk`), driven over loopback
//! from its own process, so that the broker is measured as a client sees it and the
//! `/healthz` ceiling is measured with the same client, the same threads and the same
//! connections.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// wrk's threads and connections, for every measure of a run.
pub const THREADS: usize = 2;
pub const CONNECTIONS: usize = 64;

/// What a run of requests sent once gave.
#[derive(Debug, Clone, Copy, Default)]
pub struct Once {
    /// Answered 2xx.
    pub ok: u64,
    /// Answered otherwise, or not at all.
    pub failed: u64,
    /// From the first request to the last answer.
    pub seconds: f64,
    /// Latency percentiles, in milliseconds (all answers).
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Once {
    /// 2xx answers per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.seconds
    }
}

fn wrk() -> Command {
    let found = Command::new("wrk").arg("--version").output().is_ok();
    assert!(
        found,
        "wrk is not installed: `apt-get install wrk` (.ci/run installs it)"
    );
    Command::new("wrk")
}

/// POSTs each `(path, bearer key, JSON body)` once, `CONNECTIONS` at a time.
pub fn send_once(url: &str, requests: &[(String, String, String)], dir: &Path) -> Once {
    if requests.is_empty() {
        return Once::default();
    }
    let script = dir.join("once.lua");
    std::fs::write(&script, include_str!("once.lua")).unwrap();
    let list = dir.join("requests.tsv");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&list).unwrap());
    for (path, key, body) in requests {
        writeln!(file, "{path}\t{key}\t{body}").unwrap();
    }
    file.flush().unwrap();
    drop(file);
    let marks = dir.join("once-marks");
    let _ = std::fs::remove_dir_all(&marks);
    std::fs::create_dir_all(&marks).unwrap();
    let child = wrk()
        .args(["-t", &THREADS.to_string(), "-c", &CONNECTIONS.to_string()])
        .args(["-d", "3600s", "--timeout", "30s", "-s"])
        .arg(&script)
        .arg(url)
        .arg("--")
        .arg(&list)
        .arg(THREADS.to_string())
        .arg(&marks)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wrk runs");
    // Every thread marks its last answer; wrk then prints its summary on SIGINT.
    let started = Instant::now();
    while (0..THREADS).any(|id| !marks.join(format!("done.{id}")).exists()) {
        assert!(
            started.elapsed() < Duration::from_secs(3600),
            "wrk never got its last answer"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let output = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    let line = out
        .lines()
        .find(|l| l.starts_with("once: "))
        .unwrap_or_else(|| panic!("wrk printed no result: {out}"));
    let field = |name: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    let ok = field("ok") as u64;
    Once {
        ok,
        failed: requests.len() as u64 - ok,
        seconds: field("duration_us") / 1e6,
        p50_ms: field("p50_us") / 1e3,
        p99_ms: field("p99_us") / 1e3,
    }
}

/// What `GET path` answered for `seconds`, with the same threads and connections:
/// requests per second, and how many in all.
pub fn ceiling(url: &str, path: &str, seconds: u64) -> (f64, u64) {
    let output = wrk()
        .args(["-t", &THREADS.to_string(), "-c", &CONNECTIONS.to_string()])
        .args(["-d", &format!("{}s", seconds.max(2))])
        .arg(format!("{url}{path}"))
        .output()
        .expect("wrk runs");
    let out = String::from_utf8_lossy(&output.stdout);
    let rate = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("wrk printed no rate: {out}"));
    // "  123456 requests in 10.00s, 12.34MB read"
    let requests = out
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("wrk printed no count: {out}"));
    (rate, requests)
}
