//! Telemetry carries no personal data: run the demo scenario with in-memory OpenTelemetry
//! exporters and check every exported span and metric for BSNs and field values; check the
//! expected spans exist and audit records carry the trace ids.

use std::path::PathBuf;

use devkit::demo::{self, DemoPaths};
use gateway::config::Config;
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

const SECRETS: [&str; 8] = [
    demo::CLIENT_WITH_CONSENT,
    demo::CLIENT_WITHOUT_CONSENT,
    "088-8989898",
    "Orderpicker",
    "Logistiek",
    "lichte klachten",
    "VCA basis",
    "2027-02-28",
];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_spans_and_metrics_carry_no_bsn_and_no_field_value() {
    let spans = InMemorySpanExporter::default();
    let metrics = InMemoryMetricExporter::default();
    let telemetry = gateway::telemetry::install(
        SdkTracerProvider::builder()
            .with_simple_exporter(spans.clone())
            .build(),
        SdkMeterProvider::builder()
            .with_periodic_exporter(metrics.clone())
            .build(),
        Some("info"),
        gateway::telemetry::Spans::All,
    );

    let dir = tempfile::tempdir().unwrap();
    let paths = DemoPaths::in_repo(&repo_root(), dir.path());
    let config_path = demo::write_config(&paths, "127.0.0.1:0").unwrap();
    let config = Config::load(&config_path).unwrap();
    let db_url = config.database.url.clone();
    let (server, writer) = gateway::cli::serve::start(config).await.unwrap();
    let port = server.addr.port();
    let certs = paths.certs.canonicalize().unwrap();
    demo::wait_ready(&certs, port).await.unwrap();
    demo::run_scenario(&certs, port).await.unwrap();
    server.shutdown(std::time::Duration::from_secs(5)).await;
    let _ = writer.await;
    telemetry.tracer_provider.force_flush().unwrap();
    telemetry.meter_provider.force_flush().unwrap();

    let finished = spans.get_finished_spans().unwrap();
    assert!(!finished.is_empty(), "spans were exported");
    let names: std::collections::BTreeSet<String> =
        finished.iter().map(|s| s.name.to_string()).collect();
    for expected in [
        "request",
        "peer_identity",
        "decision",
        "storage_read",
        "audit_append",
    ] {
        assert!(names.contains(expected), "span {expected} in {names:?}");
    }
    let span_text = format!("{finished:?}");
    let metric_text = format!("{:?}", metrics.get_finished_metrics().unwrap());
    assert!(
        metric_text.contains("poortwachter.decisions"),
        "decision metric exported"
    );
    for secret in SECRETS {
        assert!(!span_text.contains(secret), "a span carries `{secret}`");
        assert!(!metric_text.contains(secret), "a metric carries `{secret}`");
    }

    // Audit records of disclosures carry the trace id of their request.
    let store = gateway::store::Store::open(&gateway::config::DatabaseSection::new(db_url.clone()))
        .await
        .unwrap();
    let records = store.audit_records(0, 1000).await.unwrap();
    let disclosures: Vec<_> = records
        .iter()
        .filter(|r| r.entry.kind == Some(gateway::audit::record::AuditKind::Disclosure))
        .collect();
    assert!(!disclosures.is_empty());
    let trace_ids: std::collections::BTreeSet<String> = finished
        .iter()
        .map(|s| s.span_context.trace_id().to_string())
        .collect();
    for r in disclosures {
        let id = r.entry.trace_id.as_ref().expect("trace id recorded");
        assert!(
            trace_ids.contains(id),
            "audit trace id {id} is an exported trace"
        );
    }
}
