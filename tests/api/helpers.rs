//! Spawns a real broker on a loopback port against a fresh database, with parties
//! provisioned the way `passerelle party add` does it, and a clock the test moves.

use passerelle::clock::ManualClock;
use passerelle::crypto::jws::Jwk;
use passerelle::crypto::keyring::Keyring;
use passerelle::crypto::seal::DataKey;
use passerelle::router::build_router;
use passerelle::service::parties as provision;
use passerelle::service::{AppState, Settings};
use passerelle::store::Store;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use time::macros::datetime;
use time::OffsetDateTime;

/// The time every test starts at.
pub const START: OffsetDateTime = datetime!(2026-11-24 10:00 UTC);
/// The date of the test flight, a week after `START`.
pub const FLIGHT_DATE: &str = "2026-12-01";
/// The first test agency's IATA number, and the second's.
pub const AGENCY_IATA: &str = "12345675";
pub const OTHER_AGENCY_IATA: &str = "76543213";
/// SHA-256 of the notice text the test traveller was shown.
pub const NOTICE_SHA256: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
/// The traveller's mobile number, as tests look for it.
pub const MOBILE: &str = "+33612345678";
pub const EMAIL: &str = "marie.dupont@example.fr";

/// A party's credentials as a test holds them.
pub struct TestParty {
    pub id: String,
    pub api_key: String,
}

/// An agency with its signing key.
pub struct TestAgency {
    pub party: TestParty,
    pub jwk: Jwk,
}

/// A running broker and the parties provisioned on it.
pub struct TestApp {
    pub url: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub store: Store,
    pub agency: TestAgency,
    pub other_agency: TestAgency,
    pub airline: TestParty,
    pub other_airline: TestParty,
    pub officer: TestParty,
    /// Path of the SQLite file, when on SQLite.
    pub sqlite_path: Option<std::path::PathBuf>,
    /// The database URL, for a second broker on the same database.
    pub database_url: String,
    /// The keyring file the broker reads (and rereads after a rotation).
    pub keyring_path: std::path::PathBuf,
    /// The state the broker runs with (for the sweeper).
    pub state: AppState,
    _dir: Option<tempfile::TempDir>,
    _keys_dir: tempfile::TempDir,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestApp {
    /// A broker on a fresh database of `engine` with these settings; `None` when
    /// PostgreSQL is not reachable outside CI.
    pub async fn with(engine: Engine, settings: Settings) -> Option<TestApp> {
        match engine {
            Engine::Sqlite => Some(Self::sqlite_with(settings).await),
            Engine::Postgres => Self::postgres_with(settings).await,
        }
    }

    /// A broker on a fresh SQLite file.
    pub async fn sqlite() -> TestApp {
        Self::sqlite_with(test_settings()).await
    }

    /// A broker on a fresh SQLite file, with these settings.
    pub async fn sqlite_with(settings: Settings) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("passerelle.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let store = Store::connect(&url).await.expect("sqlite opens");
        let mut app = Self::spawn(store, settings, url).await;
        app.sqlite_path = Some(path);
        app._dir = Some(dir);
        app
    }

    /// A broker on a fresh PostgreSQL schema, or `None` (with the reason printed) when
    /// PostgreSQL is not reachable outside CI. Under `CI=true` it must be reachable.
    pub async fn postgres() -> Option<TestApp> {
        Self::postgres_with(test_settings()).await
    }

    /// A broker on a fresh PostgreSQL schema, with these settings.
    pub async fn postgres_with(settings: Settings) -> Option<TestApp> {
        let base = postgres_url();
        let admin = match Store::connect(&base).await {
            Ok(store) => store,
            Err(err) => {
                skip_unless_ci(&format!("PostgreSQL at {base} is unreachable ({err})"));
                return None;
            }
        };
        drop_stale_schemas(&admin).await;
        let schema = format!(
            "passerelle_t_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            &passerelle::domain::ids::new_id("x")[2..10]
        );
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(admin.reader())
            .await
            .expect("create schema");
        admin.close().await;
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        let store = Store::connect(&url).await.expect("postgres opens");
        Some(Self::spawn(store, settings, url).await)
    }

    /// Another broker process's worth (its own pools and state, the same keys) on
    /// this app's database; returns its base URL and state.
    pub async fn another_broker(&self) -> (String, AppState) {
        let store = Store::connect(&self.database_url)
            .await
            .expect("database opens");
        store.migrate().await.expect("migrations run");
        let keys = Keyring::from_file(&self.keyring_path).unwrap();
        let state = AppState::new(
            store,
            keys,
            self.state.broker_key.clone(),
            self.clock.clone(),
            self.state.settings.clone(),
        );
        let url = serve(state.clone()).await;
        (url, state)
    }

    async fn spawn(store: Store, settings: Settings, database_url: String) -> TestApp {
        store.migrate().await.expect("migrations run");
        let clock = Arc::new(ManualClock::new(START));
        let agency_jwk = Jwk::generate("k1");
        let other_jwk = Jwk::generate("b1");
        let agency = provision::add_agency(
            &store,
            AGENCY_IATA,
            "Voyages Dupuis",
            &[agency_jwk.public()],
            START,
        )
        .await
        .unwrap();
        let other = provision::add_agency(
            &store,
            OTHER_AGENCY_IATA,
            "Other Travel",
            &[other_jwk.public()],
            START,
        )
        .await
        .unwrap();
        let airline = provision::add_airline(&store, "AF", "Air France", START)
            .await
            .unwrap();
        let other_airline = provision::add_airline(&store, "KL", "KLM", START)
            .await
            .unwrap();
        let officer = provision::add_officer(&store, "Claire Martin", START)
            .await
            .unwrap();

        let keys_dir = tempfile::tempdir().expect("temp dir");
        let keyring_path = keys_dir.path().join("data.key");
        std::fs::write(&keyring_path, DataKey::generate_base64()).unwrap();
        let keys = Keyring::from_file(&keyring_path).unwrap();
        let broker_key = Jwk::generate("broker-test");
        let state = AppState::new(store.clone(), keys, broker_key, clock.clone(), settings);
        let url = serve(state.clone()).await;
        let party = |p: provision::Provisioned| TestParty {
            id: p.party.id,
            api_key: p.api_key,
        };
        TestApp {
            url,
            client: reqwest::Client::new(),
            clock,
            store,
            agency: TestAgency {
                party: party(agency),
                jwk: agency_jwk,
            },
            other_agency: TestAgency {
                party: party(other),
                jwk: other_jwk,
            },
            airline: party(airline),
            other_airline: party(other_airline),
            officer: party(officer),
            sqlite_path: None,
            database_url,
            keyring_path,
            state,
            _dir: None,
            _keys_dir: keys_dir,
        }
    }

    /// PUTs JSON with a bearer key.
    pub async fn put(&self, path: &str, key: &str, body: &Value) -> Response {
        self.client
            .put(format!("{}{path}", self.url))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// POSTs JSON with a bearer key.
    pub async fn post(&self, path: &str, key: &str, body: &Value) -> Response {
        self.client
            .post(format!("{}{path}", self.url))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// POSTs JSON with a bearer key and reads the JSON answer, whatever its status.
    pub async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
        body: &Value,
    ) -> T {
        self.post(path, key, body)
            .await
            .json()
            .await
            .expect("a JSON answer")
    }

    /// Asks for the tokens of a whole flight (`POST /v1/flights/release-tokens`).
    pub async fn flight_tokens(&self, key: &str, request: &Value) -> Response {
        self.post("/v1/flights/release-tokens", key, request).await
    }

    /// The tokens of a whole flight, as JSON, whatever the status.
    pub async fn flight_tokens_json(&self, key: &str, request: &Value) -> Value {
        self.post_json("/v1/flights/release-tokens", key, request)
            .await
    }

    /// GETs with a bearer key and reads the JSON answer, whatever its status.
    pub async fn get_json(&self, path: &str, key: &str) -> Value {
        self.get(path, key)
            .await
            .json()
            .await
            .expect("a JSON answer")
    }

    /// POSTs a raw body of some media type with a bearer key.
    pub async fn post_raw(
        &self,
        path: &str,
        key: &str,
        content_type: &str,
        body: String,
    ) -> Response {
        self.client
            .post(format!("{}{path}", self.url))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    /// GETs with a bearer key.
    pub async fn get(&self, path: &str, key: &str) -> Response {
        self.client
            .get(format!("{}{path}", self.url))
            .bearer_auth(key)
            .send()
            .await
            .expect("request sent")
    }

    /// A valid statement for the test agency: booking ABC123 on AF1234, Marie Dupont,
    /// consenting to cancellation and delay notices from AF.
    pub fn statement(&self) -> Value {
        json!({
            "schema_version": "passerelle.consent.v1",
            "record_id": "CRM-0001",
            "agency": AGENCY_IATA,
            "jurisdiction": "FR",
            "booking": {
                "record_locator": "ABC123",
                "segments": [
                    {"carrier": "AF", "flight_number": "1234", "date": FLIGHT_DATE},
                    {"carrier": "KL", "flight_number": "1002", "date": FLIGHT_DATE}
                ]
            },
            "traveller": {"surname": "Dupont", "given_name": "Marie", "mobile": MOBILE, "email": EMAIL},
            "decision": "given",
            "consent": {
                "purposes": ["cancellation", "delay"],
                "data_categories": ["mobile", "email"],
                "recipients": ["AF"],
                "notice": {"version": "notice-2026-03", "language": "fr", "sha256": NOTICE_SHA256},
                "collected_at": "2026-11-20T09:30:00Z",
                "collection_method": "signed_form"
            }
        })
    }

    /// A statement for another traveller of the same booking (record id, names and
    /// contacts changed).
    pub fn statement_for(&self, record_id: &str, surname: &str, mobile: &str) -> Value {
        let mut s = self.statement();
        s["record_id"] = json!(record_id);
        s["traveller"]["surname"] = json!(surname);
        s["traveller"]["mobile"] = json!(mobile);
        s["traveller"]["email"] = json!(format!("{}@example.fr", surname.to_lowercase()));
        s
    }

    /// Signs a statement with a key, as `passerelle sign` does.
    pub fn signed(&self, jwk: &Jwk, statement: &Value) -> Value {
        passerelle::cli::sign_statement(jwk, &statement.to_string()).expect("statement signs")
    }

    /// Uploads a statement signed by the test agency.
    pub async fn upload(&self, statement: &Value) -> Response {
        self.post(
            "/v1/consents",
            &self.agency.party.api_key,
            &self.signed(&self.agency.jwk, statement),
        )
        .await
    }

    /// Uploads the default statement and returns the receipt.
    pub async fn upload_default(&self) -> Value {
        let response = self.upload(&self.statement()).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    /// AF's request for Marie Dupont on AF1234 about its cancellation, declared first.
    pub async fn token_request(&self) -> Value {
        json!({
            "record_locator": "ABC123",
            "traveller": {"surname": "DUPONT", "given_name": "MARIE"},
            "flight": {"carrier": "AF", "flight_number": "1234", "date": FLIGHT_DATE},
            "purpose": "cancellation",
            "disruption_id": self.disruption().await
        })
    }

    /// AF's request for every traveller of AF1234, for `purpose`, under its
    /// cancellation.
    pub async fn flight_request(&self, purpose: &str) -> Value {
        json!({
            "flight": {"carrier": "AF", "flight_number": "1234", "date": FLIGHT_DATE},
            "purpose": purpose,
            "disruption_id": self.disruption().await
        })
    }

    /// The id of AF's cancellation of AF1234, declared on first use.
    pub async fn disruption(&self) -> String {
        let flight = json!({"carrier": "AF", "flight_number": "1234", "date": FLIGHT_DATE});
        self.declared(&self.airline.api_key, &flight).await
    }

    /// The id of the cancellation of `flight` declared with `key`, without telling its
    /// travellers: declared now, or the one declared before under the same reference.
    pub async fn declared(&self, key: &str, flight: &Value) -> String {
        let reference = format!(
            "IRR-{}{}-{}",
            flight["carrier"].as_str().unwrap(),
            flight["flight_number"].as_str().unwrap(),
            flight["date"].as_str().unwrap()
        );
        let response = self
            .post(
                "/v1/disruptions",
                key,
                &json!({
                    "flights": [flight],
                    "category": "cancellation",
                    "reference": reference,
                    "occurred_at": "2026-11-24T09:00:00Z",
                    // The token routes are what these tests ask with.
                    "tell": false
                }),
            )
            .await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        match status {
            StatusCode::CREATED => body["id"].as_str().unwrap().to_string(),
            StatusCode::CONFLICT => body["disruption_id"].as_str().unwrap().to_string(),
            other => panic!("the disruption is declared: {other} {body}"),
        }
    }

    /// Asks for a token with a key.
    pub async fn request_token(&self, key: &str, request: &Value) -> Response {
        self.post("/v1/release-tokens", key, request).await
    }

    /// Uploads the default consent and returns AF's token for it.
    pub async fn granted_token(&self) -> String {
        self.upload_default().await;
        let response = self
            .request_token(&self.airline.api_key, &self.token_request().await)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_string()
    }

    /// The agency withdraws its first record (the traveller asked it to).
    pub async fn withdraw_first_record(&self) {
        let listed = self
            .get_json("/v1/consents", &self.agency.party.api_key)
            .await;
        let id = listed["records"][0]["consent_id"].as_str().unwrap();
        let withdrawn = self
            .post(
                &format!("/v1/consents/{id}/withdrawal"),
                &self.agency.party.api_key,
                &json!({}),
            )
            .await;
        assert_eq!(withdrawn.status(), StatusCode::OK);
    }

    /// Sends `request` while a transaction of the test's own holds the writer, and
    /// withdraws the record `consent_id` in it once the request waits for the writer:
    /// the request reads and decides before the withdrawal and writes after it.
    pub async fn withdrawn_while_waiting<F: std::future::Future>(
        &self,
        consent_id: &str,
        request: F,
    ) -> F::Output {
        let held = self.store.begin().await.unwrap();
        let withdraw = async {
            let mut held = held;
            while self.store.writers_queued() == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            sqlx::query("UPDATE consents SET withdrawn_at = $1 WHERE id = $2")
                .bind(passerelle::store::to_millis(passerelle::clock::Clock::now(
                    &*self.clock,
                )))
                .bind(consent_id)
                .execute(&mut *held)
                .await
                .unwrap();
            held.commit().await.unwrap();
        };
        let (answer, ()) = tokio::join!(request, withdraw);
        answer
    }

    /// Redeems a token with a key.
    pub async fn redeem(&self, key: &str, token: &str) -> Response {
        self.post("/v1/releases", key, &json!({"token": token}))
            .await
    }

    /// Signs a checkpoint of the log as it is now, as an officer does (reading a proof
    /// or an export never signs one).
    pub async fn checkpoint(&self) -> Value {
        let response = self
            .post("/v1/audit/checkpoints", &self.officer.api_key, &json!({}))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "a checkpoint is signed"
        );
        response.json().await.unwrap()
    }

    /// Every audit entry, read as the officer.
    pub async fn audit_entries(&self) -> Vec<Value> {
        let response = self
            .get("/v1/audit/entries?limit=1000", &self.officer.api_key)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["entries"].as_array().unwrap().clone()
    }
}

/// The settings of a test broker: the shipped defaults, except that its outbound
/// requests may reach the loopback peers of `fakes` (as `--allow-insecure-outbound`)
/// and its cookies go over plain http (as `--insecure-cookies`), as in the demo.
pub fn test_settings() -> Settings {
    Settings {
        outbound: passerelle::outbound::Outbound::allow_insecure(),
        secure_cookies: false,
        ..Settings::default()
    }
}

/// For a test that cannot run on this machine (a service or a tool is missing): a
/// failure under `CI=true`, where `.ci/run` provides everything; otherwise a note on
/// why it is skipped.
pub fn skip_unless_ci(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but {why}");
    }
    eprintln!("skipping a test: {why}; set CI=true to make this a failure");
}

/// The tokens of a flight's token answer, in its order.
pub fn granted_tokens(answer: &Value) -> Vec<String> {
    answer["granted"]
        .as_array()
        .expect("the answer lists its grants")
        .iter()
        .map(|g| {
            g["token"]
                .as_str()
                .expect("a grant has its token")
                .to_string()
        })
        .collect()
}

/// Checks that a response is a problem of the given type and status, and returns it.
pub async fn assert_problem(response: Response, status: u16, slug: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["type"],
        format!("urn:passerelle:problem:{slug}"),
        "{body}"
    );
    assert_eq!(body["status"], status);
    assert!(
        body["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "problem carries the request id"
    );
    body
}

/// Serves a broker's state on a loopback port; returns its base URL.
async fn serve(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let service =
            build_router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service).await.expect("server runs")
    });
    url
}

/// The PostgreSQL server the tests use.
pub fn postgres_url() -> String {
    std::env::var("PASSERELLE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Drops test schemas left by test processes that are gone, once per process.
async fn drop_stale_schemas(admin: &Store) {
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| crate::broker::drop_dead_schemas(admin, "passerelle_t"))
        .await;
}

/// A fresh [`Database`] of `engine` holding the broker's tables and nothing else, for
/// the tests that ask an engine how it plans the broker's statements; `None` when
/// PostgreSQL is not reachable outside CI.
pub async fn migrated_database(engine: Engine) -> Option<Database> {
    let database = database(engine).await?;
    let store = Store::connect(&database.url)
        .await
        .expect("the database opens");
    let opened = match engine {
        Engine::Sqlite => passerelle::store::Engine::Sqlite,
        Engine::Postgres => passerelle::store::Engine::Postgres,
    };
    assert_eq!(store.engine(), opened);
    store.migrate().await.expect("migrations run");
    store.close().await;
    Some(database)
}

/// A connection to a fresh PostgreSQL schema holding the broker's tables (see
/// [`migrated_database`]; the test processes' schemas are swept when the next run
/// starts).
pub async fn migrated_postgres_schema() -> Option<sqlx::postgres::PgConnection> {
    use sqlx::Connection;
    let database = migrated_database(Engine::Postgres).await?;
    Some(
        sqlx::postgres::PgConnection::connect(&database.url)
            .await
            .expect("postgres opens"),
    )
}

/// The rows one node of an `EXPLAIN (ANALYZE, FORMAT JSON)` plan read over all its
/// loops: those it passed on and those its filters removed.
pub fn rows_read(node: &Value) -> f64 {
    let per_loop = [
        "Actual Rows",
        "Rows Removed by Filter",
        "Rows Removed by Index Recheck",
    ]
    .iter()
    .map(|field| node[*field].as_f64().unwrap_or(0.0))
    .sum::<f64>();
    per_loop * node["Actual Loops"].as_f64().unwrap_or(1.0)
}

/// Calls `f` on every node of a plan PostgreSQL answered (`EXPLAIN (FORMAT JSON)`).
pub fn visit_plan(value: &Value, f: &mut impl FnMut(&Value)) {
    let node = value.get("Plan").unwrap_or(value);
    f(node);
    for child in node["Plans"].as_array().into_iter().flatten() {
        visit_plan(child, f);
    }
}

/// A database for broker processes (the real binary): a SQLite file, or a fresh
/// PostgreSQL schema, and a directory for the broker's other files.
pub struct Database {
    pub url: String,
    pub dir: tempfile::TempDir,
}

/// A fresh [`Database`] of `engine`; `None` when PostgreSQL is not reachable outside CI.
pub async fn database(engine: Engine) -> Option<Database> {
    let dir = tempfile::tempdir().unwrap();
    let url = match engine {
        Engine::Sqlite => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("passerelle.db").display()
        ),
        Engine::Postgres => {
            match crate::broker::fresh_postgres_schema(&postgres_url(), "passerelle_t").await {
                Ok(url) => url,
                Err(err) => {
                    skip_unless_ci(&format!("PostgreSQL is unreachable ({err})"));
                    return None;
                }
            }
        }
    };
    Some(Database { url, dir })
}

/// The two engines, for scenarios that build their own broker.
#[derive(Debug, Clone, Copy)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Declares each listed scenario twice, handing it the engine to build its broker on
/// (for scenarios that need their own settings).
#[macro_export]
macro_rules! on_both_engines_with_engine {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::helpers::Engine::Sqlite).await
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::helpers::Engine::Postgres).await
            })*
        }
    };
}

/// Declares each listed scenario twice: once on SQLite, once on PostgreSQL.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::helpers::TestApp::sqlite().await).await
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                if let Some(app) = $crate::helpers::TestApp::postgres().await {
                    super::$name(app).await
                }
            })*
        }
    };
}

/// The audit log's head held by a PostgreSQL transaction of the test's own, as another
/// broker's long audited write would hold it: every audited write, at any broker, waits
/// behind it. It lets a test bring concurrent requests to the same point before any of
/// them can commit.
pub struct HeldLog {
    conn: sqlx::AnyConnection,
    pid: i32,
}

impl HeldLog {
    /// Takes the head on `app`'s database (PostgreSQL only).
    pub async fn take(app: &TestApp) -> HeldLog {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::AnyConnection::connect(&app.database_url)
            .await
            .expect("a connection of the test's own");
        conn.execute("BEGIN").await.unwrap();
        conn.execute("UPDATE audit_head SET size = size WHERE id = 1")
            .await
            .unwrap();
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        HeldLog { conn, pid }
    }

    /// Waits until `count` transactions wait behind the head (directly, or behind one
    /// that does), then lets them go.
    pub async fn release_once_waited_on(mut self, app: &TestApp, count: i64) {
        use sqlx::Executor;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM pg_stat_activity a \
                 WHERE $1 = ANY(pg_blocking_pids(a.pid)) \
                 OR EXISTS (SELECT 1 FROM unnest(pg_blocking_pids(a.pid)) AS b(pid) \
                            WHERE $1 = ANY(pg_blocking_pids(b.pid)))",
            )
            .bind(self.pid)
            .fetch_one(app.store.reader())
            .await
            .unwrap();
            if waiting >= count {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{waiting} of {count} writes reached the log's head"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.conn.execute("ROLLBACK").await.unwrap();
    }
}
