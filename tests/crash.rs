//! Crash safety of the audit log: the real `poortwachter` binary is killed (SIGKILL) while four
//! clients stream disclosures; after a restart on the same database, every disclosure id that any
//! client received is in the audit log and the chain verifies. An answer is only sent once its
//! audit record is durable, so no answered decision may be lost.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// Answers to collect before the kill.
const ANSWERS_BEFORE_KILL: usize = 400;
const CLIENTS: usize = 4;

/// The gateway binary as a child process; killed when dropped (also when a test fails).
struct Gateway(Child);

impl Gateway {
    fn spawn(config: &Path, log: &Path) -> Gateway {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file opens");
        let child = Command::new(env!("CARGO_BIN_EXE_poortwachter"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file clones"))
            .stderr(log)
            .spawn()
            .expect("the gateway binary starts");
        Gateway(child)
    }

    /// SIGKILL: no graceful shutdown, no flush.
    fn kill(&mut self) {
        self.0.kill().expect("kill the gateway");
        self.0.wait().expect("reap the gateway");
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

/// Poll `/healthz` until the gateway answers (bounded), failing with its log otherwise.
async fn wait_ready(gateway: &mut Gateway, port: u16, log: &Path) {
    let c = client(&certs_dir(), "sdd", port);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = c.get("/healthz").await {
            if r.status == 200 {
                return;
            }
        }
        let exited = gateway.0.try_wait().expect("child status");
        if exited.is_some() || Instant::now() > deadline {
            panic!(
                "the gateway did not become ready on port {port} ({exited:?}); its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answered_disclosure_survives_a_sigkill_of_the_gateway() {
    let data = tempfile::tempdir().expect("temporary directory");
    let port = free_port();
    let config = write_demo_config(data.path(), &format!("127.0.0.1:{port}"));
    let log = data.path().join("gateway.log");
    let certs = certs_dir();

    let mut gateway = Gateway::spawn(&config, &log);
    wait_ready(&mut gateway, port, &log).await;

    let with_consent = bsn(1);
    let without_consent = bsn(2);
    seed_demo_client(&client(&certs, "uwv", port), &with_consent).await;

    // Four clients stream permits and refusals until the gateway dies under them.
    let answered = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(tokio::sync::Notify::new());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CLIENTS {
        let c = client(&certs, "sdd", port);
        let answered = answered.clone();
        let enough = enough.clone();
        let bodies = [
            ask(&with_consent, "job-mediation", &["own_transport", "cv"]),
            ask(&without_consent, "job-mediation", &["own_transport"]),
            ask(
                &with_consent,
                "bijstand-intake",
                &["ww_end_date", "adviser_contact"],
            ),
            ask(&with_consent, "job-mediation", &["debt_assistance"]),
        ];
        tasks.spawn(async move {
            let mut ids = Vec::new();
            for n in 0.. {
                let body = &bodies[(i + n) % bodies.len()];
                let Ok(r) = c.post_json("/v1/disclosures", body).await else {
                    break;
                };
                let id = r.json()["disclosure_id"].as_str().map(str::to_owned);
                let id = id.unwrap_or_else(|| panic!("an answer without id: {}", text(&r)));
                assert!(r.status == 200 || r.status == 403, "{}", text(&r));
                ids.push(id);
                if answered.fetch_add(1, Ordering::SeqCst) + 1 == ANSWERS_BEFORE_KILL {
                    enough.notify_one();
                }
            }
            ids
        });
    }
    tokio::time::timeout(Duration::from_secs(60), enough.notified())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "only {} answers within 60 s",
                answered.load(Ordering::SeqCst)
            )
        });
    gateway.kill();

    let mut received = Vec::new();
    while let Some(ids) = tasks.join_next().await {
        received.extend(ids.expect("client task ends after the kill"));
    }
    assert!(received.len() >= ANSWERS_BEFORE_KILL);

    // Restart on the same configuration and database.
    let mut gateway = Gateway::spawn(&config, &log);
    wait_ready(&mut gateway, port, &log).await;
    let r = post(
        &client(&certs, "sdd", port),
        "/v1/disclosures",
        &ask(&with_consent, "job-mediation", &["own_transport"]),
    )
    .await;
    assert_eq!(r.status, 200, "the restarted gateway answers: {}", text(&r));
    received.push(r.json()["disclosure_id"].as_str().unwrap().to_owned());

    let store = gateway::store::Store::open(&database(&db_url(data.path())))
        .await
        .expect("the database opens after the crash");
    assert_audited(&store, &received).await;
    let records = assert_chain_verifies(&store).await;
    let disclosures = records
        .iter()
        .filter(|r| r.entry.kind == Some(gateway::audit::record::AuditKind::Disclosure))
        .count();
    assert!(
        disclosures >= received.len(),
        "{disclosures} disclosure records for {} answers",
        received.len()
    );
}
