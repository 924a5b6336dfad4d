//! Passerelle: a consent and contact-data broker between travel agencies and airlines.
//!
//! Four layers, and one rule: **edges → [`service`] → [`store`] → core**.
//!
//! - The edges: [`router`] (the composition root: API routes, pages, middleware),
//!   [`http`] (the API: extract, call a use case, answer in JSON or problem+json),
//!   [`web`] (the pages, calling the same use cases), [`wire`] (what those two share
//!   and neither names of the other: problem answers, extractors, the client's
//!   address), [`workers`] (relayed messages, webhook pushes, the retention sweeper)
//!   and [`cli`] (the command line, the demo, starting the broker).
//! - [`service`]: the use cases. Each takes typed input and returns a typed result or
//!   a [`service::Error`], and owns its transaction and its audit entry, written
//!   through [`service::audit_log`], the one way to change state.
//! - [`store`]: all SQL, one code path for SQLite and PostgreSQL.
//! - The core, which imports nothing outside itself: [`domain`] (types that can only
//!   exist valid), [`policy`] (the Cedar release policies and the token rules),
//!   [`crypto`] (secrets, sealing, keys, JWS, receipts) and [`audit`] (entries, the
//!   Merkle tree, checkpoints and proofs as pure functions).
//! - Leaves any layer may use: [`clock`], [`metrics`], [`outbound`] (where the
//!   broker's own requests may go), [`allocator`] (what the process's allocator holds,
//!   and giving its free pages back).
//!
//! `tests/api/layers.rs` reads every `crate::…` path in `src/` and fails on one that
//! goes against the rule; the edges never name the store (the command line only opens
//! it).
//!
//! A release, from the request to the audit entry: `router` sends `POST /v1/releases`
//! to `http::releases::redeem`, whose extractors authenticate the airline; it calls
//! `service::reveal::redeem`, which decides the use on a read (`service::token_use`:
//! the token rules, then the policies), has the writer take it with others under a
//! guard (`service::use_batch`) and commits it with its entry through
//! `service::audit_log`; the contact, opened from its sealed record, is answered with
//! its terms. If anything changed since the read, the use is decided again inside the
//! writer's transaction, where it is exact.

pub mod allocator;
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
pub mod wire;
pub mod workers;
