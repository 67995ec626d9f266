//! Shared fixture of the end-to-end tests: a gateway with the demo setup (example certificates,
//! the Drechtsteden covenant signed by both parties, fresh secrets, SQLite) in a fresh temporary
//! directory, plus helpers for requests, consent tokens, problem answers and the audit chain.
//! Each test binary uses only part of it.
//!
//! The database: SQLite in the data directory, unless `POORTWACHTER_TEST_DATABASE=postgres`, in
//! which case [`Gateway::start`] uses a fresh database of its own on the PostgreSQL server named by
//! `POORTWACHTER_TEST_POSTGRES_URL` (so a whole suite can run once per backend).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use devkit::client::{ClientResponse, MtlsClient};
use devkit::demo::{self, DemoPaths};
use gateway::audit::record::{AuditRecord, GENESIS};
use gateway::server::RunningServer;
use gateway::store::Store;
use hyper::Method;
use policy::ConsentClaims;
use serde_json::{json, Value};

/// The repository root (the gateway crate lives in `gateway/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

/// The committed development certificates and keys.
pub fn certs_dir() -> PathBuf {
    repo_root().join("certs-example")
}

/// The file in a data directory that names the PostgreSQL database its gateway uses (absent:
/// SQLite in the data directory).
const DATABASE_URL_FILE: &str = "database-url";

/// Write the demo configuration into `data`, listening on `listen`; returns the config file. When
/// the data directory was set up for PostgreSQL ([`use_postgres`]), the configuration names that
/// database instead of the SQLite file.
pub fn write_demo_config(data: &Path, listen: &str) -> PathBuf {
    let path = demo::write_config(&DemoPaths::in_repo(&repo_root(), data), listen)
        .expect("demo configuration is written");
    if let Ok(url) = std::fs::read_to_string(data.join(DATABASE_URL_FILE)) {
        let text = std::fs::read_to_string(&path).expect("configuration readable");
        let sqlite = format!("url = \"{}\"", sqlite_url(data));
        assert!(text.contains(&sqlite), "the demo configuration uses SQLite");
        let mut postgres = format!("url = \"{}\"", url.trim());
        match postgres_ca() {
            Some(ca) => postgres.push_str(&format!("\nsslrootcert = \"{}\"", ca.display())),
            None => postgres.push_str("\nsslmode = \"disable\""),
        }
        let text = text.replace(&sqlite, &postgres);
        std::fs::write(&path, text).expect("configuration written");
    }
    path
}

fn sqlite_url(data: &Path) -> String {
    let data = data.canonicalize().expect("data dir exists");
    format!("sqlite://{}/poortwachter.db", data.display())
}

/// The database URL the demo configuration in `data` uses.
pub fn db_url(data: &Path) -> String {
    match std::fs::read_to_string(data.join(DATABASE_URL_FILE)) {
        Ok(url) => url.trim().to_owned(),
        Err(_) => sqlite_url(data),
    }
}

/// Which database a test gateway uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestDatabase {
    Sqlite,
    Postgres,
}

impl TestDatabase {
    /// `POORTWACHTER_TEST_DATABASE` (`sqlite`, the default, or `postgres`).
    pub fn from_env() -> TestDatabase {
        match std::env::var("POORTWACHTER_TEST_DATABASE").as_deref() {
            Ok("postgres") => TestDatabase::Postgres,
            Ok("sqlite") | Err(_) => TestDatabase::Sqlite,
            Ok(other) => panic!("POORTWACHTER_TEST_DATABASE={other}: use sqlite or postgres"),
        }
    }
}

/// The PostgreSQL server for tests (`POORTWACHTER_TEST_POSTGRES_URL`), or `None` when there is
/// none. Panics when there is none but `POORTWACHTER_REQUIRE_POSTGRES=1` (CI: never skip).
pub fn postgres_server() -> Option<String> {
    match std::env::var("POORTWACHTER_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("POORTWACHTER_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "POORTWACHTER_REQUIRE_POSTGRES=1 but POORTWACHTER_TEST_POSTGRES_URL is not set"
            );
            None
        }
    }
}

/// The CA of the test PostgreSQL server's certificate (`POORTWACHTER_TEST_POSTGRES_CA`, set by
/// `tests/run-all.sh`, whose server accepts TLS connections only). Without it the tests reach
/// the server in plaintext, which the gateway allows on loopback only.
pub fn postgres_ca() -> Option<PathBuf> {
    std::env::var_os("POORTWACHTER_TEST_POSTGRES_CA").map(PathBuf::from)
}

/// The database section a test opens `url` with: for PostgreSQL, TLS (verify-full) against the
/// test server's CA when there is one, else plaintext on loopback.
pub fn database(url: &str) -> gateway::config::DatabaseSection {
    let mut database = gateway::config::DatabaseSection::new(url);
    database.max_connections = 2;
    if database.is_postgres() {
        match postgres_ca() {
            Some(ca) => database.sslrootcert = Some(ca),
            None => database.sslmode = gateway::config::SslMode::Disable,
        }
    }
    database
}

/// A connection of the test's own to a PostgreSQL database, over the same TLS as the gateway's.
pub async fn postgres_connection(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    use std::str::FromStr;
    let mut options = sqlx::postgres::PgConnectOptions::from_str(url).expect("PostgreSQL URL");
    options = match postgres_ca() {
        Some(ca) => options
            .ssl_mode(sqlx::postgres::PgSslMode::VerifyFull)
            .ssl_root_cert(ca),
        None => options.ssl_mode(sqlx::postgres::PgSslMode::Disable),
    };
    sqlx::PgConnection::connect_with(&options)
        .await
        .expect("the test PostgreSQL server accepts connections")
}

/// Create a fresh, empty database on the test PostgreSQL server; returns its URL.
pub async fn fresh_postgres_database(server: &str) -> String {
    use sqlx::Connection;
    let name = format!(
        "pw_test_{}",
        gateway::crypto::random_id("db").replace('_', "")
    )
    .to_ascii_lowercase();
    assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    let mut conn = postgres_connection(server).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("test database created");
    let _ = conn.close().await;
    let base = server.split('?').next().unwrap_or(server);
    let (server, _) = base.rsplit_once('/').expect("the URL names a database");
    format!("{server}/{name}")
}

/// Make the gateway configured in `data` use a fresh PostgreSQL database on `server`.
pub async fn use_postgres(data: &Path, server: &str) -> String {
    let url = fresh_postgres_database(server).await;
    std::fs::write(data.join(DATABASE_URL_FILE), &url).expect("database url written");
    url
}

/// A gateway running in this process on `127.0.0.1:<ephemeral>`.
pub struct Gateway {
    pub port: u16,
    pub certs: PathBuf,
    /// The data directory (configuration, secrets, SQLite); removed on drop.
    pub data: tempfile::TempDir,
    pub config_path: PathBuf,
    pub server: RunningServer,
    pub writer: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Start a gateway with the demo setup in a fresh temporary directory, on the database
    /// `POORTWACHTER_TEST_DATABASE` names.
    pub async fn start() -> Gateway {
        Gateway::start_on(TestDatabase::from_env(), |_| {}).await
    }

    /// Start a gateway with the demo setup in a fresh temporary directory, on `database` (a
    /// fresh one), with `adjust` applied to the loaded configuration.
    pub async fn start_on(
        database: TestDatabase,
        adjust: impl FnOnce(&mut gateway::config::Config),
    ) -> Gateway {
        let data = tempfile::tempdir().expect("temporary directory");
        if database == TestDatabase::Postgres {
            let server = postgres_server()
                .expect("POORTWACHTER_TEST_DATABASE=postgres needs POORTWACHTER_TEST_POSTGRES_URL");
            use_postgres(data.path(), &server).await;
        }
        let config_path = write_demo_config(data.path(), "127.0.0.1:0");
        let mut config =
            gateway::config::Config::load(&config_path).expect("demo configuration loads");
        adjust(&mut config);
        let (server, writer) = gateway::cli::serve::start(config)
            .await
            .expect("gateway starts");
        Gateway {
            port: server.addr.port(),
            certs: certs_dir(),
            data,
            config_path,
            server,
            writer,
        }
    }

    /// A client presenting the example certificate `name` (`uwv`, `sdd`, `gorinchem`, …).
    pub fn client(&self, name: &str) -> MtlsClient {
        client(&self.certs, name, self.port)
    }

    /// A client that presents no certificate at all.
    pub fn anonymous_client(&self) -> MtlsClient {
        MtlsClient::builder(self.certs.join("ca.pem"))
            .port(self.port)
            .timeout(Duration::from_secs(10))
            .build()
            .expect("anonymous client builds")
    }

    pub fn db_url(&self) -> String {
        db_url(self.data.path())
    }

    /// Open the gateway's database (a second pool on the same SQLite file or PostgreSQL database).
    pub async fn store(&self) -> Store {
        Store::open(&database(&self.db_url()))
            .await
            .expect("store opens")
    }

    /// `who` presents a consent token for registration; returns the answer.
    pub async fn register_as(&self, who: &str, token: &str) -> ClientResponse {
        post(
            &self.client(who),
            "/v1/consents",
            &json!({ "token": token }),
        )
        .await
    }

    /// UWV registers the demo consent (job mediation → SDD) for `bsn`; returns its id.
    pub async fn register_demo_consent(&self, bsn: &str) -> String {
        let jti = new_jti();
        let token = sign_as_uwv(&demo_consent(&jti, bsn));
        let r = self.register_as("uwv", &token).await;
        assert_eq!(r.status, 201, "consent registered: {}", text(&r));
        assert_eq!(r.json()["consent_id"], jti);
        jti
    }

    /// `who` stores `record` (`{"fields": {…}}`) for (`purpose`, `bsn`) with
    /// `POST /v1/handovers`; returns the answer.
    pub async fn put_handover(
        &self,
        who: &str,
        purpose: &str,
        bsn: &str,
        record: &Value,
    ) -> ClientResponse {
        let body = demo::handover_request(purpose, bsn, record);
        post(&self.client(who), "/v1/handovers", &body).await
    }

    /// `who` asks for a disclosure.
    pub async fn disclose(&self, who: &str, body: &Value) -> ClientResponse {
        post(&self.client(who), "/v1/disclosures", body).await
    }
}

/// A client with the example certificate `name` for `127.0.0.1:port`.
pub fn client(certs: &Path, name: &str, port: u16) -> MtlsClient {
    demo::client(certs, name, port).expect("client builds")
}

/// POST a JSON value; panics when no HTTP answer comes back.
pub async fn post(client: &MtlsClient, path: &str, body: &Value) -> ClientResponse {
    client
        .post_json(path, body)
        .await
        .unwrap_or_else(|e| panic!("POST {path} answered: {e}"))
}

/// POST raw bytes (sent as `application/json`); panics when no HTTP answer comes back.
pub async fn post_raw(client: &MtlsClient, path: &str, body: Vec<u8>) -> ClientResponse {
    client
        .send(Method::POST, path, None, Some(body))
        .await
        .unwrap_or_else(|e| panic!("POST {path} answered: {e}"))
}

/// A disclosure request body.
pub fn ask(bsn: &str, purpose: &str, fields: &[&str]) -> Value {
    json!({
        "subject": { "bsn": bsn },
        "purpose": purpose,
        "fields": fields
    })
}

/// The body as text, for assertion messages.
pub fn text(r: &ClientResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// Assert that `r` is an RFC 9457 problem with exactly this status and `reason`; returns it.
#[track_caller]
pub fn assert_problem(r: &ClientResponse, status: u16, reason: &str) -> Value {
    assert_eq!(
        (r.status, r.content_type.as_deref()),
        (status, Some("application/problem+json")),
        "expected {status} {reason}, got body {}",
        text(r)
    );
    let v = r.json();
    assert_eq!(v["reason"], reason, "body: {}", text(r));
    assert_eq!(v["status"], status, "body: {}", text(r));
    assert_eq!(
        v["type"],
        format!("https://poortwachter.example/problems/{reason}")
    );
    v
}

/// Assert a disclosure refusal (403, `reason`, with a `disclosure_id`); returns that id.
#[track_caller]
pub fn assert_refused(r: &ClientResponse, reason: &str) -> String {
    let v = assert_problem(r, 403, reason);
    v["disclosure_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a refusal carries a disclosure_id: {}", text(r)))
        .to_owned()
}

/// Assert a permitted disclosure; returns the body.
#[track_caller]
pub fn assert_permitted(r: &ClientResponse) -> Value {
    assert_eq!(
        (r.status, r.content_type.as_deref()),
        (200, Some("application/json")),
        "expected a permit, got {}",
        text(r)
    );
    let v = r.json();
    assert_eq!(v["decision"], "permit");
    assert!(v["disclosure_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("dsc_")));
    v
}

/// The `n`-th made-up BSN that passes the 11-check (distinct for distinct `n` < 10^7).
pub fn bsn(n: u32) -> String {
    let mut x = 10_000_000u64 + u64::from(n) * 9;
    loop {
        let d: Vec<u64> = format!("{:08}", x % 100_000_000)
            .bytes()
            .map(|b| u64::from(b - b'0'))
            .collect();
        let sum: u64 = d.iter().enumerate().map(|(i, v)| v * (9 - i as u64)).sum();
        let check = sum % 11;
        if check < 10 {
            let s = format!("{:08}{check}", x % 100_000_000);
            assert!(s.parse::<policy::Bsn>().is_ok(), "{s} passes the 11-check");
            return s;
        }
        x += 1;
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn new_jti() -> String {
    gateway::crypto::random_id("consent")
}

/// The demo consent (job mediation → SDD, nine job-readiness fields, valid for a year).
pub fn demo_consent(jti: &str, bsn: &str) -> ConsentClaims {
    demo::demo_consent(jti, bsn, now()).expect("demo consent claims")
}

/// Sign claims with UWV's consent key (ES256, kid `uwv-consent-1`).
pub fn sign_as_uwv(claims: &ConsentClaims) -> String {
    demo::sign_as_uwv(&certs_dir(), claims).expect("token signs")
}

/// Every audit record, in order.
pub async fn audit_records(store: &Store) -> Vec<AuditRecord> {
    let mut all = Vec::new();
    loop {
        let after = all.last().map_or(0, |r: &AuditRecord| r.seq);
        let page = store
            .audit_records(after, 1000)
            .await
            .expect("audit readable");
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// Assert that the audit chain is intact: sequence numbers 1, 2, …, each record's `prev_hash` is
/// the previous record's hash (genesis first) and each hash matches its content.
pub async fn assert_chain_verifies(store: &Store) -> Vec<AuditRecord> {
    let records = audit_records(store).await;
    let mut prev = GENESIS;
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as i64 + 1, "audit sequence has no gaps");
        assert_eq!(
            r.prev_hash, prev,
            "record {} links to its predecessor",
            r.seq
        );
        assert!(
            r.hash_is_valid(),
            "record {} hash matches its content",
            r.seq
        );
        prev = r.hash;
    }
    records
}

/// Assert that every id is in the audit log.
pub async fn assert_audited(store: &Store, ids: &[String]) {
    for id in ids {
        assert!(
            store.audit_has_id(id).await.expect("audit readable"),
            "disclosure {id} is in the audit log"
        );
    }
}

// ── forged and hand-made tokens ─────────────────────────────────────────────────────────────

/// Base64url without padding, as JWS uses it.
pub fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS over exactly this header and these claims (for attacks a proper issuer would
/// never sign: odd headers, algorithms, claims).
pub fn jws(
    header: &Value,
    claims: &Value,
    alg: jsonwebtoken::Algorithm,
    key: &jsonwebtoken::EncodingKey,
) -> String {
    let input = format!(
        "{}.{}",
        b64url(&serde_json::to_vec(header).unwrap()),
        b64url(&serde_json::to_vec(claims).unwrap())
    );
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).expect("signs");
    format!("{input}.{sig}")
}

/// UWV's example consent-signing key (ES256).
pub fn uwv_consent_key() -> jsonwebtoken::EncodingKey {
    gateway::keys::load_private(
        &certs_dir().join("consent-keys/uwv-es256.key.pem"),
        jsonwebtoken::Algorithm::ES256,
    )
    .expect("UWV consent key loads")
}

// ── the log, captured ───────────────────────────────────────────────────────────────────────

/// Log output collected in memory (a `tracing` writer), to search for what must never be logged.
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// As UWV (`uwv`, its client): register the demo consent for `bsn` and store the demo handover
/// record under it, so a disclosure about `bsn` is a release. Panics unless both are stored.
pub async fn seed_demo_client(uwv: &MtlsClient, bsn: &str) {
    let token = sign_as_uwv(&demo_consent(&new_jti(), bsn));
    let r = post(uwv, "/v1/consents", &json!({ "token": token })).await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let record = demo::handover_request("job-mediation", bsn, &demo::demo_handover());
    let r = post(uwv, "/v1/handovers", &record).await;
    assert_eq!(r.status, 201, "{}", text(&r));
}
