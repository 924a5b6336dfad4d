//! The HTTP edge: the API's handlers and middleware (its problem answers and
//! extractors are in [`crate::wire`], shared with the pages).
//!
//! Each resource module holds its DTOs and its handlers: extract, call a use case of
//! `service/`, answer. `crate::router` lists every route once.

pub mod agency;
pub mod airline;
pub mod audit;
pub mod batch;
pub mod consents;
pub mod contact_verifications;
pub mod disruptions;
pub mod erasures;
pub mod export;
pub mod health;
pub mod idempotency;
pub mod keys;
pub mod messages;
pub mod middleware;
pub mod policies;
pub mod proofs;
pub mod releases;
pub mod reports;
pub mod tokens;
pub mod traveller;
pub mod withdrawals;
