//! The gateway on PostgreSQL, end to end over mutual TLS, and scale-out: two gateway instances
//! (in this process, on their own ports, with the same configuration and secrets) on one
//! PostgreSQL database. Under concurrent load through both they extend one unforked, verifiable
//! audit chain; a consent revoked through one is refused by the other on its next request; a
//! covenant suspended through one takes effect on the other within the refresh interval.
//!
//! Needs `POORTWACHTER_TEST_POSTGRES_URL` (a server where the tests may create databases; each
//! test makes its own). Without it the tests pass vacuously, unless
//! `POORTWACHTER_REQUIRE_POSTGRES=1` (as `tests/run-all.sh` sets), which makes them fail.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use devkit::client::{ClientResponse, MtlsClient};
use devkit::demo::SDD;
use gateway::audit::checkpoint::{CheckpointKeys, CheckpointPublicKey};
use gateway::config::Config;
use gateway::server::RunningServer;
use hyper::Method;

/// The covenant refresh interval of the instances in these tests.
const REFRESH_MS: u64 = 250;
/// What a loaded CI machine may add to the refresh interval before a change shows.
const SLACK: Duration = Duration::from_secs(3);

/// The PostgreSQL server, or `None` (and a note) when the tests cannot run here.
fn server_or_skip(test: &str) -> Option<String> {
    let server = postgres_server();
    if server.is_none() {
        eprintln!("{test}: skipped, POORTWACHTER_TEST_POSTGRES_URL is not set");
    }
    server
}

fn adjust(config: &mut Config) {
    config.covenants_admin.refresh_interval_ms = REFRESH_MS;
}

/// For the load test: checkpoints every few records, so that both instances sign many of them
/// in their append transactions while the other appends.
fn adjust_frequent_checkpoints(config: &mut Config) {
    adjust(config);
    config.audit.checkpoint_every_records = 25;
}

/// A second gateway instance: the first one's configuration file (same secrets, same checkpoint
/// key, same PostgreSQL database), its own ephemeral port.
struct Peer {
    port: u16,
    server: RunningServer,
    writer: tokio::task::JoinHandle<()>,
}

impl Peer {
    async fn start(first: &Gateway, adjust: fn(&mut Config)) -> Peer {
        let mut config =
            gateway::config::Config::load(&first.config_path).expect("configuration loads");
        adjust(&mut config);
        let (server, writer) = gateway::cli::serve::start(config)
            .await
            .expect("second instance starts");
        Peer {
            port: server.addr.port(),
            server,
            writer,
        }
    }

    fn client(&self, name: &str) -> MtlsClient {
        client(&certs_dir(), name, self.port)
    }

    async fn disclose(&self, who: &str, body: &serde_json::Value) -> ClientResponse {
        post(&self.client(who), "/v1/disclosures", body).await
    }

    async fn stop(self) {
        self.server.shutdown(Duration::from_secs(10)).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.writer).await;
    }
}

async fn stop(gw: Gateway) -> tempfile::TempDir {
    let Gateway {
        data,
        server,
        writer,
        ..
    } = gw;
    server.shutdown(Duration::from_secs(10)).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;
    data
}

async fn start_pair(adjust: fn(&mut Config)) -> (Gateway, Peer) {
    let a = Gateway::start_on(TestDatabase::Postgres, adjust).await;
    let b = Peer::start(&a, adjust).await;
    (a, b)
}

fn checkpoint_keys() -> CheckpointKeys {
    let key = CheckpointPublicKey::load(&certs_dir().join("audit/checkpoint-ed25519.pub.pem"))
        .expect("checkpoint public key loads");
    CheckpointKeys::new([key])
}

/// Verify the whole log with its signed checkpoints (the verifier privacy officers run).
async fn assert_log_verifies(url: &str) -> gateway::audit::verify::VerifyReport {
    let store = gateway::store::Store::open_read_only(&database(url))
        .await
        .expect("read-only store opens");
    let report = gateway::audit::verify_sources::verify_store(
        &store,
        checkpoint_keys(),
        Default::default(),
        |_| {},
    )
    .await
    .expect("log readable");
    assert!(report.ok, "the audit log verifies: {report:?}");
    assert_eq!(report.checkpoints_matched, report.checkpoints, "{report:?}");
    report
}

async fn revoke(client: &MtlsClient, jti: &str) -> ClientResponse {
    client
        .send(
            Method::POST,
            &format!("/v1/consents/{jti}/revoke"),
            None,
            None,
        )
        .await
        .expect("answered")
}

fn admin_token() -> String {
    devkit::demo::person_token(&certs_dir(), "regio-admin-1", SDD, &["covenant-admin"])
        .expect("bearer token")
}

/// A covenant administrator's act (`suspend`, `resume`) on the instance at `port`.
async fn covenant_act(port: u16, what: &str) {
    let anon = MtlsClient::builder(certs_dir().join("ca.pem"))
        .port(port)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client builds");
    let path = format!("/v1/covenants/drechtsteden-max-ww/{what}");
    let r = anon
        .send(Method::POST, &path, Some(&admin_token()), None)
        .await
        .expect("answered");
    assert_eq!(r.status, 200, "{what}: {}", text(&r));
}

/// Ask through `disclose` until `done` holds for the answer; returns how long that took. Fails
/// when it takes longer than `bound`.
async fn until_within<F, Fut>(
    bound: Duration,
    what: &str,
    disclose: F,
    done: fn(&ClientResponse) -> bool,
) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ClientResponse>,
{
    let start = Instant::now();
    loop {
        let r = disclose().await;
        if done(&r) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() <= bound,
            "{what}: not within {bound:?}; last answer {}",
            text(&r)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ── one instance: the representative end-to-end scenario ───────────────────────────────────

#[tokio::test]
async fn postgres_backend_runs_the_whole_disclosure_path_and_its_audit_chain_verifies() {
    let Some(_) = server_or_skip("postgres end to end") else {
        return;
    };
    let gw = Gateway::start_on(TestDatabase::Postgres, adjust).await;
    assert!(gw.db_url().starts_with("postgres://"));
    let with_consent = bsn(100);
    let revoked = bsn(101);
    let expired = bsn(102);
    let without = bsn(103);

    let jti = gw.register_demo_consent(&with_consent).await;
    let r = gw
        .put_handover(
            "uwv",
            "job-mediation",
            &with_consent,
            &devkit::demo::demo_handover(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    assert_eq!(r.json()["consent"], jti);
    let revoked_jti = gw.register_demo_consent(&revoked).await;
    assert_eq!(revoke(&gw.client("uwv"), &revoked_jti).await.status, 200);
    assert_problem(
        &revoke(&gw.client("uwv"), &revoked_jti).await,
        409,
        "consent-revoked",
    );
    let mut claims = demo_consent(&new_jti(), &expired);
    claims.exp = now() - 30;
    assert_eq!(
        gw.register_as("uwv", &sign_as_uwv(&claims)).await.status,
        201
    );
    // A consent id is registered once, whichever instance or table it would race with.
    let again = sign_as_uwv(&demo_consent(&jti, &with_consent));
    assert_problem(
        &gw.register_as("uwv", &again).await,
        409,
        "duplicate-consent",
    );

    let mut answered = Vec::new();
    let r = gw
        .disclose(
            "sdd",
            &ask(&with_consent, "job-mediation", &["own_transport", "cv"]),
        )
        .await;
    let v = assert_permitted(&r);
    assert_eq!(v["record"], "found");
    assert!(v["released"].get("own_transport").is_some(), "{v}");
    answered.push(v["disclosure_id"].as_str().unwrap().to_owned());
    let refusals = [
        (
            "sdd",
            ask(&without, "job-mediation", &["own_transport"]),
            "consent-required",
        ),
        (
            "sdd",
            ask(&revoked, "job-mediation", &["own_transport"]),
            "consent-revoked",
        ),
        (
            "sdd",
            ask(&expired, "job-mediation", &["own_transport"]),
            "consent-expired",
        ),
        (
            "sdd",
            ask(&with_consent, "debt-counselling", &["own_transport"]),
            "purpose-not-granted",
        ),
        (
            "sdd",
            ask(&with_consent, "job-mediation", &["debt_assistance"]),
            "field-not-granted",
        ),
        (
            "gorinchem",
            ask(&with_consent, "job-mediation", &["own_transport"]),
            "no-active-covenant",
        ),
    ];
    for (who, body, reason) in &refusals {
        answered.push(assert_refused(&gw.disclose(who, body).await, reason));
    }
    // Refusals before any decision: no disclosure id, nothing about a subject looked up.
    let r = gw
        .disclose(
            "sdd",
            &ask("123456789", "job-mediation", &["own_transport"]),
        )
        .await;
    assert_problem(&r, 400, "invalid-bsn");
    let r = post_raw(
        &gw.client("sdd"),
        "/v1/disclosures",
        b"{\"subject\":".to_vec(),
    )
    .await;
    assert_problem(&r, 400, "malformed-request");
    let r = post(
        &gw.anonymous_client(),
        "/v1/disclosures",
        &ask(&with_consent, "job-mediation", &["own_transport"]),
    )
    .await;
    assert_problem(&r, 401, "no-client-certificate");
    let r = gw
        .disclose(
            "unknown-org",
            &ask(&with_consent, "job-mediation", &["own_transport"]),
        )
        .await;
    assert_problem(&r, 403, "unknown-organisation");

    // Revocation destroys the handover record held under the consent.
    let r = revoke(&gw.client("uwv"), &jti).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.json()["handovers_destroyed"], 1);
    answered.push(assert_refused(
        &gw.disclose(
            "sdd",
            &ask(&with_consent, "job-mediation", &["own_transport"]),
        )
        .await,
        "consent-revoked",
    ));
    gw.register_demo_consent(&with_consent).await;
    let v = assert_permitted(
        &gw.disclose(
            "sdd",
            &ask(&with_consent, "job-mediation", &["own_transport"]),
        )
        .await,
    );
    assert_eq!(v["record"], "no-record");
    answered.push(v["disclosure_id"].as_str().unwrap().to_owned());

    // A covenant suspension takes effect on the next request of the instance that made it.
    covenant_act(gw.port, "suspend").await;
    answered.push(assert_refused(
        &gw.disclose(
            "sdd",
            &ask(&with_consent, "job-mediation", &["own_transport"]),
        )
        .await,
        "no-active-covenant",
    ));

    let store = gw.store().await;
    assert_audited(&store, &answered).await;
    let records = assert_chain_verifies(&store).await;
    let dump = serde_json::to_string(&records).unwrap();
    for b in [&with_consent, &revoked, &expired, &without] {
        assert!(!dump.contains(b.as_str()), "the audit log holds no BSN");
    }
    let url = gw.db_url();
    stop(gw).await;
    let report = assert_log_verifies(&url).await;
    assert_eq!(report.last_seq, Some(records.len() as i64));
    assert_eq!(
        report.unprotected_tail, 0,
        "the final checkpoint covers the head"
    );

    // The offline verifier reads the PostgreSQL database too (read-only, over TLS).
    let mut verify = std::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"));
    verify
        .args(["audit", "verify", "--database", &url, "--checkpoint-key"])
        .arg(certs_dir().join("audit/checkpoint-ed25519.pub.pem"));
    match postgres_ca() {
        Some(ca) => verify.arg("--sslrootcert").arg(ca),
        None => verify.arg("--no-tls-on-loopback"),
    };
    let out = verify.output().expect("poortwachter runs");
    assert!(
        out.status.success(),
        "audit verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ── two instances on one database ───────────────────────────────────────────────────────────

/// Disclosure requests per client task (4 tasks per instance).
fn requests_per_task() -> usize {
    std::env::var("POORTWACHTER_SCALE_OUT_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_under_concurrent_load_extend_one_unforked_verifiable_chain() {
    let Some(_) = server_or_skip("two instances under load") else {
        return;
    };
    let a = Gateway::start_on(TestDatabase::Postgres, adjust_frequent_checkpoints).await;
    let subjects: Vec<String> = (0..8).map(|i| bsn(200 + i)).collect();
    for s in &subjects {
        a.register_demo_consent(s).await;
        let r = a
            .put_handover("uwv", "job-mediation", s, &devkit::demo::demo_handover())
            .await;
        assert_eq!(r.status, 201, "{}", text(&r));
    }

    let n = requests_per_task();
    let mut tasks = Vec::new();
    let load = |port: u16, tasks: &mut Vec<tokio::task::JoinHandle<Vec<String>>>| {
        for task in 0..4usize {
            let subjects = subjects.clone();
            tasks.push(tokio::spawn(async move {
                let sdd = client(&certs_dir(), "sdd", port);
                let gorinchem = client(&certs_dir(), "gorinchem", port);
                let mut ids = Vec::with_capacity(n);
                for i in 0..n {
                    let subject = &subjects[(task + i) % subjects.len()];
                    let (who, body, expect) = match i % 4 {
                        0 | 1 => (
                            &sdd,
                            ask(subject, "job-mediation", &["own_transport"]),
                            None,
                        ),
                        2 => (
                            &sdd,
                            ask(subject, "job-mediation", &["debt_assistance"]),
                            Some("field-not-granted"),
                        ),
                        _ => (
                            &gorinchem,
                            ask(subject, "job-mediation", &["own_transport"]),
                            Some("no-active-covenant"),
                        ),
                    };
                    let r = post(who, "/v1/disclosures", &body).await;
                    let id = match expect {
                        None => assert_permitted(&r)["disclosure_id"]
                            .as_str()
                            .unwrap()
                            .to_owned(),
                        Some(reason) => assert_refused(&r, reason),
                    };
                    ids.push(id);
                }
                ids
            }));
        }
    };
    // The second instance starts while the first is appending and signing checkpoints (a
    // rolling start), then both take load.
    load(a.port, &mut tasks);
    let b = Peer::start(&a, adjust_frequent_checkpoints).await;
    load(b.port, &mut tasks);
    let mut answered = Vec::new();
    for t in tasks {
        answered.extend(t.await.expect("client task"));
    }
    assert_eq!(answered.len(), 8 * n);

    let url = a.db_url();
    b.stop().await;
    let _data = stop(a).await;

    let store = gateway::store::Store::open(&database(&url))
        .await
        .expect("store opens");
    // Every seq once, each record linked to its predecessor, each hash over its content.
    let records = assert_chain_verifies(&store).await;
    let ids: HashSet<&str> = records.iter().map(|r| r.entry.id.as_str()).collect();
    assert_eq!(ids.len(), records.len(), "no record twice");
    for id in &answered {
        assert!(
            ids.contains(id.as_str()),
            "answered disclosure {id} is in the log"
        );
    }
    let disclosures = records
        .iter()
        .filter(|r| r.entry.kind == Some(gateway::audit::record::AuditKind::Disclosure))
        .count();
    assert_eq!(
        disclosures,
        answered.len(),
        "every disclosure recorded once"
    );
    // Every checkpoint (signed by either instance) names a record of this one chain.
    let checkpoints = store
        .audit_checkpoints(0, i64::MAX)
        .await
        .expect("checkpoints");
    assert!(
        checkpoints.len() >= records.len() / 25,
        "{} checkpoints over {} records",
        checkpoints.len(),
        records.len()
    );
    for cp in &checkpoints {
        assert_eq!(
            cp.head,
            records[cp.seq as usize - 1].hash,
            "checkpoint {}",
            cp.seq
        );
    }
    let report = assert_log_verifies(&url).await;
    assert_eq!(report.last_seq, Some(records.len() as i64));
    assert_eq!(report.unprotected_tail, 0);
}

#[tokio::test]
async fn consent_revoked_through_one_instance_is_refused_by_the_other_on_its_next_request() {
    let Some(_) = server_or_skip("revocation across instances") else {
        return;
    };
    let (a, b) = start_pair(adjust).await;
    let subject = bsn(300);
    let jti = a.register_demo_consent(&subject).await;
    let r = a
        .put_handover(
            "uwv",
            "job-mediation",
            &subject,
            &devkit::demo::demo_handover(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let body = ask(&subject, "job-mediation", &["own_transport"]);
    assert_eq!(
        assert_permitted(&b.disclose("sdd", &body).await)["record"],
        "found"
    );

    let r = revoke(&a.client("uwv"), &jti).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    // No waiting: consents are read from the database on every request.
    assert_refused(&b.disclose("sdd", &body).await, "consent-revoked");
    // Nor can it be revoked twice, through either instance.
    assert_problem(
        &revoke(&b.client("uwv"), &jti).await,
        409,
        "consent-revoked",
    );
    // The record held under it is gone for the other instance too.
    a.register_demo_consent(&subject).await;
    assert_eq!(
        assert_permitted(&b.disclose("sdd", &body).await)["record"],
        "no-record"
    );
    b.stop().await;
    let url = a.db_url();
    stop(a).await;
    assert_log_verifies(&url).await;
}

#[tokio::test]
async fn covenant_change_through_one_instance_reaches_the_other_within_the_refresh_interval() {
    let Some(_) = server_or_skip("covenant change across instances") else {
        return;
    };
    let (a, b) = start_pair(adjust).await;
    let subject = bsn(400);
    a.register_demo_consent(&subject).await;
    let body = ask(&subject, "job-mediation", &["own_transport"]);
    assert_permitted(&b.disclose("sdd", &body).await);

    covenant_act(a.port, "suspend").await;
    // At once on the instance that made the change …
    assert_refused(&a.disclose("sdd", &body).await, "no-active-covenant");
    // … and on the other within the refresh interval (plus a rebuild).
    let bound = Duration::from_millis(REFRESH_MS) + SLACK;
    let took = until_within(
        bound,
        "suspension reaches the second instance",
        || b.disclose("sdd", &body),
        |r| r.status == 403 && r.json()["reason"] == "no-active-covenant",
    )
    .await;
    eprintln!("suspension reached the second instance after {took:?}");

    covenant_act(a.port, "resume").await;
    assert_permitted(&a.disclose("sdd", &body).await);
    until_within(
        bound,
        "resumption reaches the second instance",
        || b.disclose("sdd", &body),
        |r| r.status == 200,
    )
    .await;

    // And the other way round: an act through the second instance reaches the first.
    covenant_act(b.port, "suspend").await;
    assert_refused(&b.disclose("sdd", &body).await, "no-active-covenant");
    until_within(
        bound,
        "suspension reaches the first instance",
        || a.disclose("sdd", &body),
        |r| r.status == 403 && r.json()["reason"] == "no-active-covenant",
    )
    .await;
    b.stop().await;
    let url = a.db_url();
    stop(a).await;
    assert_log_verifies(&url).await;
}

// ── TLS towards the database ──────────────────────────────────────────────────────────────────

/// The CA of the test server, or `None` (and a note) when the server here is reached in
/// plaintext (a developer's own, on loopback).
fn tls_server_or_skip(test: &str) -> Option<std::path::PathBuf> {
    server_or_skip(test)?;
    let ca = postgres_ca();
    if ca.is_none() {
        assert!(
            std::env::var("POORTWACHTER_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "POORTWACHTER_REQUIRE_POSTGRES=1 but POORTWACHTER_TEST_POSTGRES_CA is not set"
        );
        eprintln!("{test}: skipped, POORTWACHTER_TEST_POSTGRES_CA is not set");
    }
    ca
}

/// Every connection the gateway holds to PostgreSQL is TLS, as PostgreSQL itself reports it.
#[tokio::test]
async fn the_gateways_connections_to_postgresql_are_tls() {
    let Some(_) = tls_server_or_skip("connections are TLS") else {
        return;
    };
    let gw = Gateway::start_on(TestDatabase::Postgres, adjust).await;
    let r = gw
        .disclose("sdd", &ask(&bsn(150), "job-mediation", &["own_transport"]))
        .await;
    assert_eq!(r.status, 403, "{}", text(&r));
    let mut db = postgres_connection(&gw.db_url()).await;
    let connections: Vec<(bool, String)> = sqlx::query_as(
        "SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'poortwachter' AND a.datname = current_database()",
    )
    .fetch_all(&mut db)
    .await
    .expect("pg_stat_ssl readable");
    assert!(!connections.is_empty(), "the gateway holds connections");
    for (ssl, version) in &connections {
        assert!(ssl, "a plaintext connection: {connections:?}");
        assert!(version.starts_with("TLSv1."), "{version}");
    }
    stop(gw).await;
}

/// The real test server, its certificate checked against another CA (the development CA of the
/// organisation certificates): the gateway does not start, and says why.
#[tokio::test]
async fn a_postgres_server_whose_certificate_does_not_chain_to_the_configured_ca_stops_the_start() {
    let Some(_) = tls_server_or_skip("foreign CA") else {
        return;
    };
    let data = tempfile::tempdir().expect("temporary directory");
    use_postgres(data.path(), &postgres_server().expect("server")).await;
    let path = write_demo_config(data.path(), "127.0.0.1:0");
    let mut config = Config::load(&path).expect("configuration loads");
    config.database.sslrootcert = Some(certs_dir().join("ca.pem"));
    let refused = tokio::time::timeout(Duration::from_secs(30), gateway::cli::serve::start(config))
        .await
        .expect("refused in bounded time");
    let e = match refused {
        Ok(_) => panic!("the gateway started against a certificate its CA did not sign"),
        Err(e) => format!("{e:#}"),
    };
    assert!(e.contains("UnknownIssuer"), "{e}");
    assert!(e.contains("database.sslrootcert"), "{e}");
}
