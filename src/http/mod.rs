//! The HTTP edge: routes, extractors, problem+json errors and middleware.
//!
//! Each resource module exposes its handlers; `routes()` lists every route once, and
//! that one list serves the server and the test that holds `openapi.yaml` to it.

pub mod agency;
pub mod airline;
pub mod audit;
pub mod audit_health;
pub mod batch;
pub mod client_ip;
pub mod consents;
pub mod export;
pub mod extract;
pub mod health;
pub mod idempotency;
pub mod ingest;
pub mod keys;
pub mod messages;
pub mod metrics;
pub mod middleware;
pub mod policies;
pub mod problem;
pub mod proofs;
pub mod ratelimit;
pub mod releases;
pub mod reports;
pub mod tokens;
pub mod traveller;
pub mod use_batch;
pub mod uses;
pub mod withdrawals;

use crate::audit::publish::{CheckpointSettings, Checkpointer};
use crate::audit::{AuditEntry, NewEntry};
use crate::clock::Clock;
use crate::crypto::jws::Jwk;
use crate::crypto::keyring::Keyring;
use crate::policy::engine::Policies;
use crate::store::{self, Store, Tx};
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter};
use axum::Router;
use problem::Problem;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

/// The default cap of a bulk upload's body: room for the default record cap's records.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 32 * 1024 * 1024;

/// Settings of a running broker.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The release policies and the tunables beside them (`policies/`).
    pub policies: Arc<Policies>,
    /// Where relayed messages go.
    pub relay: RelaySettings,
    /// How long a request may take before it is abandoned.
    pub request_timeout: Duration,
    /// The largest request body accepted (bulk uploads excepted).
    pub max_body_bytes: usize,
    /// The largest bulk upload accepted (JSON array, NDJSON, CSV).
    pub max_batch_bytes: usize,
    /// How many records a bulk request may hold, and how many are handled at once.
    pub batch: batch::BatchLimits,
    /// Where the broker's own requests (webhooks, SMS gateway, checkpoint URL) may go.
    pub outbound: crate::outbound::Outbound,
    /// Reverse proxies whose `X-Forwarded-For` names the client (for per-address
    /// rate limits).
    pub trusted_proxies: Vec<client_ip::AddressRange>,
    /// Whether the pages' cookies carry `Secure` (off only with `--insecure-cookies`
    /// or in the demo, for plain http).
    pub secure_cookies: bool,
    /// The broker's public base URL, printed on receipts (withdrawal link).
    pub public_url: String,
    /// The audit log's name and where its checkpoints go.
    pub checkpoints: CheckpointSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            policies: Arc::new(Policies::built_in().expect("the built-in policies are valid")),
            relay: RelaySettings::default(),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 1024 * 1024,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            batch: batch::BatchLimits::default(),
            outbound: crate::outbound::Outbound::default(),
            trusted_proxies: Vec::new(),
            secure_cookies: true,
            public_url: "http://127.0.0.1:8080".into(),
            checkpoints: CheckpointSettings::default(),
        }
    }
}

/// The transports of the relay. A channel without one refuses relayed messages.
#[derive(Debug, Clone, Default)]
pub struct RelaySettings {
    /// SMTP relay for email: `smtp://host:port` (plain, for a local relay),
    /// `smtp://host:port?tls=required` (STARTTLS) or `smtps://host:port`, with
    /// optional `user:password@`.
    pub smtp_url: Option<String>,
    /// The From address of relayed emails.
    pub mail_from: String,
    /// The SMS gateway's URL: the broker POSTs `{"to", "text", "message_id"}` as JSON.
    pub sms_gateway_url: Option<String>,
    /// Sent as `Authorization: Bearer …` to the SMS gateway, if set.
    pub sms_gateway_token: Option<String>,
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
    /// Per-airline rate limits.
    pub limiter: ratelimit::RateLimiter,
    /// Per-address rate limits of the routes that need no API key.
    pub public_limiter: ratelimit::PublicLimiter,
    /// Woken when a message is queued, so the message worker starts at once.
    pub message_wake: tokio::sync::Notify,
    /// Woken when a webhook push is queued, so the webhook worker starts at once.
    pub webhook_wake: tokio::sync::Notify,
    /// Turns of the bulk uploads handled at once (`BatchLimits::parallel`).
    pub uploads: batch::UploadTurns,
    /// Signs and publishes the audit log's checkpoints.
    pub checkpointer: Checkpointer,
    /// Whether audit writes succeed (fail closed).
    pub audit_health: audit_health::AuditHealth,
    /// The verification of the audit log started from the console, if one runs.
    pub verifications: crate::web::verification::Verifications,
    /// Token uses decided on a read, waiting to be taken by the writer together.
    pub use_batches: use_batch::UseBatches,
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
        let checkpointer = Checkpointer::new(
            settings.checkpoints.clone(),
            broker_key.clone(),
            settings.outbound,
        )
        .expect("the log origin and checkpoint URL are checked before the broker starts");
        let uploads = batch::UploadTurns::new(settings.batch.parallel);
        Self(Arc::new(Shared {
            checkpointer,
            audit_health: audit_health::AuditHealth::default(),
            verifications: Default::default(),
            use_batches: Default::default(),
            store,
            keys,
            broker_key,
            clock,
            settings,
            metrics: metrics::Metrics::default(),
            limiter: ratelimit::RateLimiter::default(),
            public_limiter: ratelimit::PublicLimiter::default(),
            message_wake: tokio::sync::Notify::new(),
            webhook_wake: tokio::sync::Notify::new(),
            uploads,
        }))
    }

    /// Appends an audit entry in `tx`, commits, counts the decision, and returns the
    /// entry's index. The change and its entry commit together or not at all.
    pub async fn commit_with_audit(&self, tx: Tx, entry: NewEntry) -> Result<i64, Problem> {
        let indexes = self.commit_with_audits(tx, vec![entry]).await?;
        Ok(indexes[0])
    }

    /// Appends several audit entries in `tx` and commits; the metrics count them only
    /// once they are durable. Returns their indexes, in order.
    ///
    /// Each entry that records a use of a client's data is also queued, in the same
    /// transaction, for the agency's webhook if it registered one (see `uses`).
    pub async fn commit_with_audits(
        &self,
        mut tx: Tx,
        entries: Vec<NewEntry>,
    ) -> Result<Vec<i64>, Problem> {
        let labels: Vec<_> = entries.iter().map(NewEntry::labels).collect();
        let stored = self.append_audits(&mut tx, entries).await?;
        let mut pushes = uses::Pushes::default();
        for entry in &stored {
            pushes.queue(self, &mut tx, entry).await?;
        }
        self.commit_audited(tx).await?;
        let indexes = stored.iter().map(|entry| entry.index).collect();
        for (action, outcome, reason) in labels {
            self.metrics.observe_decision(action, outcome, reason);
        }
        if pushes.queued() {
            self.webhook_wake.notify_one();
        }
        Ok(indexes)
    }

    /// Appends an audit entry in `tx`; when the log cannot be written, the action is
    /// refused (`503 audit-unavailable`) and the broker reports it in `/readyz`.
    pub async fn append_audit(&self, tx: &mut Tx, entry: NewEntry) -> Result<AuditEntry, Problem> {
        let mut stored = self.append_audits(tx, vec![entry]).await?;
        Ok(stored.pop().expect("one entry appended"))
    }

    /// Appends audit entries in `tx`, in order, in one go; fails closed like
    /// [`AppState::append_audit`].
    pub async fn append_audits(
        &self,
        tx: &mut Tx,
        entries: Vec<NewEntry>,
    ) -> Result<Vec<AuditEntry>, Problem> {
        let (connection, right_edge) = tx.connection_and_right_edge();
        store::audit::append_many(connection, right_edge, entries)
            .await
            .map_err(|err| self.audit_health.failed(self.clock.now(), &err))
    }

    /// Commits a transaction holding audit entries, failing closed like
    /// [`AppState::append_audit`].
    pub async fn commit_audited(&self, tx: Tx) -> Result<(), Problem> {
        tx.commit()
            .await
            .map_err(|err| self.audit_health.failed(self.clock.now(), &err))?;
        self.audit_health.succeeded();
        Ok(())
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
    fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::PUT, MethodFilter::PUT, path, handler)
    }
    fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::DELETE, MethodFilter::DELETE, path, handler)
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
        .put("/v1/consents/{id}/delivery", agency::set_record_delivery)
        .put("/v1/agency/delivery", agency::set_delivery)
        .put("/v1/agency/webhook", agency::set_webhook)
        .delete("/v1/agency/webhook", agency::remove_webhook)
        .get("/v1/receipts", agency::receipts)
        .get("/v1/airline/link-domains", airline::link_domains)
        .put("/v1/airline/link-domains", airline::set_link_domains)
        .post("/v1/withdrawals", withdrawals::by_traveller)
        .post("/v1/traveller/uses", traveller::uses)
        .post("/v1/release-tokens", tokens::request)
        .post("/v1/flights/release-tokens", tokens::request_for_flight)
        .post("/v1/releases", releases::redeem)
        .post("/v1/messages", messages::relay)
        .get("/v1/messages/{id}", messages::status)
        .get("/v1/policies", policies::read)
        .get("/v1/audit/entries", audit::list)
        .get("/v1/audit/entries/{index}", audit::read)
        .get("/v1/audit/export", export::export)
        .get("/v1/audit/reports", reports::read)
        .get("/v1/audit/log-key", proofs::log_key)
        .get("/v1/audit/checkpoint", proofs::latest)
        .get("/v1/audit/checkpoints", proofs::list)
        .post("/v1/audit/checkpoints", proofs::sign)
        .get("/v1/audit/proofs/inclusion", proofs::inclusion)
        .get("/v1/audit/proofs/consistency", proofs::consistency)
}

/// The whole application: routes, fallback and middleware, with its state.
pub fn build_router(state: AppState) -> Router {
    let router = routes()
        .router
        .merge(crate::web::routes())
        .fallback(health::no_such_route)
        .layer(axum::extract::DefaultBodyLimit::disable());
    middleware::stack(router, &state).with_state(state)
}
