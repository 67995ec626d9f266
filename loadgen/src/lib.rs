//! `loadgen`: a load generator for poortwachter over mutual TLS with keep-alive connections, in
//! closed loop (fixed concurrency) or open loop (fixed offered rate, coordinated-omission-correct
//! latency), reporting throughput, HDR latency percentiles and errors by status and `reason`.
//! A library so the smoke test can drive it; `main.rs` is a thin command line around it.

pub mod options;
pub mod report;
pub mod run;
pub mod setup;
pub mod target;

pub use options::{Engine, Options};
pub use report::Report;
pub use run::run;
