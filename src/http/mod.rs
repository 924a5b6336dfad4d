//! The HTTP edge: routes, extractors, problem+json errors and middleware.
//!
//! Each resource module holds its DTOs and its handlers: extract, call a use case of
//! `service/`, answer. `crate::router` lists every route once.

pub mod agency;
pub mod airline;
pub mod audit;
pub mod batch;
pub mod client_ip;
pub mod consents;
pub mod contact_verifications;
pub mod disruptions;
pub mod erasures;
pub mod export;
pub mod extract;
pub mod health;
pub mod idempotency;
pub mod keys;
pub mod messages;
pub mod middleware;
pub mod policies;
pub mod problem;
pub mod proofs;
pub mod releases;
pub mod reports;
pub mod tokens;
pub mod traveller;
pub mod withdrawals;
