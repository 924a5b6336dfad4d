//! Passerelle: a consent and contact-data broker between travel agencies and airlines.
//!
//! A tour, following a request's way through the code:
//!
//! - [`http`]: routes, extractors that answer in problem+json, and the middleware
//!   stack. Handlers read like a sentence: extract, decide, store in one
//!   transaction with the audit entry, respond.
//! - [`domain`]: bookings, travellers, contacts, purposes and consent statements, as
//!   types that can only exist valid. No HTTP, no SQL.
//! - [`policy`]: the release rules, as pure functions with a stable reason per refusal.
//! - [`crypto`]: API keys and tokens (hashed, compared in constant time), sealing of
//!   personal data (AES-256-GCM bound to its row) under per-record keys wrapped by
//!   master keys, detached JWS, RFC 8785, and the broker's countersigned receipts.
//! - [`audit`]: the audit entry and its RFC 9162 leaf hash.
//! - [`store`]: all SQL, one code path for SQLite and PostgreSQL.
//!
//! Around them: [`server`] runs the broker (after checking its keys against the
//! database), [`sweeper`] purges contacts at the end of their retention, [`rotation`]
//! re-wraps record keys under a new master key, [`provision`] adds parties and manages
//! their API keys (for the CLI, the demo and the tests), [`relay`] delivers relayed
//! messages and webhook pushes, [`outbound`] says where the broker's own requests may
//! go, [`keyfile`] reads and writes key files, [`cli`] and [`demo`] are the command
//! line.

pub mod audit;
pub mod cli;
pub mod clock;
pub mod crypto;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod outbound;
pub mod policy;
pub mod router;
pub mod service;
pub mod store;
pub mod web;
pub mod workers;
