//! Logging and tracing set-up. Log lines carry ids, organisations, purposes, field names and
//! reasons — never a BSN or a field value (those types never reach a log macro).

use tracing_subscriber::{fmt, EnvFilter};

/// Install the global subscriber (idempotent: a second call is ignored). `filter` is a
/// `tracing` filter such as `info`; `RUST_LOG` overrides it.
pub fn init(filter: Option<&str>) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(filter.unwrap_or("info")));
    let _ = fmt().with_env_filter(filter).with_target(false).try_init();
}
