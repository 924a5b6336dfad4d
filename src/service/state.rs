//! What every use case shares: the database, the keys, the clock, the settings and the
//! broker's running parts (limits, turns, wake-ups), behind one cheap handle.

use super::audit_health::AuditHealth;
use super::checkpoints::Checkpointer;
use super::ingest::turns::UploadTurns;
use super::ratelimit;
use super::settings::Settings;
use super::use_batch::UseBatches;
use super::verifications::Verifications;
use crate::clock::Clock;
use crate::crypto::jws::Jwk;
use crate::crypto::keyring::Keyring;
use crate::store::Store;
use std::ops::Deref;
use std::sync::Arc;

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
    pub metrics: crate::metrics::Metrics,
    /// Per-airline rate limits.
    pub limiter: ratelimit::RateLimiter,
    /// Per-address rate limits of the routes that need no API key.
    pub public_limiter: ratelimit::PublicLimiter,
    /// Woken when a message is queued, so the message worker starts at once.
    pub message_wake: tokio::sync::Notify,
    /// Woken when a webhook push is queued, so the webhook worker starts at once.
    pub webhook_wake: tokio::sync::Notify,
    /// Turns of the bulk uploads handled at once (`BatchLimits::parallel`).
    pub uploads: UploadTurns,
    /// Signs and publishes the audit log's checkpoints.
    pub checkpointer: Checkpointer,
    /// Whether audit writes succeed (fail closed).
    pub audit_health: AuditHealth,
    /// The verification of the audit log started from the console, if one runs.
    pub verifications: Verifications,
    /// Token uses decided on a read, waiting to be taken by the writer together.
    pub use_batches: UseBatches,
    /// The airlines' schedule counts their disruption budgets are a share of.
    pub schedules: super::budgets::Schedules,
    /// Turns of the blocking threads that decide large flights' shares, one per core.
    /// A storm's declarations arrive together; given a thread each at once, their shares
    /// would start as many threads as there are shares (the runtime allows 512), each
    /// with its stack and often an allocator arena, for work that is all computation:
    /// more threads than cores only wait.
    pub deciding: Arc<tokio::sync::Semaphore>,
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
        let uploads = UploadTurns::new(settings.batch.parallel);
        Self(Arc::new(Shared {
            checkpointer,
            audit_health: AuditHealth::default(),
            verifications: Default::default(),
            use_batches: Default::default(),
            schedules: Default::default(),
            deciding: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )),
            store,
            keys,
            broker_key,
            clock,
            settings,
            metrics: crate::metrics::Metrics::default(),
            limiter: ratelimit::RateLimiter::default(),
            public_limiter: ratelimit::PublicLimiter::default(),
            message_wake: tokio::sync::Notify::new(),
            webhook_wake: tokio::sync::Notify::new(),
            uploads,
        }))
    }
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}
