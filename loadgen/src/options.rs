//! Command-line options of `loadgen`: the target, the load (fixed concurrency or fixed offered
//! rate), and the helper actions the benchmark script needs (write a demo configuration, set up
//! demo data, wait for readiness, capture one response). Parsing only; nothing here does I/O.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use hyper::Method;

/// Default number of connections in fixed-concurrency mode.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Default number of connections in fixed-rate mode (the most requests in flight at once).
pub const DEFAULT_RATE_CONNECTIONS: usize = 32;

/// Load generator for poortwachter (and any HTTPS server that requires a client certificate).
///
/// Without `--rate` it runs closed-loop: `--concurrency` connections, each sending its next request
/// as soon as the previous answer is read. With `--rate` it runs open-loop: requests are due at
/// fixed intervals and latency counts from the time a request was due, not from when it could be
/// sent, so a stalled server cannot hide its queueing (no coordinated omission).
#[derive(Debug, Clone, Parser)]
#[command(name = "loadgen", version)]
pub struct Options {
    /// Target address.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub addr: SocketAddr,
    /// Name the server certificate is checked against (and sent as SNI).
    #[arg(long, default_value = "localhost")]
    pub server_name: String,
    /// CA certificate(s) the server certificate must chain to (PEM).
    #[arg(long, default_value = "certs-example/ca.pem")]
    pub ca: PathBuf,
    /// Client certificate chain (PEM).
    #[arg(long, default_value = "certs-example/sdd.pem")]
    pub cert: PathBuf,
    /// Client private key (PEM).
    #[arg(long, default_value = "certs-example/sdd-key.pem")]
    pub key: PathBuf,
    /// Request path (and query).
    #[arg(long, default_value = "/v1/disclosures")]
    pub path: String,
    /// Request method.
    #[arg(long, default_value = "POST")]
    pub method: Method,
    /// Request body, sent as `application/json`. Without it, POST/PUT/PATCH send the demo
    /// disclosure request (job mediation for the demo client, which `--setup-demo` permits).
    #[arg(long, value_name = "FILE")]
    pub body: Option<PathBuf>,

    /// Connections (closed loop: requests in flight; open loop: the most in flight at once).
    /// Default 16, or 32 with --rate.
    #[arg(long, short)]
    pub concurrency: Option<usize>,
    /// Offered rate in requests per second (open loop). Without it: fixed concurrency.
    #[arg(long, short)]
    pub rate: Option<f64>,
    /// How long to measure, after the warm-up (e.g. `10s`, `500ms`, `2m`, or seconds).
    #[arg(long, short, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Load applied before measuring starts (same settings, not recorded).
    #[arg(long, short, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Longest time one request may take (connection set-up included); then it counts as a
    /// `timeout` transport error and its connection is replaced.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Runtime worker threads of the generator.
    #[arg(long, short, default_value_t = 1)]
    pub threads: usize,
    /// How requests are sent: one hyper HTTP/1.1 connection per worker (`direct`), or the
    /// development kit's pooled `MtlsClient` (`pool`, for comparison).
    #[arg(long, value_enum, default_value_t = Engine::Direct)]
    pub engine: Engine,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// Before the load: register the demo consent and store the demo handover records with
    /// UWV's certificate (from --certs), so that the demo disclosure is a permit.
    #[arg(long)]
    pub setup_demo: bool,
    /// Directory of the example certificates and keys (for --setup-demo and
    /// --write-demo-config).
    #[arg(long, default_value = "certs-example")]
    pub certs: PathBuf,
    /// Only write a complete demo gateway configuration (certificates, signed covenant, secrets,
    /// SQLite) into DIR, listening on --listen; print the configuration file's path and exit.
    #[arg(long, value_name = "DIR")]
    pub write_demo_config: Option<PathBuf>,
    /// Listen address written by --write-demo-config.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: String,
    /// Covenant used by --write-demo-config.
    #[arg(long, default_value = "schemas/examples/covenant-drechtsteden.toml")]
    pub covenant: PathBuf,
    /// Only poll `GET /healthz` until it answers 200, print the time that took (from
    /// --since-unix-ns when given) and exit.
    #[arg(long)]
    pub wait_ready: bool,
    /// Start of the --wait-ready clock, in nanoseconds since the Unix epoch (`date +%s%N`).
    #[arg(long, value_name = "NS")]
    pub since_unix_ns: Option<u128>,
    /// Only send one request, write the response body to FILE, print its status and exit
    /// (after --setup-demo when given).
    #[arg(long, value_name = "FILE")]
    pub capture: Option<PathBuf>,
}

/// How requests are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// One hyper HTTP/1.1 connection per worker, owned by it: no pool, no lock.
    Direct,
    /// devkit's `MtlsClient` (a shared keep-alive pool), as the demo and tests use it.
    Pool,
}

impl Options {
    /// The number of connections for the chosen mode.
    pub fn connections(&self) -> usize {
        self.concurrency.unwrap_or(if self.rate.is_some() {
            DEFAULT_RATE_CONNECTIONS
        } else {
            DEFAULT_CONCURRENCY
        })
    }
}

/// Parse `10s`, `500ms`, `2m`, `1.5s` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {text:?} (use e.g. 10s, 500ms, 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (use ms, s or m)"
            ))
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("not a duration: {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn rate_mode_defaults_to_more_connections() {
        let closed = Options::parse_from(["loadgen"]);
        assert_eq!(closed.connections(), DEFAULT_CONCURRENCY);
        let open = Options::parse_from(["loadgen", "--rate", "1000"]);
        assert_eq!(open.connections(), DEFAULT_RATE_CONNECTIONS);
        let explicit = Options::parse_from(["loadgen", "--rate", "1000", "-c", "4"]);
        assert_eq!(explicit.connections(), 4);
    }
}
