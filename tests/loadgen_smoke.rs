//! Smoke test of the load harness (seconds, for CI): a gateway with the demo setup runs in this
//! process on an ephemeral port; `loadgen` sets up the demo data, drives permitted disclosures in
//! both modes for a moment without errors, and counts a refused caller's answers by `reason`.
//! Not a benchmark: it only proves the harness still works. It lives with the gateway's tests so
//! that `loadgen` itself need not depend on the gateway.

use std::path::{Path, PathBuf};

use clap::Parser;
use devkit::demo::{self, DemoPaths};
use loadgen::Options;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

fn options(addr: &str, certs: &Path, extra: &[&str]) -> Options {
    let ca = certs.join("ca.pem");
    let cert = certs.join("sdd.pem");
    let key = certs.join("sdd-key.pem");
    let mut args: Vec<String> = [
        "loadgen",
        "--addr",
        addr,
        "--certs",
        &certs.display().to_string(),
        "--ca",
        &ca.display().to_string(),
        "--cert",
        &cert.display().to_string(),
        "--key",
        &key.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    Options::parse_from(args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_drives_disclosures_and_counts_refusals_by_reason() {
    let root = repo_root();
    let data = tempfile::tempdir().expect("temporary directory");
    let config_path = demo::write_config(&DemoPaths::in_repo(&root, data.path()), "127.0.0.1:0")
        .expect("demo configuration is written");
    let config = gateway::config::Config::load(&config_path).expect("demo configuration loads");
    let (server, writer) = gateway::cli::serve::start(config)
        .await
        .expect("gateway starts");
    let addr = server.addr.to_string();
    let certs = root.join("certs-example");

    let ready = options(&addr, &certs, &["--wait-ready"]);
    let ready_ms = loadgen::setup::wait_ready(&ready).await.expect("ready");
    assert!(ready_ms >= 0.0);
    loadgen::setup::setup_demo(&options(&addr, &certs, &[]))
        .await
        .expect("demo consent and handover records are in place");

    let closed = options(
        &addr,
        &certs,
        &[
            "--concurrency",
            "2",
            "--warmup",
            "200ms",
            "--duration",
            "1s",
        ],
    );
    let report = loadgen::run(&closed).await.expect("closed-loop run");
    assert!(report.throughput_rps > 0.0, "{report}");
    assert_eq!(report.errors, 0, "{report}");
    assert_eq!(report.ok, report.requests, "{report}");
    assert!(report.latency_ms.p99 > 0.0, "{report}");
    assert_eq!(report.connections_opened, 2, "keep-alive: {report}");

    let open = options(
        &addr,
        &certs,
        &[
            "--rate",
            "100",
            "--concurrency",
            "2",
            "--warmup",
            "100ms",
            "--duration",
            "500ms",
        ],
    );
    let report = loadgen::run(&open).await.expect("open-loop run");
    assert!(report.requests >= 40, "{report}");
    assert_eq!(report.errors, 0, "{report}");
    assert!(report.service_time_ms.is_some(), "{report}");

    // A recipient outside the covenant: every answer is an error, counted by its reason.
    let mut outsider = options(
        &addr,
        &certs,
        &[
            "--concurrency",
            "1",
            "--warmup",
            "0s",
            "--duration",
            "300ms",
        ],
    );
    outsider.cert = certs.join("gorinchem.pem");
    outsider.key = certs.join("gorinchem-key.pem");
    let report = loadgen::run(&outsider).await.expect("refused run");
    assert!(report.requests > 0, "{report}");
    assert_eq!(report.ok, 0, "{report}");
    assert_eq!(report.errors, report.requests, "{report}");
    assert!(
        report
            .failures
            .iter()
            .all(|f| f.reason.as_deref() == Some("no-active-covenant")),
        "{report}"
    );

    server.shutdown(std::time::Duration::from_secs(5)).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), writer).await;
}
