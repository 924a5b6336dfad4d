//! The use cases: everything the broker does, one function each, below the edges.
//!
//! A use case takes typed input (the calling party, already authenticated by the edge,
//! and what it asks), returns a typed result or an [`Error`], and owns its transaction
//! and its audit entry, written through [`audit_log`]. The edges (`http/`, `web/`,
//! `cli/`, `workers/`) call these and nothing below them; these call `store/` and the
//! core.

pub mod audit_entries;
pub mod audit_health;
pub mod audit_log;
pub mod checkpoints;
pub mod error;
pub mod ingest;
pub mod input;
pub mod parties;
pub mod proofs;
pub mod ratelimit;
pub mod retention;
pub mod rotation;
pub mod sealed;
pub mod settings;
pub mod state;
pub mod use_batch;
pub mod uses;
pub mod verifications;
pub mod verify_log;

pub use error::{Error, ErrorKind};
pub use settings::{RelaySettings, Settings};
pub use state::{AppState, Shared};
