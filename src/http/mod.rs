//! The HTTP edge: routes, extractors, problem+json errors and middleware.
//!
//! Each resource module exposes its handlers; `routes()` lists every route once, and
//! that one list serves the server and the test that holds `openapi.yaml` to it.

pub mod audit;
pub mod batch;
pub mod consents;
pub mod extract;
pub mod health;
pub mod idempotency;
pub mod ingest;
pub mod keys;
pub mod metrics;
pub mod middleware;
pub mod problem;
pub mod releases;
pub mod tokens;
pub mod withdrawals;

use crate::audit::NewEntry;
use crate::clock::Clock;
use crate::crypto::jws::Jwk;
use crate::crypto::keyring::Keyring;
use crate::store::{self, Store, Tx};
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter};
use axum::Router;
use problem::Problem;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

/// Tunables of a running broker.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a release token stays valid.
    pub token_ttl: Duration,
    /// How many days an airline may keep a released contact (stated in the release).
    pub release_retention_days: u32,
    /// How long a request may take before it is abandoned.
    pub request_timeout: Duration,
    /// The largest request body accepted (bulk uploads excepted).
    pub max_body_bytes: usize,
    /// The largest bulk upload accepted (JSON array, NDJSON, CSV).
    pub max_batch_bytes: usize,
    /// Days a record's contact is kept after the last flight of its booking.
    pub contact_retention_days: u32,
    /// The broker's public base URL, printed on receipts (withdrawal link).
    pub public_url: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            token_ttl: Duration::from_secs(15 * 60),
            release_retention_days: 30,
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 1024 * 1024,
            max_batch_bytes: 64 * 1024 * 1024,
            contact_retention_days: 30,
            public_url: "http://127.0.0.1:8080".into(),
        }
    }
}

/// What every handler shares.
pub struct Shared {
    /// The database.
    pub store: Store,
    /// The keys that seal personal data and key the blind indexes.
    pub keys: Keyring,
    /// The broker's Ed25519 key, which countersigns consent receipts.
    pub broker_key: Jwk,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Tunables.
    pub settings: Settings,
    /// Counters for `/metrics`.
    pub metrics: metrics::Metrics,
}

/// The application state, cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Wraps the shared parts.
    pub fn new(
        store: Store,
        keys: Keyring,
        broker_key: Jwk,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Self {
        Self(Arc::new(Shared {
            store,
            keys,
            broker_key,
            clock,
            settings,
            metrics: metrics::Metrics::default(),
        }))
    }

    /// Appends an audit entry in `tx`, commits, counts the decision, and returns the
    /// entry's index. The change and its entry commit together or not at all.
    pub async fn commit_with_audit(&self, mut tx: Tx, entry: NewEntry) -> Result<i64, Problem> {
        let (action, outcome, reason) = entry.labels();
        let index = store::audit::append(&mut tx, entry).await?;
        tx.commit().await?;
        self.metrics.observe_decision(action, outcome, reason);
        Ok(index)
    }

    /// Appends several audit entries in `tx` and commits; the metrics count them only
    /// once they are durable. Returns their indexes, in order.
    pub async fn commit_with_audits(
        &self,
        mut tx: Tx,
        entries: Vec<NewEntry>,
    ) -> Result<Vec<i64>, Problem> {
        let mut labels = Vec::with_capacity(entries.len());
        let mut indexes = Vec::with_capacity(entries.len());
        for entry in entries {
            labels.push(entry.labels());
            indexes.push(store::audit::append(&mut tx, entry).await?);
        }
        tx.commit().await?;
        for (action, outcome, reason) in labels {
            self.metrics.observe_decision(action, outcome, reason);
        }
        Ok(indexes)
    }

    /// Records a refusal in the audit log (discarding any uncommitted change in `tx`)
    /// and returns the problem to answer with.
    pub async fn refuse(&self, tx: Tx, entry: NewEntry, problem: Problem) -> Problem {
        tx.rollback().await.ok();
        let recorded = async {
            let tx = self.store.begin().await?;
            self.commit_with_audit(tx, entry).await
        };
        match recorded.await {
            Ok(_) => problem,
            Err(failure) => failure,
        }
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The routes, recorded as they are added.
pub struct Routes {
    router: Router<AppState>,
    table: Vec<(Method, &'static str)>,
}

impl Routes {
    fn new() -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
        }
    }
    fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::GET, MethodFilter::GET, path, handler)
    }
    fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::POST, MethodFilter::POST, path, handler)
    }
    fn add<H: Handler<T, AppState>, T: 'static>(
        mut self,
        method: Method,
        filter: MethodFilter,
        path: &'static str,
        handler: H,
    ) -> Self {
        self.router = self.router.route(path, on(filter, handler));
        self.table.push((method, path));
        self
    }
    /// Every (method, path) served.
    pub fn table(&self) -> &[(Method, &'static str)] {
        &self.table
    }
}

/// Every route of the broker.
pub fn routes() -> Routes {
    Routes::new()
        .get("/healthz", health::healthz)
        .get("/readyz", health::readyz)
        .get("/metrics", health::metrics)
        .get("/.well-known/jwks.json", keys::jwks)
        .post("/v1/consents", consents::upload)
        .get("/v1/consents", consents::list)
        .post("/v1/consents/batch", batch::upload)
        .post("/v1/consents/ssr", batch::import_ssr)
        .get("/v1/consents/{id}", consents::read)
        .get("/v1/consents/{id}/receipt", consents::receipt)
        .get("/v1/consents/{id}/ssr", consents::export_ssr)
        .post("/v1/consents/{id}/withdrawal", withdrawals::by_agency)
        .post("/v1/withdrawals", withdrawals::by_traveller)
        .post("/v1/release-tokens", tokens::request)
        .post("/v1/releases", releases::redeem)
        .get("/v1/audit/entries", audit::list)
}

/// The whole application: routes, fallback and middleware, with its state.
pub fn build_router(state: AppState) -> Router {
    let router = routes()
        .router
        .fallback(health::no_such_route)
        .layer(axum::extract::DefaultBodyLimit::disable());
    middleware::stack(router, &state).with_state(state)
}
