//! poortwachter gateway: the mutual-TLS server, storage, audit log, token verification and CLI
//! around the pure `policy` crate.

pub mod api;
pub mod audit;
pub mod auth;
pub mod catalogue;
pub mod cli;
pub mod client;
pub mod config;
pub mod consent;
pub mod covenant_admin;
pub mod covenant_diff;
pub mod covenant_sig;
pub mod covenant_sync;
pub mod crypto;
pub mod demo;
pub mod devcerts;
pub mod disclosure;
pub mod handover;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod ratelimit;
pub mod retention;
pub mod server;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tls;
