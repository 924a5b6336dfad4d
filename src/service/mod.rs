//! The use cases: everything the broker does, one function each, below the edges.
//!
//! A use case takes typed input (the calling party, already authenticated by the edge,
//! and what it asks), returns a typed result or an [`Error`], and owns its transaction
//! and its audit entry, written through [`audit_log`]. The edges (`http/`, `web/`,
//! `cli/`, `workers/`) call these and nothing below them; these call `store/` and the
//! core.

pub mod agency;
pub mod agency_disruptions;
pub mod airline;
pub mod audit_entries;
pub mod audit_health;
pub mod audit_log;
pub mod auth;
pub mod bounces;
pub mod budgets;
pub mod checkpoints;
pub mod contact_verifications;
pub mod delivery;
pub mod disruption_events;
pub mod disruptions;
pub mod erasures;
pub mod error;
pub mod export;
pub mod gateway_receipts;
pub mod grant;
pub mod idempotency;
pub mod ingest;
pub mod input;
pub mod keys;
pub mod memory;
pub mod parties;
pub mod policies;
pub mod proofs;
pub mod ratelimit;
pub mod reachability;
pub mod records;
pub mod refusal;
pub mod relay;
pub mod reports;
pub mod retention;
pub mod reveal;
pub mod rotation;
pub mod sealed;
pub mod sessions;
pub mod settings;
pub mod ssr_export;
pub mod state;
pub mod telling;
pub mod templates;
pub mod token_use;
pub mod transport_reports;
pub mod traveller;
pub mod use_batch;
pub mod uses;
pub mod verifications;
pub mod verify_log;
pub mod webhooks;
pub mod withdraw;

pub use error::{Error, ErrorKind};
pub use settings::{RelaySettings, Settings};
pub use state::{AppState, Shared};
