//! poortwachter gateway: the mutual-TLS server, storage, audit log, token verification and the
//! production subcommands around the pure `policy` crate. `boot` builds the state, `ops` holds
//! the use-cases, `http` the router and the one mapping of errors to problem details. No
//! development code lives here: the demo, development certificates, the test client and token
//! issuing are the `devkit` crate, used by the binary's `dev` module (`main.rs`) and the tests.

pub mod actor;
pub mod api;
pub mod audit;
pub mod auth;
pub mod boot;
pub mod catalogue;
pub mod cli;
pub mod config;
pub mod consent_token;
pub mod console;
pub mod covenant_diff;
pub mod covenant_sig;
pub mod crypto;
pub mod failure_log;
pub mod http;
pub mod keys;
pub mod logboek;
pub mod metrics;
pub mod ops;
pub mod ratelimit;
pub mod server;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod timefmt;
pub mod tls;
pub mod upstream;
