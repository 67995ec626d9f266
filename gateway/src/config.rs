//! The gateway configuration: one TOML file, validated once at start-up, with secrets from files
//! or environment variables. Errors name the key and the problem; secrets never appear in them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine;
use policy::Oin;
use serde::{Deserialize, Deserializer};

/// Why a configuration cannot be used. Each message names the key (`tls.cert`, …).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("configuration {path}: {key}: {message}")]
    Invalid {
        path: String,
        key: String,
        message: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub gateway: GatewaySection,
    pub tls: TlsSection,
    pub database: DatabaseSection,
    pub secrets: SecretsSection,
    #[serde(default)]
    pub limits: LimitsSection,
    /// `[connections]`: how many connections, of which kind, and for how long.
    #[serde(default)]
    pub connections: ConnectionsSection,
    #[serde(default)]
    pub audit: AuditSection,
    #[serde(default)]
    pub telemetry: TelemetrySection,
    /// A field catalogue file; the embedded Max WW catalogue when absent.
    #[serde(default)]
    pub catalogue: Option<PathBuf>,
    #[serde(default, rename = "organisations")]
    pub organisations: Vec<OrganisationSection>,
    #[serde(default)]
    pub covenants: Vec<CovenantSection>,
    /// `[covenants_admin]`: covenant administration (the expiry warning window).
    #[serde(default)]
    pub covenants_admin: AdminSettings,
    /// Issuers of bearer JWTs for human users (privacy officers, covenant administrators).
    #[serde(default)]
    pub human_issuers: Vec<HumanIssuerSection>,
    /// Live disclosure (issue 18): the sources' own services, one per source OIN.
    #[serde(default)]
    pub sources: Vec<SourceSection>,
    /// The gateway's own client certificate towards the sources (required with `sources`).
    #[serde(default)]
    pub source_client: Option<SourceClientSection>,
    /// `[logboek]`: send every audit record to the organisation's Logboek Dataverwerkingen
    /// (an OTLP/HTTP traces receiver); no export when absent.
    #[serde(default)]
    pub logboek: Option<LogboekSection>,
    /// `[console]`: the web console for people under `/console` (absent: no console).
    #[serde(default)]
    pub console: Option<ConsoleSection>,
    /// Issue 16: `[usage_review]`, the thresholds of the privacy officer's usage report.
    #[serde(default)]
    pub usage_review: UsageReviewSection,
}

// --- issue 16: the usage review's thresholds ---

/// `[usage_review]`: when the per-employee usage report raises a signal. Times are
/// Europe/Amsterdam.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsageReviewSection {
    /// Office hours start at this hour (default 7: 07:00).
    pub office_hours_start: u32,
    /// Office hours end at this hour (default 19: 19:00; a request at 19:00 is outside).
    pub office_hours_end: u32,
    /// Whether Saturday and Sunday count as outside office hours (default true).
    pub weekends_outside_office_hours: bool,
    /// More distinct clients than this in one day is a signal (default 40).
    pub max_subjects_per_day: usize,
    /// A larger share of refused requests than this (0 to 1) is a signal (default 0.25)…
    pub max_refusal_share: f64,
    /// …for an employee's day with at least this many requests (default 4).
    pub min_requests_for_refusal_share: u32,
}

impl Default for UsageReviewSection {
    fn default() -> Self {
        UsageReviewSection {
            office_hours_start: 7,
            office_hours_end: 19,
            weekends_outside_office_hours: true,
            max_subjects_per_day: 40,
            max_refusal_share: 0.25,
            min_requests_for_refusal_share: 4,
        }
    }
}

// --- live disclosure (issue 18) ---------------------------------------------------------------

/// One source organisation's own service, asked live after a permit under a `live` grant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    pub oin: Oin,
    /// `https://host:port` (the path `/v1/field-queries` is the source interface's).
    pub url: String,
    /// The CA that issued the source's server certificate: pinned, the only one trusted for it.
    pub ca: PathBuf,
    /// The name the source's certificate must carry; default: the URL's host.
    #[serde(default)]
    pub server_name: Option<String>,
    /// TCP connect plus TLS handshake.
    #[serde(default = "default_source_connect")]
    pub connect_timeout_ms: u64,
    /// From sending the query to the complete answer.
    #[serde(default = "default_source_answer")]
    pub answer_timeout_ms: u64,
    /// Queries in flight to this source at once; more wait (within the answer timeout).
    #[serde(default = "default_source_concurrency")]
    pub max_concurrent: usize,
    /// Consecutive failures that open the circuit breaker.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long an open breaker refuses at once before letting one query try again.
    #[serde(default = "default_breaker_open")]
    pub breaker_open_ms: u64,
}

fn default_source_connect() -> u64 {
    2_000
}
fn default_source_answer() -> u64 {
    5_000
}
fn default_source_concurrency() -> usize {
    64
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_open() -> u64 {
    10_000
}

/// The gateway's client identity towards sources (mutual TLS).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceClientSection {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl SourceSection {
    /// `(host, port)` of an `https://host[:port]` URL.
    pub fn host_port(&self) -> Option<(String, u16)> {
        let rest = self.url.strip_prefix("https://")?;
        let authority = rest.split('/').next()?;
        if authority.is_empty() {
            return None;
        }
        match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
                Some((host.trim_matches(['[', ']']).to_owned(), port.parse().ok()?))
            }
            _ => Some((authority.trim_matches(['[', ']']).to_owned(), 443)),
        }
    }

    fn check(&self, i: usize) -> Result<(), (String, String)> {
        let key = |k: &str| format!("sources[{i}].{k}");
        if self.host_port().is_none() {
            return Err((key("url"), "must be https://host[:port]".into()));
        }
        if self.connect_timeout_ms == 0 || self.answer_timeout_ms == 0 {
            return Err((
                key("answer_timeout_ms"),
                "timeouts must be at least 1 ms".into(),
            ));
        }
        if self.max_concurrent == 0 {
            return Err((key("max_concurrent"), "must be at least 1".into()));
        }
        if self.breaker_failures == 0 {
            return Err((key("breaker_failures"), "must be at least 1".into()));
        }
        Ok(())
    }
}

// --- end live disclosure ----------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// The gateway's own id: the `aud` every consent token must carry.
    pub id: String,
    /// Address to listen on, e.g. `127.0.0.1:8443`.
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA bundle that client certificates must chain to.
    pub client_ca: PathBuf,
    /// Certificate revocation lists (PEM or DER), checked for client certificates.
    #[serde(default)]
    pub crls: Vec<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// `sqlite://path/to/file.db` (embedded default) or `postgres://…`.
    pub url: String,
    /// An environment variable that, when set, holds the URL instead (a PostgreSQL URL carries
    /// its password: keep it out of the file).
    #[serde(default)]
    pub url_env: Option<String>,
    /// Maximum pool connections.
    #[serde(default = "default_pool")]
    pub max_connections: u32,
    /// PostgreSQL only: how the connection is protected. `verify-full` (the default): TLS, the
    /// server's certificate must chain to `sslrootcert` and name the URL's host. `disable`: no
    /// TLS, accepted only for a server on loopback or a Unix socket. TLS settings in the URL
    /// itself (`?sslmode=`, `?sslrootcert=`, …) are refused: the URL often comes from a secret or
    /// an environment variable, and must not be able to weaken what this file says.
    #[serde(default)]
    pub sslmode: SslMode,
    /// PostgreSQL only: the CA certificate(s) (PEM) the server's certificate must chain to.
    /// Required with `sslmode = "verify-full"`.
    #[serde(default)]
    pub sslrootcert: Option<PathBuf>,
    /// Longest wait for a database connection, in milliseconds, before a request is refused
    /// (`unavailable`) or an audit commit fails (`audit-unavailable`). While the database is
    /// down, this is how long each request waits for its refusal; keep it well below
    /// `limits.request_timeout_ms`.
    #[serde(default = "default_acquire_timeout")]
    pub acquire_timeout_ms: u64,
}

fn default_pool() -> u32 {
    8
}
fn default_acquire_timeout() -> u64 {
    2000
}

/// `database.sslmode`: TLS towards PostgreSQL (PostgreSQL's own names for the two modes kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// TLS; the certificate chains to `sslrootcert` and names the host the URL connects to.
    #[default]
    VerifyFull,
    /// No TLS: only for a server on loopback (`127.0.0.0/8`, `::1`, `localhost`) or a Unix
    /// socket, checked when the database is opened.
    Disable,
}

/// Parameters of a PostgreSQL URL that would set TLS behind the configuration's back.
pub const URL_TLS_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
];

impl DatabaseSection {
    /// A database section for `url` with every other key at its default (tools and tests).
    pub fn new(url: impl Into<String>) -> DatabaseSection {
        DatabaseSection {
            url: url.into(),
            url_env: None,
            max_connections: default_pool(),
            sslmode: SslMode::default(),
            sslrootcert: None,
            acquire_timeout_ms: default_acquire_timeout(),
        }
    }

    /// Whether the URL names a PostgreSQL server.
    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")
    }

    /// The section's own rules for PostgreSQL (the host is checked when the database is opened):
    /// no TLS settings in the URL, and a CA for `verify-full`. `(key, message)` on failure.
    pub fn check_tls(&self) -> Result<(), (String, String)> {
        if !self.is_postgres() {
            return Ok(());
        }
        let query = self.url.split_once('?').map_or("", |(_, q)| q);
        for pair in query.split('&') {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            if URL_TLS_PARAMETERS.contains(&key) {
                return Err((
                    "database.url".into(),
                    format!(
                        "the URL sets `{key}`; TLS towards PostgreSQL is set by database.sslmode \
                         and database.sslrootcert only: remove it from the URL"
                    ),
                ));
            }
        }
        if self.sslmode == SslMode::VerifyFull && self.sslrootcert.is_none() {
            return Err((
                "database.sslrootcert".into(),
                "required for PostgreSQL with sslmode = \"verify-full\" (the default): the CA \
                 certificate (PEM) the database server's certificate must chain to"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Where a secret comes from: a file holding base64, or an environment variable holding base64.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    #[serde(default)]
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub env: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsSection {
    /// Key-encryption key (32 bytes, base64) that wraps each handover record's data key.
    pub kek: SecretSource,
    /// HMAC key (≥ 32 bytes, base64) for subject pseudonyms in the audit log.
    pub pseudonym_key: SecretSource,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Time allowed per request, in milliseconds.
    #[serde(default = "default_timeout")]
    pub request_timeout_ms: u64,
    /// Leeway for consent-token `exp`/`nbf`/`iat`, in seconds.
    #[serde(default = "default_leeway")]
    pub token_leeway_secs: u64,
    /// Issue 16: the longest lifetime (`exp` − `iat`) an actor assertion may have, in seconds
    /// (default 300, at most 3600). A longer-lived one is refused, however fresh.
    #[serde(default = "default_actor_lifetime")]
    pub actor_max_lifetime_secs: u64,
    /// Requests per second each organisation may make, sustained (0: no limit).
    #[serde(default = "default_rate")]
    pub rate_per_org_per_sec: f64,
    /// Requests an organisation may make at once above its sustained rate.
    #[serde(default = "default_burst")]
    pub rate_burst: f64,
}

fn default_rate() -> f64 {
    2000.0
}
fn default_burst() -> f64 {
    4000.0
}

fn default_max_body() -> usize {
    64 * 1024
}
fn default_timeout() -> u64 {
    10_000
}
fn default_leeway() -> u64 {
    60
}
fn default_actor_lifetime() -> u64 {
    300
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_body_bytes: default_max_body(),
            request_timeout_ms: default_timeout(),
            token_leeway_secs: default_leeway(),
            actor_max_lifetime_secs: default_actor_lifetime(),
            rate_per_org_per_sec: default_rate(),
            rate_burst: default_burst(),
        }
    }
}

/// `[connections]`: caps on open connections and the time each phase of a connection may take.
/// A connection is *identified* once its TLS handshake is done and it presented a client
/// certificate of a configured organisation; every other connection (still in its handshake, no
/// certificate, or a certificate of an organisation this gateway does not know) is *unidentified*
/// and shares the smaller `max_unidentified` budget.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionsSection {
    /// Most connections open at once, of both kinds.
    #[serde(default = "default_max_open")]
    pub max_open: usize,
    /// Most unidentified connections open at once; less than `max_open`, so that
    /// `max_open - max_unidentified` connections are always left for organisations. When the
    /// budget is full, a new connection displaces the unidentified connection that has gone
    /// longest without progress.
    #[serde(default = "default_max_unidentified")]
    pub max_unidentified: usize,
    /// Time allowed for the TLS handshake, in milliseconds.
    #[serde(default = "default_handshake_timeout")]
    pub handshake_timeout_ms: u64,
    /// Time allowed from the first byte of an HTTP/1.1 request to the end of its headers, in
    /// milliseconds.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_ms: u64,
    /// A connection with no request in flight that starts no new request within this many
    /// milliseconds is closed (HTTP/1.1 keep-alive and HTTP/2 alike).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_ms: u64,
}

/// `connections.max_open` when the configuration names none.
pub const DEFAULT_MAX_OPEN: usize = 4096;
/// `connections.max_unidentified` when the configuration names none.
pub const DEFAULT_MAX_UNIDENTIFIED: usize = 512;

fn default_max_open() -> usize {
    DEFAULT_MAX_OPEN
}
fn default_max_unidentified() -> usize {
    DEFAULT_MAX_UNIDENTIFIED
}
fn default_handshake_timeout() -> u64 {
    5_000
}
fn default_header_read_timeout() -> u64 {
    10_000
}
fn default_idle_timeout() -> u64 {
    60_000
}

impl Default for ConnectionsSection {
    fn default() -> Self {
        ConnectionsSection {
            max_open: default_max_open(),
            max_unidentified: default_max_unidentified(),
            handshake_timeout_ms: default_handshake_timeout(),
            header_read_timeout_ms: default_header_read_timeout(),
            idle_timeout_ms: default_idle_timeout(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Longest time a commit waits to gather more records (group commit), in microseconds.
    #[serde(default = "default_group_wait")]
    pub group_commit_max_wait_us: u64,
    /// Most records in one commit.
    #[serde(default = "default_group_size")]
    pub group_commit_max_records: usize,
    /// The Ed25519 checkpoint signing key (PKCS#8 PEM). Required to serve.
    #[serde(default)]
    pub checkpoint_key: Option<PathBuf>,
    /// Earlier checkpoint public keys (SPKI PEM), still trusted when verifying after a rotation.
    #[serde(default)]
    pub checkpoint_previous_keys: Vec<PathBuf>,
    /// Sign a checkpoint in the commit that brings the records since the last one to this many.
    #[serde(default = "default_checkpoint_records")]
    pub checkpoint_every_records: u64,
    /// … or this many seconds after the first record no checkpoint covers yet.
    #[serde(default = "default_checkpoint_secs")]
    pub checkpoint_every_secs: u64,
    /// How long audit records are kept: only `"keep"` (the default) for now.
    #[serde(default)]
    pub retention_days: AuditRetention,
}

fn default_group_wait() -> u64 {
    0
}
fn default_group_size() -> usize {
    256
}
fn default_checkpoint_records() -> u64 {
    1000
}
fn default_checkpoint_secs() -> u64 {
    60
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            group_commit_max_wait_us: default_group_wait(),
            group_commit_max_records: default_group_size(),
            checkpoint_key: None,
            checkpoint_previous_keys: Vec::new(),
            checkpoint_every_records: default_checkpoint_records(),
            checkpoint_every_secs: default_checkpoint_secs(),
            retention_days: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySection {
    /// OTLP endpoint for traces (e.g. `http://127.0.0.1:4318`); none when absent.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// `tracing` filter, e.g. `info` or `gateway=debug`.
    #[serde(default)]
    pub log_filter: Option<String>,
}

// ── Logboek Dataverwerkingen export ──────────────────────────────────────────────────────────

/// `[logboek]`: where and how the audit log is sent, as Logboek Dataverwerkingen log records.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogboekSection {
    /// The receiver's OTLP/HTTP traces URL, e.g. `https://logboek.example.nl:4318/v1/traces`.
    /// `https://` (TLS, verified against `ca`), or `http://` only to a receiver on loopback.
    pub endpoint: String,
    /// The CA certificate(s), PEM, that the receiver's certificate must chain to (`https://`).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Longest wait for the receiver to acknowledge one batch.
    #[serde(default = "default_logboek_timeout")]
    pub timeout_ms: u64,
    /// Audit records per request to the receiver.
    #[serde(default = "default_logboek_batch")]
    pub batch_size: u32,
    /// How often the exporter looks for new audit records.
    #[serde(default = "default_logboek_interval")]
    pub interval_ms: u64,
    /// Longest pause between attempts while the receiver is down (the pause doubles from
    /// `interval_ms` up to this).
    #[serde(default = "default_logboek_backoff")]
    pub max_backoff_ms: u64,
    /// `dpl.core.data_subject_id_type`: what kind of identifier `dpl.core.data_subject_id` is
    /// (the gateway's keyed pseudonym of the BSN, never the BSN).
    #[serde(default = "default_logboek_subject_type")]
    pub data_subject_id_type: String,
}

fn default_logboek_timeout() -> u64 {
    5_000
}
fn default_logboek_batch() -> u32 {
    256
}
fn default_logboek_interval() -> u64 {
    1_000
}
fn default_logboek_backoff() -> u64 {
    60_000
}
fn default_logboek_subject_type() -> String {
    "urn:poortwachter:subject-pseudonym:hmac-sha256-bsn".into()
}

impl LogboekSection {
    /// Whether the endpoint is `https://`; otherwise it must be `http://` to loopback.
    fn check(&self) -> Result<(), (String, String)> {
        let key = |k: &str| format!("logboek.{k}");
        let uri: axum::http::Uri = self.endpoint.parse().map_err(|_| {
            (
                key("endpoint"),
                "is not a URL (https://host:port/v1/traces)".to_owned(),
            )
        })?;
        let host = uri.host().unwrap_or("");
        match uri.scheme_str() {
            Some("https") => {
                if self.ca.is_none() {
                    return Err((
                        key("ca"),
                        "give the CA certificate(s) of the receiver for an https:// endpoint"
                            .into(),
                    ));
                }
            }
            Some("http") => {
                let loopback = host == "localhost"
                    || host
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if !loopback {
                    return Err((
                        key("endpoint"),
                        "must be https:// (the Logboek standard demands TLS); http:// only to a receiver on loopback".into(),
                    ));
                }
            }
            _ => {
                return Err((
                    key("endpoint"),
                    "must start with https:// (or http:// to loopback)".into(),
                ))
            }
        }
        if host.is_empty() {
            return Err((key("endpoint"), "names no host".into()));
        }
        for (k, v) in [
            ("timeout_ms", self.timeout_ms),
            ("interval_ms", self.interval_ms),
            ("batch_size", u64::from(self.batch_size)),
        ] {
            if v == 0 {
                return Err((key(k), "must be at least 1".into()));
            }
        }
        if self.batch_size > 10_000 {
            return Err((key("batch_size"), "must be at most 10000".into()));
        }
        if self.max_backoff_ms < self.interval_ms {
            return Err((key("max_backoff_ms"), "must be at least interval_ms".into()));
        }
        if self.data_subject_id_type.trim().is_empty() {
            return Err((key("data_subject_id_type"), "must not be empty".into()));
        }
        Ok(())
    }
}

/// A public key (PEM, SPKI) with its `kid`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySection {
    pub kid: String,
    /// `ES256` or `EdDSA`.
    pub alg: String,
    pub file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganisationSection {
    pub oin: Oin,
    pub name: String,
    /// Keys this organisation signs consent tokens with.
    #[serde(default)]
    pub consent_keys: Vec<KeySection>,
    /// Keys this organisation signs covenant versions with.
    #[serde(default)]
    pub covenant_keys: Vec<KeySection>,
    // --- issue 16: actor assertions ---
    /// Keys this organisation's identity provider signs actor assertions with (the employee
    /// behind a call; header `Actor-Token`). Without any, an assertion from it is refused.
    #[serde(default)]
    pub actor_keys: Vec<KeySection>,
    /// The `iss` its actor assertions carry (its identity provider's id, e.g. an URL). Default:
    /// the organisation's OIN.
    #[serde(default)]
    pub actor_issuer: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CovenantSection {
    /// Covenant document (TOML or JSON).
    pub file: PathBuf,
    /// Detached JWS signatures by the parties over the covenant's canonical hash.
    #[serde(default)]
    pub signatures: Vec<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HumanIssuerSection {
    /// The `iss` of the bearer tokens.
    pub issuer: String,
    /// The `aud` the tokens must carry.
    pub audience: String,
    pub keys: Vec<KeySection>,
}

/// `[console]`: the web console (gateway/src/console/) and its OpenID Connect providers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSection {
    /// The address people use to reach the gateway (`https://gateway.example.nl`); the login's
    /// redirect URI is this plus `/console/callback`.
    pub public_url: String,
    /// A session ends after this many seconds without a request.
    #[serde(default = "default_idle_secs")]
    pub session_idle_secs: u64,
    /// A session ends this many seconds after login, however active.
    #[serde(default = "default_absolute_secs")]
    pub session_absolute_secs: u64,
    /// One OpenID Connect provider per organisation.
    #[serde(default)]
    pub providers: Vec<OidcProviderSection>,
    /// DEVELOPMENT ONLY (`poortwachter demo`): a login without a provider, marked on every page.
    #[serde(default)]
    pub development_login: bool,
}

fn default_idle_secs() -> u64 {
    15 * 60
}

fn default_absolute_secs() -> u64 {
    8 * 60 * 60
}

/// One organisation's identity provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProviderSection {
    /// The organisation whose people log in here (its OIN).
    pub organisation: Oin,
    /// The issuer URL; its `/.well-known/openid-configuration` is read at each login. `https`,
    /// or `http` on a loopback address only (tests and demo).
    pub issuer: String,
    pub client_id: String,
    /// The client secret (`client_secret_basic`), from a file or an environment variable (the
    /// text itself, not base64). Absent: a public client that relies on PKCE alone.
    #[serde(default)]
    pub client_secret: Option<SecretSource>,
    /// PEM file of CA certificates for an `https` issuer; absent: the public web roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The ID-token claim that lists the person's roles (a string or a list of strings).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// The claim's values for each console role.
    #[serde(default)]
    pub role_values: RoleValues,
    /// The ID-token claim that names the person's organisation (an OIN); when set, it must equal
    /// `organisation` or the login is refused. Absent: the provider's organisation.
    #[serde(default)]
    pub organisation_claim: Option<String>,
    /// The claim shown as the person's name (and written into audit records with `sub`).
    #[serde(default = "default_name_claim")]
    pub name_claim: String,
}

fn default_roles_claim() -> String {
    "roles".into()
}

fn default_name_claim() -> String {
    "name".into()
}

/// Which values of the roles claim grant which role.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleValues {
    #[serde(default = "default_officer_values")]
    pub privacy_officer: Vec<String>,
    #[serde(default = "default_admin_values")]
    pub covenant_admin: Vec<String>,
}

fn default_officer_values() -> Vec<String> {
    vec!["privacy-officer".into()]
}

fn default_admin_values() -> Vec<String> {
    vec!["covenant-admin".into()]
}

impl Default for RoleValues {
    fn default() -> Self {
        RoleValues {
            privacy_officer: default_officer_values(),
            covenant_admin: default_admin_values(),
        }
    }
}

impl ConsoleSection {
    fn check(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, m: &str| Err((format!("console.{k}"), m.to_owned()));
        if !self.public_url.starts_with("https://") {
            return bad("public_url", "must be an https:// address");
        }
        if self.session_idle_secs == 0 || self.session_absolute_secs < self.session_idle_secs {
            return bad(
                "session_idle_secs",
                "must be positive and at most session_absolute_secs",
            );
        }
        for (i, p) in self.providers.iter().enumerate() {
            let loopback = ["http://127.0.0.1", "http://[::1]", "http://localhost"]
                .iter()
                .any(|l| p.issuer.starts_with(l));
            if !(p.issuer.starts_with("https://") || loopback) {
                return bad(
                    &format!("providers[{i}].issuer"),
                    "must be https:// (http:// only on a loopback address)",
                );
            }
            if self.providers[..i]
                .iter()
                .any(|o| o.organisation == p.organisation)
            {
                return bad(
                    &format!("providers[{i}].organisation"),
                    "one provider per organisation",
                );
            }
        }
        Ok(())
    }

    /// A provider's client secret, when it has one (the text of the file or variable, trimmed).
    pub fn client_secret(&self, index: usize) -> Result<Option<String>, ConfigError> {
        let Some(src) = self
            .providers
            .get(index)
            .and_then(|p| p.client_secret.as_ref())
        else {
            return Ok(None);
        };
        let invalid = |message: String| ConfigError::Invalid {
            path: "(console)".into(),
            key: format!("console.providers[{index}].client_secret"),
            message,
        };
        let text = match (&src.file, &src.env) {
            (Some(f), None) => read_secret_file(f).map_err(invalid)?,
            (None, Some(v)) => std::env::var(v)
                .map_err(|_| invalid(format!("environment variable {v} is not set")))?,
            _ => return Err(invalid("give exactly one of `file` and `env`".into())),
        };
        Ok(Some(text.trim().to_owned()))
    }
}

impl Config {
    /// Read, parse and check a configuration file. Relative paths in it are taken relative to the
    /// file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, &path.display().to_string(), base)
    }

    /// Parse configuration text; `origin` names it in errors, `base` anchors relative paths.
    pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Config, ConfigError> {
        let invalid = |key: String, message: String| ConfigError::Invalid {
            path: origin.to_owned(),
            key,
            message,
        };
        let de = toml::Deserializer::parse(text)
            .map_err(|e| invalid("(syntax)".into(), e.message().to_string()))?;
        let mut config: Config = serde_path_to_error::deserialize(de)
            .map_err(|e| invalid(e.path().to_string(), e.into_inner().message().to_string()))?;
        if let Some(var) = &config.database.url_env {
            if let Ok(url) = std::env::var(var) {
                config.database.url = url;
            }
        }
        config.anchor_paths(base);
        config.check().map_err(|(k, m)| invalid(k, m))?;
        Ok(config)
    }

    fn anchor_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.tls.cert);
        fix(&mut self.tls.key);
        fix(&mut self.tls.client_ca);
        self.tls.crls.iter_mut().for_each(fix);
        if let Some(c) = self.catalogue.as_mut() {
            fix(c)
        }
        for s in [&mut self.secrets.kek, &mut self.secrets.pseudonym_key] {
            if let Some(f) = s.file.as_mut() {
                fix(f)
            }
        }
        for org in &mut self.organisations {
            org.consent_keys.iter_mut().for_each(|k| fix(&mut k.file));
            org.covenant_keys.iter_mut().for_each(|k| fix(&mut k.file));
            org.actor_keys.iter_mut().for_each(|k| fix(&mut k.file));
        }
        for c in &mut self.covenants {
            fix(&mut c.file);
            c.signatures.iter_mut().for_each(fix);
        }
        for h in &mut self.human_issuers {
            h.keys.iter_mut().for_each(|k| fix(&mut k.file));
        }
        if let Some(k) = self.audit.checkpoint_key.as_mut() {
            fix(k)
        }
        if let Some(console) = self.console.as_mut() {
            for p in &mut console.providers {
                if let Some(f) = p.ca_file.as_mut() {
                    fix(f)
                }
                if let Some(f) = p.client_secret.as_mut().and_then(|s| s.file.as_mut()) {
                    fix(f)
                }
            }
        }
        if let Some(ca) = self.database.sslrootcert.as_mut() {
            fix(ca)
        }
        self.audit.checkpoint_previous_keys.iter_mut().for_each(fix);
        if let Some(ca) = self.logboek.as_mut().and_then(|l| l.ca.as_mut()) {
            fix(ca)
        }
        for src in &mut self.sources {
            fix(&mut src.ca);
        }
        if let Some(c) = self.source_client.as_mut() {
            fix(&mut c.cert);
            fix(&mut c.key);
        }
        if let Some(rest) = self.database.url.strip_prefix("sqlite://") {
            let p = Path::new(rest);
            if p.is_relative() && !rest.starts_with(':') {
                self.database.url = format!("sqlite://{}", base.join(p).display());
            }
        }
    }

    fn check(&self) -> Result<(), (String, String)> {
        if let Some(console) = &self.console {
            console.check()?;
        }
        if self.gateway.id.trim().is_empty() {
            return Err(("gateway.id".into(), "must not be empty".into()));
        }
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err((
                "database.url".into(),
                "must start with sqlite://, postgres:// or postgresql://".into(),
            ));
        }
        self.database.check_tls()?;
        for (i, src) in self.sources.iter().enumerate() {
            src.check(i)?;
            // A source fault must be decided (and audited) before the request itself times out.
            if src.connect_timeout_ms + src.answer_timeout_ms >= self.limits.request_timeout_ms {
                return Err((
                    format!("sources[{i}].answer_timeout_ms"),
                    "connect_timeout_ms + answer_timeout_ms must be below limits.request_timeout_ms".into(),
                ));
            }
            if self.sources[..i].iter().any(|o| o.oin == src.oin) {
                return Err((
                    format!("sources[{i}].oin"),
                    "this source is configured twice".into(),
                ));
            }
        }
        if !self.sources.is_empty() && self.source_client.is_none() {
            return Err((
                "source_client".into(),
                "sources need the gateway's own client certificate (cert, key)".into(),
            ));
        }
        if self.database.acquire_timeout_ms == 0 {
            return Err((
                "database.acquire_timeout_ms".into(),
                "must be at least 1".into(),
            ));
        }
        if self.audit.checkpoint_every_records == 0 || self.audit.checkpoint_every_secs == 0 {
            let key = if self.audit.checkpoint_every_records == 0 {
                "audit.checkpoint_every_records"
            } else {
                "audit.checkpoint_every_secs"
            };
            return Err((key.into(), "must be at least 1".into()));
        }
        if self.limits.max_body_bytes < 1024 {
            return Err((
                "limits.max_body_bytes".into(),
                "must be at least 1024".into(),
            ));
        }
        self.check_connections()?;
        if let Some(logboek) = &self.logboek {
            logboek.check()?;
        }
        let u = &self.usage_review;
        if u.office_hours_start >= u.office_hours_end || u.office_hours_end > 24 {
            return Err((
                "usage_review.office_hours_end".into(),
                "office hours must start before they end, within 0 to 24".into(),
            ));
        }
        if !(0.0..=1.0).contains(&u.max_refusal_share) {
            return Err((
                "usage_review.max_refusal_share".into(),
                "must be a share from 0 to 1".into(),
            ));
        }
        if !(1..=3600).contains(&self.limits.actor_max_lifetime_secs) {
            return Err((
                "limits.actor_max_lifetime_secs".into(),
                "must be 1 to 3600 (actor assertions are short-lived)".into(),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, org) in self.organisations.iter().enumerate() {
            if !seen.insert(&org.oin) {
                return Err((
                    format!("organisations[{i}].oin"),
                    format!("organisation {} is configured twice", org.oin),
                ));
            }
            for (j, k) in org
                .consent_keys
                .iter()
                .chain(&org.covenant_keys)
                .chain(&org.actor_keys)
                .enumerate()
            {
                if k.alg != "ES256" && k.alg != "EdDSA" {
                    return Err((
                        format!("organisations[{i}].keys[{j}].alg"),
                        format!("`{}` is not allowed: use ES256 or EdDSA", k.alg),
                    ));
                }
            }
        }
        for (name, s) in [
            ("secrets.kek", &self.secrets.kek),
            ("secrets.pseudonym_key", &self.secrets.pseudonym_key),
        ] {
            if s.file.is_none() && s.env.is_none() {
                return Err((name.into(), "give `file` or `env`".into()));
            }
        }
        Ok(())
    }

    fn check_connections(&self) -> Result<(), (String, String)> {
        let c = &self.connections;
        if c.max_unidentified == 0 {
            return Err((
                "connections.max_unidentified".into(),
                "must be at least 1 (people's endpoints and /metrics need a connection without an organisation certificate)".into(),
            ));
        }
        if c.max_unidentified >= c.max_open {
            return Err((
                "connections.max_unidentified".into(),
                format!(
                    "must be less than connections.max_open ({}), so that organisations always have room",
                    c.max_open
                ),
            ));
        }
        for (key, ms) in [
            ("connections.handshake_timeout_ms", c.handshake_timeout_ms),
            (
                "connections.header_read_timeout_ms",
                c.header_read_timeout_ms,
            ),
            ("connections.idle_timeout_ms", c.idle_timeout_ms),
        ] {
            if ms == 0 {
                return Err((key.into(), "must be at least 1".into()));
            }
        }
        Ok(())
    }

    /// Resolve a secret: the environment variable wins over the file when both are set and the
    /// variable is present. The value is base64 of at least `min_len` bytes.
    pub fn secret(&self, key: &str, min_len: usize) -> Result<Vec<u8>, ConfigError> {
        let source = match key {
            "secrets.kek" => &self.secrets.kek,
            _ => &self.secrets.pseudonym_key,
        };
        let invalid = |message: String| ConfigError::Invalid {
            path: "(secrets)".into(),
            key: key.to_owned(),
            message,
        };
        let text = match (&source.env, &source.file) {
            (Some(var), file) => match std::env::var(var) {
                Ok(v) => v,
                Err(_) => match file {
                    Some(f) => read_secret_file(f).map_err(invalid)?,
                    None => return Err(invalid(format!("environment variable {var} is not set"))),
                },
            },
            (None, Some(f)) => read_secret_file(f).map_err(invalid)?,
            (None, None) => return Err(invalid("give `file` or `env`".into())),
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| invalid("is not valid base64".into()))?;
        if bytes.len() < min_len {
            return Err(invalid(format!(
                "must be at least {min_len} bytes (got {})",
                bytes.len()
            )));
        }
        Ok(bytes)
    }
}

fn read_secret_file(f: &Path) -> Result<String, String> {
    std::fs::read_to_string(f).map_err(|e| format!("cannot read {}: {e}", f.display()))
}

/// The expiry warning window when the configuration names none.
pub const DEFAULT_EXPIRY_WARNING_DAYS: u32 = 60;

fn default_expiry_warning_days() -> u32 {
    DEFAULT_EXPIRY_WARNING_DAYS
}

/// How often an instance checks the database for covenant changes made elsewhere, when the
/// configuration names no interval.
pub const DEFAULT_REFRESH_INTERVAL_MS: u64 = 1000;

fn default_refresh_interval_ms() -> u64 {
    DEFAULT_REFRESH_INTERVAL_MS
}

/// `[covenants_admin]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Warn (list endpoint, `/metrics`) about covenants in force that end within this many days.
    #[serde(default = "default_expiry_warning_days")]
    pub expiry_warning_days: u32,
    /// Check the database this often (milliseconds) for covenant changes made through another
    /// instance or tool, and rebuild the snapshot when there are any (`ops::covenants::sync`):
    /// such a change takes effect here within this interval plus one rebuild. 0 turns the check
    /// off (one instance only, and no other writer).
    #[serde(default = "default_refresh_interval_ms")]
    pub refresh_interval_ms: u64,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            expiry_warning_days: DEFAULT_EXPIRY_WARNING_DAYS,
            refresh_interval_ms: DEFAULT_REFRESH_INTERVAL_MS,
        }
    }
}

/// How long audit records are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuditRetention {
    /// Forever (the default).
    #[default]
    Keep,
    /// This many days (at least); older records go, up to the latest checkpoint before the cut.
    Days(u32),
}

impl<'de> Deserialize<'de> for AuditRetention {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = toml::Value::deserialize(d)?;
        match (&value, value.as_integer()) {
            (toml::Value::String(s), _) if s == "keep" => Ok(AuditRetention::Keep),
            (_, Some(days)) if (1..=36_500).contains(&days) => {
                Ok(AuditRetention::Days(days as u32))
            }
            _ => Err(serde::de::Error::custom(
                "give \"keep\" (the default) or a number of days from 1 to 36500",
            )),
        }
    }
}

impl AuditRetention {
    pub fn prunes(self) -> bool {
        matches!(self, AuditRetention::Days(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[gateway]
id = "gw"
listen = "127.0.0.1:0"
[tls]
cert = "s.pem"
key = "k.pem"
client_ca = "ca.pem"
[database]
url = "sqlite://x.db"
[secrets]
kek = { env = "X_KEK" }
pseudonym_key = { file = "p.b64" }
"#;

    #[test]
    fn minimal_config_parses_with_safe_defaults_and_anchored_paths() {
        let c = Config::parse(MINIMAL, "t.toml", Path::new("/etc/pw")).unwrap();
        assert_eq!(c.limits.max_body_bytes, 64 * 1024);
        assert_eq!(c.connections.max_open, DEFAULT_MAX_OPEN);
        assert_eq!(c.connections.max_unidentified, DEFAULT_MAX_UNIDENTIFIED);
        assert_eq!(c.connections.header_read_timeout_ms, 10_000);
        assert_eq!(c.tls.cert, PathBuf::from("/etc/pw/s.pem"));
        assert_eq!(c.database.url, "sqlite:///etc/pw/x.db");
    }

    #[test]
    fn production_example_configuration_parses() {
        let text = include_str!("../../deploy/poortwachter.production.toml");
        let c = Config::parse(
            text,
            "deploy/poortwachter.production.toml",
            Path::new("/etc"),
        )
        .unwrap();
        assert_eq!(c.organisations.len(), 2);
        assert_eq!(c.covenants[0].signatures.len(), 2);
        assert!(c.database.url.starts_with("sqlite:///var/lib/"));
        // Ready for PostgreSQL (the URL comes from the environment): TLS, verify-full.
        assert_eq!(c.database.sslmode, SslMode::VerifyFull);
        assert!(c.database.sslrootcert.is_some());
    }

    #[test]
    fn unknown_key_is_named() {
        let text = MINIMAL.replace("[tls]", "[tls]\ncertificate = \"x\"");
        let e = Config::parse(&text, "t.toml", Path::new(".")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("tls"), "{msg}");
        assert!(msg.contains("certificate"), "{msg}");
    }

    #[test]
    fn unidentified_budget_must_leave_room_for_organisations() {
        let text = format!("{MINIMAL}[connections]\nmax_open = 100\nmax_unidentified = 100\n");
        let msg = Config::parse(&text, "t.toml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("connections.max_unidentified"), "{msg}");
        let text = format!("{MINIMAL}[connections]\nidle_timeout_ms = 0\n");
        let msg = Config::parse(&text, "t.toml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("connections.idle_timeout_ms"), "{msg}");
    }

    #[test]
    fn bad_value_is_named_with_its_key() {
        let text = MINIMAL.replace("127.0.0.1:0", "not-an-address");
        let msg = Config::parse(&text, "t.toml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("gateway.listen"), "{msg}");
        let text = MINIMAL.replace("sqlite://x.db", "mysql://x");
        let msg = Config::parse(&text, "t.toml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("database.url"), "{msg}");
    }

    /// A `postgres://` URL with nothing else said goes over TLS with verify-full: without a CA
    /// to verify against the configuration is refused, naming the key, never run in plaintext.
    #[test]
    fn a_postgres_url_without_tls_settings_is_refused_not_run_in_plaintext() {
        let text = MINIMAL.replace("sqlite://x.db", "postgres://pw@db.internal/pw");
        let msg = Config::parse(&text, "t.toml", Path::new("/etc/pw"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("database.sslrootcert"), "{msg}");

        let text = text.replace(
            "url = \"postgres://pw@db.internal/pw\"",
            "url = \"postgres://pw@db.internal/pw\"\nsslrootcert = \"db-ca.pem\"",
        );
        let c = Config::parse(&text, "t.toml", Path::new("/etc/pw")).unwrap();
        assert_eq!(c.database.sslmode, SslMode::VerifyFull);
        assert_eq!(
            c.database.sslrootcert,
            Some(PathBuf::from("/etc/pw/db-ca.pem"))
        );
        assert_eq!(c.database.acquire_timeout_ms, 2000);
    }

    /// The URL (often from a secret or an environment variable) cannot weaken TLS.
    #[test]
    fn tls_settings_in_a_postgres_url_are_refused() {
        for query in [
            "sslmode=disable",
            "sslmode=require",
            "sslrootcert=/tmp/x.pem",
        ] {
            let text = MINIMAL.replace(
                "url = \"sqlite://x.db\"",
                &format!(
                    "url = \"postgres://pw@db.internal/pw?{query}\"\nsslrootcert = \"ca.pem\""
                ),
            );
            let msg = Config::parse(&text, "t.toml", Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(msg.contains("database.url"), "{query}: {msg}");
        }
        let text = MINIMAL.replace("sqlite://x.db", "postgres://pw@db.internal/pw");
        let text = text.replace("[database]\n", "[database]\nsslmode = \"prefer\"\n");
        let msg = Config::parse(&text, "t.toml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("database.sslmode"), "{msg}");
    }

    // ── [logboek] ──

    fn logboek(lines: &str) -> Result<Config, String> {
        let text = format!("{MINIMAL}[logboek]\n{lines}\n");
        Config::parse(&text, "t.toml", Path::new("/etc/pw")).map_err(|e| e.to_string())
    }

    #[test]
    fn logboek_export_is_off_unless_configured_and_defaults_are_safe() {
        let c = Config::parse(MINIMAL, "t.toml", Path::new("/etc/pw")).unwrap();
        assert!(c.logboek.is_none());
        let c = logboek(
            "endpoint = \"https://logboek.example.nl:4318/v1/traces\"\nca = \"logboek-ca.pem\"",
        )
        .unwrap();
        let l = c.logboek.unwrap();
        assert_eq!(l.ca, Some(PathBuf::from("/etc/pw/logboek-ca.pem")));
        assert_eq!(
            (l.timeout_ms, l.batch_size, l.interval_ms),
            (5_000, 256, 1_000)
        );
        assert!(l.max_backoff_ms >= l.interval_ms);
    }

    #[test]
    fn logboek_records_never_leave_the_machine_unencrypted() {
        for (lines, key) in [
            (
                "endpoint = \"http://logboek.example.nl:4318/v1/traces\"",
                "logboek.endpoint",
            ),
            (
                "endpoint = \"http://10.0.0.5:4318/v1/traces\"",
                "logboek.endpoint",
            ),
            (
                "endpoint = \"https://logboek.example.nl/v1/traces\"",
                "logboek.ca",
            ),
            (
                "endpoint = \"ftp://logboek.example.nl/\"",
                "logboek.endpoint",
            ),
            ("endpoint = \"not a url\"", "logboek.endpoint"),
        ] {
            let msg = logboek(lines).unwrap_err();
            assert!(msg.contains(key), "{lines}: {msg}");
        }
        for loopback in ["127.0.0.1:4318", "localhost:4318", "[::1]:4318"] {
            logboek(&format!("endpoint = \"http://{loopback}/v1/traces\""))
                .unwrap_or_else(|e| panic!("{loopback}: {e}"));
        }
    }

    #[test]
    fn logboek_batch_and_timing_must_make_sense() {
        let base = "endpoint = \"http://127.0.0.1:4318/v1/traces\"";
        for (extra, key) in [
            ("batch_size = 0", "logboek.batch_size"),
            ("batch_size = 10001", "logboek.batch_size"),
            ("timeout_ms = 0", "logboek.timeout_ms"),
            ("interval_ms = 0", "logboek.interval_ms"),
            (
                "interval_ms = 5000\nmax_backoff_ms = 1000",
                "logboek.max_backoff_ms",
            ),
            (
                "data_subject_id_type = \" \"",
                "logboek.data_subject_id_type",
            ),
        ] {
            let msg = logboek(&format!("{base}\n{extra}")).unwrap_err();
            assert!(msg.contains(key), "{extra}: {msg}");
        }
    }
}
