//! The integration suite: every scenario goes through the public HTTP API of a real
//! broker, on SQLite and on PostgreSQL.

#[path = "../../benches/support/broker.rs"]
mod broker;
mod helpers;

mod audit;
mod auth;
mod brokers;
mod browser;
mod budgets;
mod bulk;
mod cli;
mod compliance;
mod consents;
mod crash;
mod disruptions;
mod edges;
mod erasures;
mod fakes;
mod flights;
mod hostile;
mod isolation;
mod layers;
mod limits;
mod log;
mod lookups;
mod openapi;
mod operator;
mod pages;
mod policies;
mod queues;
mod records;
mod relay;
mod releases;
mod search_plans;
mod telling;
mod tokens;
mod verifications;
mod withdrawals;
