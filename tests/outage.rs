//! Database outages under load, against the real `poortwachter` binary: the database goes away
//! while a few clients stream disclosures (PostgreSQL: its postmaster killed with SIGKILL; SQLite:
//! its file system full) and comes back. During the outage every request is refused
//! (`unavailable` / `audit-unavailable`) and `/readyz` says not ready; afterwards the same
//! gateway process serves again by itself; every disclosure id a client received is in the log
//! and the chain verifies; the log holds a few lines about it, not one per refused request.
//!
//! The PostgreSQL test starts a throw-away server of its own (initdb in a temporary directory,
//! TLS with the certificate `tests/run-all.sh` made), so killing it hurts no other test. It needs
//! `POORTWACHTER_TEST_PG_BIN` and `POORTWACHTER_TEST_PG_TLS`. The SQLite test mounts a small
//! tmpfs (as root, or through `sudo -n`). Either skips with a message when that is impossible
//! here, unless `POORTWACHTER_REQUIRE_POSTGRES=1` / `POORTWACHTER_REQUIRE_MOUNT=1` (run-all.sh)
//! make that a failure.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use devkit::client::MtlsClient;

/// Clients streaming disclosures through the outage.
const CLIENTS: usize = 3;
/// Each wait below is bounded by this; the tests take seconds.
const PATIENCE: Duration = Duration::from_secs(30);

/// The gateway binary as a child process, its log in a file; killed when dropped.
struct GatewayProcess {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl GatewayProcess {
    async fn spawn(config: &Path, port: u16, log: PathBuf) -> GatewayProcess {
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_poortwachter"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file clones"))
            .stderr(file)
            .spawn()
            .expect("the gateway binary starts");
        let mut gw = GatewayProcess { child, port, log };
        gw.wait_until("/healthz", 200).await;
        gw
    }

    fn client(&self, name: &str) -> MtlsClient {
        client(&certs_dir(), name, self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET path` until it answers `status` (bounded); returns the body.
    async fn wait_until(&mut self, path: &str, status: u16) -> String {
        let c = self.client("sdd");
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(r) = c.get(path).await {
                if r.status == status {
                    return text(&r);
                }
            }
            let exited = self.child.try_wait().expect("child status");
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "{path} did not answer {status} ({exited:?}); the gateway's log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

/// Where the load is, seen from the clients: set by the test as the outage unfolds.
const BEFORE: u8 = 0;
/// The database is gone and `/readyz` has said so.
const DOWN: u8 = 1;
/// The database is coming back (restart or space freed); answers may go either way.
const RETURNING: u8 = 2;
/// `/readyz` said ready again.
const BACK: u8 = 3;

/// One answer: the phase the request was sent in and the one it was answered in.
#[derive(Debug, Clone)]
struct Answer {
    sent: u8,
    answered: u8,
    status: u16,
    reason: Option<String>,
    disclosure_id: Option<String>,
}

/// Clients streaming disclosures (permits with values, and refusals) until told to stop.
struct Load {
    phase: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Vec<Answer>>>,
    tasks: tokio::task::JoinSet<()>,
}

impl Load {
    fn start(gw: &GatewayProcess, with_consent: &str, without_consent: &str) -> Load {
        let phase = Arc::new(AtomicU8::new(BEFORE));
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..CLIENTS {
            let c = gw.client("sdd");
            let bodies = [
                ask(with_consent, "job-mediation", &["own_transport", "cv"]),
                ask(without_consent, "job-mediation", &["own_transport"]),
            ];
            let (phase, stop, answers) = (phase.clone(), stop.clone(), answers.clone());
            tasks.spawn(async move {
                for n in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let sent = phase.load(Ordering::SeqCst);
                    let r = c
                        .post_json("/v1/disclosures", &bodies[(i + n) % bodies.len()])
                        .await
                        .unwrap_or_else(|e| panic!("every request gets an HTTP answer: {e}"));
                    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                    answers.lock().unwrap().push(Answer {
                        sent,
                        answered: phase.load(Ordering::SeqCst),
                        status: r.status,
                        reason: v["reason"].as_str().map(str::to_owned),
                        disclosure_id: v["disclosure_id"].as_str().map(str::to_owned),
                    });
                }
            });
        }
        Load {
            phase,
            stop,
            answers,
            tasks,
        }
    }

    fn enter(&self, phase: u8) {
        self.phase.store(phase, Ordering::SeqCst);
    }

    fn count(&self, keep: impl Fn(&Answer) -> bool) -> usize {
        self.answers
            .lock()
            .unwrap()
            .iter()
            .filter(|a| keep(a))
            .count()
    }

    /// Wait (bounded) until `n` answers match `keep`.
    async fn until(&self, n: usize, what: &str, keep: impl Fn(&Answer) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while self.count(&keep) < n {
            assert!(
                Instant::now() < deadline,
                "fewer than {n} answers {what} in {PATIENCE:?}: {:#?}",
                self.answers
                    .lock()
                    .unwrap()
                    .iter()
                    .rev()
                    .take(10)
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(mut self) -> Vec<Answer> {
        self.stop.store(true, Ordering::SeqCst);
        while let Some(done) = self.tasks.join_next().await {
            done.expect("client task");
        }
        let answers = self.answers.lock().unwrap().clone();
        answers
    }
}

fn decided(a: &Answer) -> bool {
    a.status == 200 || a.status == 403
}

fn refused_unavailable(a: &Answer) -> bool {
    a.status == 503
        && matches!(
            a.reason.as_deref(),
            Some("unavailable") | Some("audit-unavailable")
        )
}

/// What must hold for every answer, outage or not: a decision carries its id (to be found in
/// the log), anything else is a 503 `unavailable`/`audit-unavailable` that released nothing.
fn assert_every_answer_is_a_decision_or_a_clean_refusal(answers: &[Answer]) -> Vec<String> {
    let mut ids = Vec::new();
    for a in answers {
        if decided(a) {
            ids.push(
                a.disclosure_id
                    .clone()
                    .unwrap_or_else(|| panic!("a decision without id: {a:?}")),
            );
        } else {
            assert!(
                refused_unavailable(a),
                "neither decided nor refused cleanly: {a:?}"
            );
            assert!(a.disclosure_id.is_none(), "{a:?}");
        }
    }
    ids
}

/// During the outage (sent after `/readyz` said not ready, answered before the database was
/// back) every request was refused, by every client.
fn assert_refused_throughout_the_outage(answers: &[Answer]) -> usize {
    let during: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.sent == DOWN && a.answered == DOWN)
        .collect();
    assert!(during.len() >= CLIENTS, "{during:#?}");
    for a in &during {
        assert!(refused_unavailable(a), "answered during the outage: {a:?}");
    }
    during.len()
}

/// Once `/readyz` said ready again, every request was decided.
fn assert_served_after_recovery(answers: &[Answer]) {
    let after: Vec<&Answer> = answers.iter().filter(|a| a.sent == BACK).collect();
    assert!(after.len() >= CLIENTS * 5, "{}", after.len());
    for a in after {
        assert!(decided(a), "refused after the recovery: {a:?}");
    }
}

/// The log lines of warning or error level for all the refused requests: a few for the outage
/// (when it starts, once per interval, when it ends, per component) and at most one per pooled
/// connection that broke (sqlx's own), never one per refused request.
fn assert_the_log_counts_instead_of_repeating(gw: &GatewayProcess, answers: &[Answer]) {
    let refused = answers.iter().filter(|a| a.status == 503).count();
    let log = gw.log_text();
    let loud: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" ERROR ") || l.contains(" WARN "))
        .collect();
    eprintln!(
        "{} warning/error lines for {refused} refused requests:\n{}",
        loud.len(),
        loud.join("\n")
    );
    assert!(
        refused >= 20,
        "the outage refused only {refused} requests: too few to show counting"
    );
    assert!(
        loud.len() <= 20 && loud.len() * 2 <= refused,
        "{} warning/error lines for {refused} refused requests",
        loud.len()
    );
    assert!(
        loud.iter().any(|l| l.contains("recovered")),
        "the end of the outage is logged:\n{}",
        loud.join("\n")
    );
}

/// The value of one series in `/metrics` text.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// The demo consent and handover for `with_consent`, through the running gateway.
async fn seed(gw: &GatewayProcess, with_consent: &str) {
    seed_demo_client(&gw.client("uwv"), with_consent).await;
}

/// Every decision a client received is in the log, and the log verifies with its signed
/// checkpoints.
async fn assert_log_holds(database: gateway::config::DatabaseSection, ids: &[String]) {
    let store = gateway::store::Store::open_read_only(&database)
        .await
        .expect("the database opens after the outage");
    assert_audited(&store, ids).await;
    assert_chain_verifies(&store).await;
    let key = gateway::audit::checkpoint::CheckpointPublicKey::load(
        &certs_dir().join("audit/checkpoint-ed25519.pub.pem"),
    )
    .expect("checkpoint public key");
    let report = gateway::audit::verify_sources::verify_store(
        &store,
        gateway::audit::checkpoint::CheckpointKeys::new([key]),
        Default::default(),
        |_| {},
    )
    .await
    .expect("the log reads");
    assert!(report.ok, "{report:?}");
}

/// Replace the demo configuration's database line.
fn use_database(config: &Path, lines: &str) {
    let text = std::fs::read_to_string(config).expect("configuration");
    let start = text
        .find("url = \"sqlite://")
        .expect("the demo uses SQLite");
    let end = start + text[start..].find('\n').expect("line end");
    let text = format!("{}{lines}{}", &text[..start], &text[end..]);
    std::fs::write(config, text).expect("configuration written");
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL killed under load

/// A throw-away PostgreSQL server of this test's own, TLS only, run as `postgres` when root.
struct ThrowAwayPostgres {
    bin: PathBuf,
    tls: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl ThrowAwayPostgres {
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn init(bin: PathBuf, tls: PathBuf) -> ThrowAwayPostgres {
        let dir = tempfile::tempdir().expect("temporary directory");
        if is_root() {
            run(Command::new("chown").arg("postgres").arg(dir.path()));
        }
        let pg = ThrowAwayPostgres {
            bin,
            tls,
            dir,
            port: free_port(),
        };
        run(pg.command("initdb").arg("-D").arg(pg.data()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ]));
        std::fs::write(
            pg.data().join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n",
        )
        .expect("pg_hba.conf");
        pg
    }

    /// Start the server (after a SIGKILL its children may hold the shared memory a moment
    /// longer: retried, bounded).
    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={} \
             -c ssl_key_file={}",
            self.port,
            self.dir.path().display(),
            self.tls.join("server.pem").display(),
            self.tls.join("server-key.pem").display()
        );
        let deadline = Instant::now() + PATIENCE;
        loop {
            let status = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.dir.path().join("log"))
                .args(["-w", "-o", &options, "start"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("pg_ctl runs");
            if status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL does not start again: {}",
                std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGKILL to the postmaster: no shutdown, no checkpoint; its backends die after it.
    fn kill_postmaster(&self) {
        let pid =
            std::fs::read_to_string(self.data().join("postmaster.pid")).expect("postmaster.pid");
        let pid = pid.lines().next().expect("pid line").trim().to_owned();
        run(Command::new("kill").args(["-9", &pid]));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for ThrowAwayPostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn run(c: &mut Command) {
    let out = c.output().expect("command runs");
    assert!(
        out.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The PostgreSQL binaries and TLS files, or `None` (and a note) when this test cannot run.
fn throw_away_postgres_or_skip() -> Option<(PathBuf, PathBuf)> {
    let bin = std::env::var_os("POORTWACHTER_TEST_PG_BIN").map(PathBuf::from);
    let tls = std::env::var_os("POORTWACHTER_TEST_PG_TLS").map(PathBuf::from);
    match (bin, tls) {
        (Some(bin), Some(tls)) => Some((bin, tls)),
        _ => {
            assert!(
                std::env::var("POORTWACHTER_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "POORTWACHTER_REQUIRE_POSTGRES=1 but POORTWACHTER_TEST_PG_BIN / \
                 POORTWACHTER_TEST_PG_TLS are not set (tests/run-all.sh sets them)"
            );
            eprintln!(
                "skipped: POORTWACHTER_TEST_PG_BIN and POORTWACHTER_TEST_PG_TLS are not set \
                 (run tests/run-all.sh)"
            );
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_under_load_fails_closed_and_the_same_process_recovers() {
    let Some((bin, tls)) = throw_away_postgres_or_skip() else {
        return;
    };
    let pg = ThrowAwayPostgres::init(bin, tls.clone());
    pg.start();

    let data = tempfile::tempdir().expect("temporary directory");
    let port = free_port();
    let config = write_demo_config(data.path(), &format!("127.0.0.1:{port}"));
    use_database(
        &config,
        &format!(
            "url = \"{}\"\nsslrootcert = \"{}\"\nacquire_timeout_ms = 250\nmax_connections = 4",
            pg.url(),
            tls.join("ca.pem").display()
        ),
    );
    let mut gw = GatewayProcess::spawn(&config, port, data.path().join("gateway.log")).await;
    let (with_consent, without_consent) = (bsn(61), bsn(62));
    seed(&gw, &with_consent).await;

    let load = Load::start(&gw, &with_consent, &without_consent);
    load.until(60, "decided before the kill", decided).await;

    pg.kill_postmaster();
    let why = gw.wait_until("/readyz", 503).await;
    assert!(
        why == "database unavailable" || why == "audit log cannot be written",
        "{why}"
    );
    load.enter(DOWN);
    load.until(CLIENTS * 12, "refused during the outage", |a| {
        a.sent == DOWN && refused_unavailable(a)
    })
    .await;

    load.enter(RETURNING);
    pg.start();
    gw.wait_until("/readyz", 200).await;
    load.enter(BACK);
    load.until(CLIENTS * 5, "decided after the restart", |a| {
        a.sent == BACK && decided(a)
    })
    .await;
    let answers = load.finish().await;

    let ids = assert_every_answer_is_a_decision_or_a_clean_refusal(&answers);
    let refused = assert_refused_throughout_the_outage(&answers);
    assert_served_after_recovery(&answers);
    let metrics = text(&gw.client("sdd").get("/metrics").await.expect("metrics"));
    assert!(
        metric(
            &metrics,
            "poortwachter_unavailable_total{reason=\"unavailable\"}"
        ) + metric(
            &metrics,
            "poortwachter_unavailable_total{reason=\"audit-unavailable\"}"
        ) >= refused as f64,
        "{metrics}"
    );
    gw.stop();
    assert_the_log_counts_instead_of_repeating(&gw, &answers);

    let mut database = database(&pg.url());
    database.sslrootcert = Some(tls.join("ca.pem"));
    database.sslmode = gateway::config::SslMode::VerifyFull;
    assert_log_holds(database, &ids).await;
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(
        distinct.len(),
        ids.len(),
        "every decision has an id of its own"
    );
}

// ---------------------------------------------------------------------------------------------
// SQLite on a full disk

/// A small tmpfs of this test's own; unmounted when dropped.
struct SmallFileSystem {
    dir: tempfile::TempDir,
    sudo: bool,
}

impl SmallFileSystem {
    /// Mount `size` of tmpfs (as root, or with `sudo -n`), or `None` when mounting is
    /// impossible here.
    fn mount(size: &str) -> Option<SmallFileSystem> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let uid = String::from_utf8(Command::new("id").arg("-u").output().ok()?.stdout).ok()?;
        let gid = String::from_utf8(Command::new("id").arg("-g").output().ok()?.stdout).ok()?;
        let options = format!(
            "size={size},mode=0700,uid={},gid={}",
            uid.trim(),
            gid.trim()
        );
        for sudo in [false, true] {
            let mut c = if sudo {
                let mut c = Command::new("sudo");
                c.args(["-n", "mount"]);
                c
            } else {
                Command::new("mount")
            };
            let mounted = c
                .args(["-t", "tmpfs", "-o", &options, "tmpfs"])
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if mounted {
                return Some(SmallFileSystem { dir, sudo });
            }
        }
        None
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write a file until the file system is full; returns it.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).expect("filler file");
        let chunk = vec![0xa5u8; 64 * 1024];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling the file system: {e}"),
            }
        }
        // The last partial blocks too.
        while f.write(&[0xa5]).is_ok_and(|n| n == 1) {}
        path
    }
}

impl Drop for SmallFileSystem {
    fn drop(&mut self) {
        let mut c = if self.sudo {
            let mut c = Command::new("sudo");
            c.args(["-n", "umount"]);
            c
        } else {
            Command::new("umount")
        };
        let _ = c.arg("-l").arg(self.dir.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_a_full_disk_fails_closed_and_recovers_when_space_returns() {
    let Some(fs) = SmallFileSystem::mount("16m") else {
        assert!(
            std::env::var("POORTWACHTER_REQUIRE_MOUNT").as_deref() != Ok("1"),
            "POORTWACHTER_REQUIRE_MOUNT=1 but a tmpfs cannot be mounted here"
        );
        eprintln!(
            "skipped: mounting a small tmpfs needs root or `sudo -n` (tests/run-all.sh runs \
             this test as root)"
        );
        return;
    };
    let data = tempfile::tempdir().expect("temporary directory");
    let port = free_port();
    let config = write_demo_config(data.path(), &format!("127.0.0.1:{port}"));
    let url = format!("sqlite://{}/poortwachter.db", fs.path().display());
    use_database(&config, &format!("url = \"{url}\""));
    let mut gw = GatewayProcess::spawn(&config, port, data.path().join("gateway.log")).await;
    let (with_consent, without_consent) = (bsn(71), bsn(72));
    seed(&gw, &with_consent).await;

    let load = Load::start(&gw, &with_consent, &without_consent);
    load.until(60, "decided before the disk filled", decided)
        .await;

    // Fold the write-ahead log into the database first, so that the next commits need new
    // space at once (best effort: a reader may keep part of it).
    let _ = rusqlite::Connection::open(fs.path().join("poortwachter.db"))
        .and_then(|c| c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)"));
    let filler = fs.fill();
    let why = gw.wait_until("/readyz", 503).await;
    assert_eq!(why, "audit log cannot be written");
    load.enter(DOWN);
    load.until(CLIENTS * 8, "refused on the full disk", |a| {
        a.sent == DOWN && refused_unavailable(a)
    })
    .await;
    let metrics = text(&gw.client("sdd").get("/metrics").await.expect("metrics"));
    assert_eq!(
        metric(&metrics, "poortwachter_audit_writable"),
        0.0,
        "{metrics}"
    );
    assert!(metric(&metrics, "poortwachter_audit_commit_failures_total") >= 1.0);

    load.enter(RETURNING);
    std::fs::remove_file(filler).expect("space freed");
    gw.wait_until("/readyz", 200).await;
    load.enter(BACK);
    load.until(CLIENTS * 5, "decided after space returned", |a| {
        a.sent == BACK && decided(a)
    })
    .await;
    let answers = load.finish().await;

    // A commit that still fit on the nearly full disk may have been answered: it is audited
    // like every decision (checked below); the rest were refused.
    let ids = assert_every_answer_is_a_decision_or_a_clean_refusal(&answers);
    let refused = answers
        .iter()
        .filter(|a| a.sent == DOWN && refused_unavailable(a))
        .count();
    assert_served_after_recovery(&answers);
    let metrics = text(&gw.client("sdd").get("/metrics").await.expect("metrics"));
    assert_eq!(
        metric(&metrics, "poortwachter_audit_writable"),
        1.0,
        "{metrics}"
    );
    assert!(
        metric(
            &metrics,
            "poortwachter_unavailable_total{reason=\"audit-unavailable\"}"
        ) >= refused as f64,
        "{metrics}"
    );
    gw.stop();
    assert_the_log_counts_instead_of_repeating(&gw, &answers);
    assert_log_holds(gateway::config::DatabaseSection::new(url), &ids).await;
}
