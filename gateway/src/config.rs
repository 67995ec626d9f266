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

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_body_bytes: default_max_body(),
            request_timeout_ms: default_timeout(),
            token_leeway_secs: default_leeway(),
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
        if let Some(ca) = self.database.sslrootcert.as_mut() {
            fix(ca)
        }
        self.audit.checkpoint_previous_keys.iter_mut().for_each(fix);
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
}
