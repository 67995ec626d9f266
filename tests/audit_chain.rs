//! End-to-end tests of the tamper-evident audit log: a real gateway (demo setup, SQLite) takes
//! traffic and signs checkpoints (in the commit that crosses the interval, by its timer, at
//! shutdown); its database then verifies with `poortwachter audit verify`, and editing, deleting
//! or cutting rows in SQLite behind its back is detected and named. Also the checkpoint-key and
//! verify endpoints and their access rules.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use devkit::demo;
use gateway::audit::checkpoint::{CheckpointKeys, CheckpointPublicKey};
use gateway::audit::verify::{ProblemKind, VerifyOptions};
use gateway::audit::verify_sources::verify_store;
use hyper::Method;
use serde_json::Value;

/// A gateway with checkpoints every 5 records or 1 second.
struct Running {
    port: u16,
    data: tempfile::TempDir,
    config: PathBuf,
    server: gateway::server::RunningServer,
    writer: tokio::task::JoinHandle<()>,
}

async fn start() -> Running {
    let data = tempfile::tempdir().expect("temporary directory");
    let config = write_demo_config(data.path(), "127.0.0.1:0");
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replacen(
        "[audit]\n",
        "[audit]\ncheckpoint_every_records = 5\ncheckpoint_every_secs = 1\n",
        1,
    );
    std::fs::write(&config, text).expect("config written");
    let loaded = gateway::config::Config::load(&config).expect("config loads");
    assert_eq!(
        (
            loaded.audit.checkpoint_every_records,
            loaded.audit.checkpoint_every_secs
        ),
        (5, 1),
        "the demo configuration has an [audit] section to extend"
    );
    let (server, writer) = gateway::cli::serve::start(loaded)
        .await
        .expect("gateway starts");
    Running {
        port: server.addr.port(),
        data,
        config,
        server,
        writer,
    }
}

impl Running {
    fn db_url(&self) -> String {
        db_url(self.data.path())
    }

    /// Traffic of every kind: a consent, handovers, permitted and refused disclosures.
    async fn traffic(&self, disclosures: usize) {
        let certs = certs_dir();
        let uwv = client(&certs, "uwv", self.port);
        let sdd = client(&certs, "sdd", self.port);
        let subject = demo::CLIENT_WITH_CONSENT;
        let token = sign_as_uwv(&demo_consent(&new_jti(), subject));
        let r = post(&uwv, "/v1/consents", &serde_json::json!({ "token": token })).await;
        assert_eq!(r.status, 201, "{}", text(&r));
        let record = demo::handover_request("job-mediation", subject, &demo::demo_handover());
        let r = post(&uwv, "/v1/handovers", &record).await;
        assert_eq!(r.status, 201, "{}", text(&r));
        let asks = (0..disclosures).map(|i| {
            let sdd = &sdd;
            async move {
                let who = if i % 3 == 0 {
                    bsn(i as u32)
                } else {
                    demo::CLIENT_WITH_CONSENT.to_owned()
                };
                post(
                    sdd,
                    "/v1/disclosures",
                    &ask(&who, "job-mediation", &["own_transport"]),
                )
                .await
            }
        });
        for r in futures_util::future::join_all(asks).await {
            assert!(r.status == 200 || r.status == 403, "{}", text(&r));
        }
    }

    async fn stop(self) -> tempfile::TempDir {
        self.server.shutdown(Duration::from_secs(10)).await;
        tokio::time::timeout(Duration::from_secs(10), self.writer)
            .await
            .expect("the audit writer stops after the server")
            .expect("writer task");
        self.data
    }
}

fn public_key_path() -> PathBuf {
    certs_dir().join("audit/checkpoint-ed25519.pub.pem")
}

fn keys() -> CheckpointKeys {
    CheckpointKeys::new([CheckpointPublicKey::load(&public_key_path()).expect("public key")])
}

/// `poortwachter audit verify` with these arguments: (exit success, stdout, stderr).
fn cli_verify(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_poortwachter"))
        .arg("audit")
        .arg("verify")
        .args(args)
        .env_remove("POORTWACHTER_CONFIG")
        .output()
        .expect("poortwachter runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn sql(url: &str, statement: &str) {
    let pool = sqlx::SqlitePool::connect(url).await.expect("sqlite opens");
    let done = sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&pool)
        .await
        .expect("statement runs");
    assert!(done.rows_affected() > 0, "{statement} changed nothing");
    pool.close().await;
}

/// Copy the database (after the writer stopped) so each tampering starts from the clean log. The
/// write-ahead log goes with it: committed records may not be in the main file yet.
fn copy_db(from: &Path, name: &str) -> String {
    let to = from.join(format!("{name}.db"));
    std::fs::copy(from.join("poortwachter.db"), &to).expect("database copied");
    let wal = from.join("poortwachter.db-wal");
    if wal.exists() {
        std::fs::copy(&wal, from.join(format!("{name}.db-wal"))).expect("WAL copied");
    }
    format!("sqlite://{}", to.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_gateway_signs_checkpoints_and_its_database_verifies_until_a_row_is_edited() {
    let gw = start().await;
    gw.traffic(40).await;

    // The timer covers the tail within a second of the last record.
    let store = gateway::store::Store::open_read_only(&database(&gw.db_url()))
        .await
        .expect("read-only store");
    let head = store.audit_head().await.expect("head").expect("records").0;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let latest = store.latest_checkpoint().await.expect("checkpoints");
        if latest.is_some_and(|c| c.seq == head) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no timer checkpoint at seq {head}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The published key is the example key and checks the stored checkpoints.
    let anonymous = client(&certs_dir(), "sdd", gw.port);
    let r = anonymous
        .get("/v1/audit/checkpoint-key")
        .await
        .expect("answered");
    assert_eq!(r.status, 200, "{}", text(&r));
    let published: Value = r.json();
    let key = CheckpointPublicKey::load(&public_key_path()).expect("key");
    assert_eq!(published["key_id"], key.key_id());
    assert_eq!(published["alg"], "EdDSA");
    let pem = published["public_key_pem"].as_str().expect("pem");
    assert_eq!(
        CheckpointPublicKey::from_spki_pem(pem.as_bytes(), "served").expect("parses"),
        key
    );

    // GET /v1/audit/verify: privacy officers and operators, nobody else.
    let certs = certs_dir();
    let officer =
        demo::person_token(&certs, "fg-sdd", demo::SDD, &["privacy-officer"]).expect("token");
    let operator = demo::person_token(&certs, "ops", demo::UWV, &["operator"]).expect("token");
    let admin = demo::person_token(&certs, "adm", demo::SDD, &["covenant-admin"]).expect("token");
    for token in [&officer, &operator] {
        let r = anonymous
            .send(Method::GET, "/v1/audit/verify", Some(token), None)
            .await
            .expect("answered");
        assert_eq!(r.status, 200, "{}", text(&r));
        let report = r.json();
        assert_eq!(report["ok"], true, "{report}");
        assert_eq!(
            report["expected_head_found"], true,
            "checked against the live head"
        );
        // How many checkpoints exist depends on how group commit batched the concurrent
        // requests (one checkpoint per commit at most); at least the timer's is there.
        assert!(
            report["checkpoints_matched"].as_u64().unwrap() >= 1,
            "{report}"
        );
    }
    let r = anonymous
        .send(Method::GET, "/v1/audit/verify", Some(&admin), None)
        .await
        .expect("answered");
    assert_problem(&r, 403, "forbidden");
    let r = anonymous.get("/v1/audit/verify").await.expect("answered");
    assert_eq!(r.status, 401);
    let r = anonymous
        .send(
            Method::GET,
            "/v1/audit/verify?bogus=1",
            Some(&officer),
            None,
        )
        .await
        .expect("answered");
    assert_problem(&r, 400, "malformed-request");

    let config = gw.config.clone();
    let data = gw.stop().await;

    // Offline, from the configuration: verifies, every record covered by a checkpoint.
    let report = verify_store(&store, keys(), VerifyOptions::default(), |_| {})
        .await
        .expect("verifies");
    assert!(report.ok, "{report:?}");
    assert_eq!(
        report.unprotected_tail, 0,
        "the writer checkpoints the tail when it stops"
    );
    let (ok, stdout, stderr) = cli_verify(&["--config", config.to_str().unwrap()]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("OK: the audit log verifies"), "{stdout}");
    drop(store);

    // Edit one row's hashed record: named as modified.
    let url = copy_db(data.path(), "edited");
    let victim = 17;
    sql(
        &url,
        &format!(
            "UPDATE audit_log SET record = replace(record, '\"job-mediation\"', '\"bijstand-intake\"') WHERE seq = {victim}"
        ),
    )
    .await;
    let id = record_id(&url, victim).await;
    let (ok, stdout, stderr) = cli_verify(&[
        "--database",
        &url,
        "--checkpoint-key",
        public_key_path().to_str().unwrap(),
    ]);
    assert!(!ok, "an edited row is detected: {stdout}");
    assert!(stdout.contains("FAILED: modified"), "{stdout}");
    assert!(stdout.contains(&format!("record:  {id}")), "{stdout}");
    assert!(stderr.contains(&format!("seq {victim}")), "{stderr}");

    // Edit only a column that filters use (so an officer's view would hide the record).
    let url = copy_db(data.path(), "column");
    sql(
        &url,
        "UPDATE audit_log SET source_oin = '00000001001234567000' WHERE seq = 9",
    )
    .await;
    let report = verify_at(&url).await;
    let p = report.problem.expect("detected");
    assert_eq!((p.kind, p.seq), (ProblemKind::Modified, 9), "{p}");
    assert!(p.detail.contains("source_oin"), "{p}");

    // Delete a row in the middle.
    let url = copy_db(data.path(), "deleted");
    sql(&url, "DELETE FROM audit_log WHERE seq = 12").await;
    let p = verify_at(&url).await.problem.expect("detected");
    assert_eq!((p.kind, p.seq), (ProblemKind::Deleted, 12), "{p}");

    // Cut the end: the final checkpoint names a record that is gone.
    let url = copy_db(data.path(), "truncated");
    sql(
        &url,
        &format!("DELETE FROM audit_log WHERE seq > {}", head - 3),
    )
    .await;
    let p = verify_at(&url).await.problem.expect("detected");
    assert_eq!((p.kind, p.seq), (ProblemKind::Truncated, head - 2), "{p}");

    // … and a gateway refuses to append to that log.
    let mut cfg = gateway::config::Config::load(&config).expect("config");
    cfg.database.url = url.clone();
    let refused = gateway::boot::build(cfg).await;
    let Err(e) = refused else {
        panic!("a gateway starts on a truncated log")
    };
    let message = e.to_string();
    assert!(message.contains("truncated"), "{message}");

    // A checkpoint forged in the table.
    let url = copy_db(data.path(), "forged");
    sql(
        &url,
        "UPDATE audit_checkpoints SET head = 'sha256:' || hex(zeroblob(32)) \
         WHERE seq = (SELECT MIN(seq) FROM audit_checkpoints)",
    )
    .await;
    let p = verify_at(&url).await.problem.expect("detected");
    assert_eq!(p.kind, ProblemKind::BadCheckpoint, "{p}");
}

async fn record_id(url: &str, seq: i64) -> String {
    let pool = sqlx::SqlitePool::connect(url).await.expect("sqlite opens");
    let id: String = sqlx::query_scalar("SELECT id FROM audit_log WHERE seq = ?")
        .bind(seq)
        .fetch_one(&pool)
        .await
        .expect("row");
    pool.close().await;
    id
}

async fn verify_at(url: &str) -> gateway::audit::verify::VerifyReport {
    let store = gateway::store::Store::open_read_only(&database(url))
        .await
        .expect("read-only store");
    verify_store(&store, keys(), VerifyOptions::default(), |_| {})
        .await
        .expect("verification runs")
}
