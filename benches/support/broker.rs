//! The real broker binary as the benchmarks and the crash tests drive it: started on
//! loopback, asked for its memory, killed. Shared by `benches/*.rs` and
//! `tests/api/crash.rs` (each through `#[path]`), which use different parts of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A broker process.
pub struct Broker {
    /// The process.
    pub child: Child,
    /// Its base URL.
    pub url: String,
    /// Its data directory (the demo's files are in `passerelle-demo/` below it).
    pub data_dir: PathBuf,
}

impl Broker {
    /// `serve --demo` on a free port of loopback, with `extra` arguments; returns once
    /// the demo printed its address.
    pub fn demo(exe: &str, data_dir: &Path, database_url: &str, extra: &[&str]) -> Broker {
        let mut child = Command::new(exe)
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--database-url",
                database_url,
                "serve",
                "--demo",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .env("PASSERELLE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the broker starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = loop {
            let line = lines.next().expect("the demo prints its address").unwrap();
            if let Some(url) = line.strip_prefix("Passerelle demo is ready at ") {
                break url.trim().to_string();
            }
        };
        // Keep reading what it prints, so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Broker {
            child,
            url,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// The demo's folder.
    pub fn demo_dir(&self) -> PathBuf {
        self.data_dir.join("passerelle-demo")
    }

    /// A key the demo wrote to `demo.env` (`AGENCY_KEY`…); fresh at each start.
    pub fn key(&self, name: &str) -> String {
        let env = std::fs::read_to_string(self.demo_dir().join("demo.env")).unwrap();
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .expect("the demo wrote the key")
            .to_string()
    }

    /// Resident and peak resident memory in kB, from /proc.
    pub fn memory(&self) -> (u64, u64) {
        let field = self.status();
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Resident memory in kB by kind, from /proc: anonymous (the heap and the threads'
    /// stacks: what the broker holds or its allocator keeps), file-backed and shared
    /// (pages of files it maps, SQLite's WAL index among them, which the kernel may
    /// drop or share); and its threads, each a stack and often an allocator arena.
    pub fn memory_parts(&self) -> (u64, u64, u64, u64) {
        let field = self.status();
        (
            field("RssAnon:"),
            field("RssFile:"),
            field("RssShmem:"),
            field("Threads:"),
        )
    }

    /// A reader of the broker's `/proc/PID/status` as it is now: a field's value in kB.
    fn status(&self) -> impl Fn(&str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        move |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        }
    }

    /// SIGKILL: no shutdown, no flush, no final checkpoint.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A name made of letters only (names take no digits), distinct for each `i`.
pub fn letters(mut i: usize) -> String {
    let mut s = String::new();
    loop {
        s.push((b'a' + (i % 26) as u8) as char);
        i /= 26;
        if i == 0 {
            return s;
        }
    }
}

/// A fresh schema `<prefix>_<pid>_<random>` on the PostgreSQL at `base`, and the URL
/// that opens it (its `search_path`). Schemas of the same prefix that processes now
/// gone left behind (a run that was killed) are dropped first.
pub async fn fresh_postgres_schema(
    base: &str,
    prefix: &str,
) -> Result<String, passerelle::store::StoreError> {
    let admin = passerelle::store::Store::connect(base).await?;
    drop_dead_schemas(&admin, prefix).await;
    let schema = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        &passerelle::domain::ids::new_id("x")[2..12]
    );
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(admin.reader())
        .await?;
    admin.close().await;
    let separator = if base.contains('?') { '&' } else { '?' };
    Ok(format!(
        "{base}{separator}options=-c%20search_path%3D{schema}"
    ))
}

/// Drops the schema that `url` (from [`fresh_postgres_schema`]) opens, once a run is
/// done with it: a full disruption run leaves gigabytes.
pub async fn drop_postgres_schema(base: &str, url: &str) {
    let Some((_, schema)) = url.split_once("search_path%3D") else {
        return;
    };
    let Ok(admin) = passerelle::store::Store::connect(base).await else {
        return;
    };
    if let Err(err) = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(admin.reader())
        .await
    {
        eprintln!("schema {schema} was left behind: {err}");
    }
    admin.close().await;
}

/// Drops the schemas `<prefix>_<pid>_…` whose process is gone: those of a run that was
/// killed before it could drop its own.
pub async fn drop_dead_schemas(admin: &passerelle::store::Store, prefix: &str) {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)")
            .bind(format!("{prefix}_"))
            .fetch_all(admin.reader())
            .await
            .unwrap_or_default();
    for (schema,) in rows {
        let pid = schema[prefix.len() + 1..]
            .split('_')
            .next()
            .and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(admin.reader())
                .await
                .ok();
        }
    }
}

/// Posts signed statements to `/v1/consents/batch` as NDJSON (`query`: `""` or
/// `"?atomic=true"`).
pub fn upload_batch(
    client: &reqwest::Client,
    broker: &Broker,
    signed: &[serde_json::Value],
    query: &str,
) -> reqwest::RequestBuilder {
    let body: String = signed.iter().map(|s| s.to_string() + "\n").collect();
    client
        .post(format!("{}/v1/consents/batch{query}", broker.url))
        .bearer_auth(broker.key("AGENCY_KEY"))
        .header("content-type", "application/x-ndjson")
        .body(body)
}

/// Signs in to the pages with an API key, as a browser does (the form's token, then
/// the form), with a client that follows no redirect; returns the session cookie
/// (`passerelle_session=…`).
pub async fn page_session(client: &reqwest::Client, url: &str, key: &str) -> String {
    let form = client.get(format!("{url}/sign-in")).send().await.unwrap();
    let token_cookie = form.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let token = token_cookie.split_once('=').unwrap().1.to_string();
    let signed_in = client
        .post(format!("{url}/sign-in"))
        .header("cookie", &token_cookie)
        .form(&[("key", key), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303, "signed in");
    signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("passerelle_session="))
        .expect("a session cookie")
}

/// The kernel's clock ticks in /proc's CPU times (USER_HZ: 100 on Linux, whatever the
/// kernel's own tick).
const USER_HZ: f64 = 100.0;

/// CPU seconds of process `pid` so far (user and system, every thread), from
/// `/proc/PID/stat`; `None` once it is gone.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name may hold spaces: the fields after it are counted from its ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of the line (utime, stime) are the 12th and 13th after the name.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / USER_HZ)
}

/// CPU seconds of every PostgreSQL server process on this machine so far (its backends
/// are processes of their own, named `postgres`): beside the broker's, what a release
/// costs the database. Processes that ended since are not counted, so compare two
/// readings across a phase whose connections stay open (the broker's pool).
pub fn postgres_cpu_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "postgres")
        })
        .filter_map(process_cpu_seconds)
        .sum()
}

/// CPU seconds used so far by the broker and by the database's own server processes
/// (none for SQLite, which runs inside the broker): read before and after a phase, the
/// difference over the phase's requests is what each one costs the machine, beside
/// its wall-clock rate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub broker: f64,
    pub database: f64,
}

impl Cpu {
    /// The readings now, of broker `pid` and, when `postgres`, of PostgreSQL.
    pub fn read(pid: u32, postgres: bool) -> Cpu {
        Cpu {
            broker: process_cpu_seconds(pid).unwrap_or(0.0),
            database: if postgres {
                postgres_cpu_seconds()
            } else {
                0.0
            },
        }
    }

    /// Microseconds of each of `requests` since `before`, as `broker µs (+ database µs)`.
    pub fn per_request_since(&self, before: Cpu, requests: u64) -> String {
        let n = requests.max(1) as f64;
        let broker = (self.broker - before.broker) * 1e6 / n;
        let database = (self.database - before.database) * 1e6 / n;
        if database > 0.0 {
            format!("{broker:.0} µs in the broker + {database:.0} µs in PostgreSQL")
        } else {
            format!("{broker:.0} µs in the broker")
        }
    }
}
