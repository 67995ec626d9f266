//! The Logboek Dataverwerkingen export and the W3C trace context it relies on, end to end over
//! mutual TLS: a request continues the caller's `traceparent` (its audit record names the
//! caller's trace and span); every audit record reaches a real OTLP/HTTP receiver that this test
//! runs, as one log record with the `dpl.core.*` attributes, also after the receiver was down.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use common::*;
use devkit::demo::{CLIENT_WITHOUT_CONSENT, CLIENT_WITH_CONSENT};
use gateway::audit::record::{AuditKind, AuditRecord};
use gateway::logboek::encode::{
    AUDIT_SEQ, DATA_SUBJECT_ID, DATA_SUBJECT_ID_TYPE, FOREIGN_OPERATION_PROCESSOR,
    FOREIGN_OPERATION_SPAN_ID, PROCESSING_ACTIVITY_ID,
};
use hyper::Method;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::{status, Span};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use prost::Message as _;
use serde_json::Value;
use tokio::sync::watch;

/// Install telemetry as `poortwachter serve` does without an OTLP endpoint: request spans get
/// ids (audit records carry them), no span data is kept.
fn install_telemetry() {
    let _ = gateway::telemetry::install(
        SdkTracerProvider::builder()
            .with_sampler(Sampler::AlwaysOff)
            .build(),
        opentelemetry_sdk::metrics::SdkMeterProvider::builder().build(),
        Some("info"),
        gateway::telemetry::Spans::RequestOnly,
    );
}

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// `who` asks for a disclosure, sending `headers` along.
async fn disclose_with(gw: &Gateway, who: &str, body: &Value, headers: &[(&str, &str)]) -> u16 {
    let r = gw
        .client(who)
        .send_with_headers(
            Method::POST,
            "/v1/disclosures",
            None,
            headers,
            Some(serde_json::to_vec(body).unwrap()),
        )
        .await
        .expect("an answer");
    r.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disclosure_continues_the_callers_trace_and_its_record_names_the_callers_span() {
    install_telemetry();
    let gw = Gateway::start().await;
    seed_demo_client(&gw.client("uwv"), CLIENT_WITH_CONSENT).await;
    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let ask = ask(CLIENT_WITH_CONSENT, "job-mediation", &["own_transport"]);
    assert_eq!(
        disclose_with(&gw, "sdd", &ask, &[("traceparent", &traceparent)]).await,
        200
    );
    // Without trace context: a trace of its own, no foreign operation.
    assert_eq!(disclose_with(&gw, "sdd", &ask, &[]).await, 200);
    // A malformed one is ignored, not refused.
    assert_eq!(
        disclose_with(
            &gw,
            "sdd",
            &ask,
            &[("traceparent", "00-zz-00f067aa0ba902b7-01")]
        )
        .await,
        200
    );

    let store = gw.store().await;
    let records = assert_chain_verifies(&store).await;
    let disclosures: Vec<_> = records
        .iter()
        .filter(|r| r.entry.kind == Some(gateway::audit::record::AuditKind::Disclosure))
        .collect();
    assert_eq!(disclosures.len(), 3);
    let continued = &disclosures[0].entry;
    assert_eq!(continued.trace_id.as_deref(), Some(CALLER_TRACE));
    assert_eq!(continued.foreign_span_id.as_deref(), Some(CALLER_SPAN));
    let own_span = continued.span_id.as_deref().expect("a span id");
    assert_ne!(
        own_span, CALLER_SPAN,
        "the request span is the caller's child"
    );
    assert_eq!(
        continued.processing_activity.as_deref(),
        Some("https://register.drechtsteden.example/verwerkingsactiviteiten/max-ww-bemiddeling")
    );
    for own in &disclosures[1..] {
        assert_ne!(own.entry.trace_id.as_deref(), Some(CALLER_TRACE));
        assert!(own.entry.trace_id.is_some());
        assert_eq!(own.entry.foreign_span_id, None);
    }
    gw.server.shutdown(std::time::Duration::from_secs(5)).await;
}

// ── the organisation's receiver, run by the test ────────────────────────────────────────────

/// What a real OTLP/HTTP traces receiver got: every span of every acknowledged request, and the
/// raw request bodies (to look for what must never be sent).
#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    bodies: Vec<Vec<u8>>,
}

/// An OTLP/HTTP receiver on `127.0.0.1:port` that decodes `ExportTraceServiceRequest` bodies
/// and acknowledges them; stopped by aborting its task (its port then refuses connections).
struct Receiver {
    port: u16,
    received: Arc<Mutex<Received>>,
    /// The number of spans received so far.
    count: watch::Receiver<usize>,
    count_tx: Arc<watch::Sender<usize>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (count_tx, count) = watch::channel(0);
        let mut receiver = Receiver {
            port,
            received: Arc::default(),
            count,
            count_tx: Arc::new(count_tx),
            task: None,
        };
        receiver.serve(listener);
        receiver
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let received = self.received.clone();
        let count_tx = self.count_tx.clone();
        let handler = move |body: Bytes| {
            let received = received.clone();
            let count_tx = count_tx.clone();
            async move {
                let Ok(request) = ExportTraceServiceRequest::decode(body.as_ref()) else {
                    return (axum::http::StatusCode::BAD_REQUEST, Vec::new());
                };
                let mut r = received.lock().unwrap();
                r.bodies.push(body.to_vec());
                for rs in request.resource_spans {
                    for ss in rs.scope_spans {
                        r.spans.extend(ss.spans);
                    }
                }
                count_tx.send_replace(r.spans.len());
                (
                    axum::http::StatusCode::OK,
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        };
        let app = axum::Router::new().route("/v1/traces", axum::routing::post(handler));
        self.task = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    /// The receiver goes down: its port refuses connections.
    async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// The receiver comes back on the same port.
    async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("the receiver's port is free again");
        self.serve(listener);
    }

    /// Wait (without sleeping) until at least `n` spans arrived.
    async fn wait_for(&mut self, n: usize) {
        let waited =
            tokio::time::timeout(Duration::from_secs(30), self.count.wait_for(|c| *c >= n))
                .await
                .is_ok_and(|r| r.is_ok());
        let got = *self.count.borrow();
        assert!(waited, "{n} log records within 30 s (got {got})");
    }

    fn spans(&self) -> Vec<Span> {
        self.received.lock().unwrap().spans.clone()
    }
}

fn text_attr<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .and_then(|v| match v {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        })
}

fn seq_of(span: &Span) -> i64 {
    span.attributes
        .iter()
        .find(|kv| kv.key == AUDIT_SEQ)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::IntValue(n) => Some(*n),
            _ => None,
        })
        .expect("every log record names its audit record")
}

/// Each audit record's log records, by sequence number.
fn by_seq(spans: &[Span]) -> BTreeMap<i64, Vec<&Span>> {
    let mut map: BTreeMap<i64, Vec<&Span>> = BTreeMap::new();
    for s in spans {
        map.entry(seq_of(s)).or_default().push(s);
    }
    map
}

/// The log record of `record` says what the record says, in the standard's terms.
fn assert_matches(span: &Span, record: &AuditRecord, subject_type: &str) {
    let e = &record.entry;
    assert_eq!(
        span.name,
        e.kind.unwrap().as_str(),
        "record {}: name is the kind",
        record.seq
    );
    assert_eq!(
        Some(hex::encode(&span.trace_id)),
        e.trace_id,
        "record {}",
        record.seq
    );
    assert_eq!(
        Some(hex::encode(&span.span_id)),
        e.span_id,
        "record {}",
        record.seq
    );
    assert!(span.start_time_unix_nano > 0 && span.end_time_unix_nano >= span.start_time_unix_nano);
    let status = span.status.as_ref().expect("a status");
    match e.decision {
        Some(gateway::audit::record::Outcome::Permit) => {
            assert_eq!(status.code, status::StatusCode::Ok as i32)
        }
        Some(gateway::audit::record::Outcome::Refuse) => {
            assert_eq!(status.code, status::StatusCode::Error as i32);
            assert_eq!(Some(status.message.as_str()), e.reason.as_deref());
        }
        None => assert_eq!(status.code, status::StatusCode::Unset as i32),
    }
    assert_eq!(
        text_attr(span, DATA_SUBJECT_ID),
        e.subject_pseudonym.as_deref(),
        "record {}: the subject as its pseudonym",
        record.seq
    );
    if e.subject_pseudonym.is_some() {
        assert_eq!(text_attr(span, DATA_SUBJECT_ID_TYPE), Some(subject_type));
    }
    assert_eq!(
        text_attr(span, PROCESSING_ACTIVITY_ID),
        e.processing_activity.as_deref()
    );
    assert_eq!(
        text_attr(span, FOREIGN_OPERATION_SPAN_ID),
        e.foreign_span_id.as_deref()
    );
}

fn logboek_section(port: u16) -> gateway::config::LogboekSection {
    gateway::config::LogboekSection {
        endpoint: format!("http://127.0.0.1:{port}/v1/traces"),
        ca: None,
        timeout_ms: 5_000,
        batch_size: 4,
        interval_ms: 20,
        max_backoff_ms: 100,
        data_subject_id_type: "urn:test:subject-pseudonym".into(),
    }
}

/// The gateway's `/metrics` text.
async fn metrics(gw: &Gateway) -> String {
    let r = gw
        .anonymous_client()
        .get("/metrics")
        .await
        .expect("metrics answered");
    text(&r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_audit_record_reaches_the_logboek_once_and_an_outage_of_the_receiver_loses_nothing() {
    install_telemetry();
    let mut receiver = Receiver::start().await;
    let port = receiver.port;
    let gw = Gateway::start_on(TestDatabase::from_env(), |c| {
        c.logboek = Some(logboek_section(port));
    })
    .await;
    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    seed_demo_client(&gw.client("uwv"), CLIENT_WITH_CONSENT).await;
    let permitted = ask(
        CLIENT_WITH_CONSENT,
        "job-mediation",
        &["own_transport", "cv"],
    );
    let refused = ask(CLIENT_WITHOUT_CONSENT, "job-mediation", &["own_transport"]);
    assert_eq!(
        disclose_with(&gw, "sdd", &permitted, &[("traceparent", &traceparent)]).await,
        200
    );
    assert_eq!(disclose_with(&gw, "sdd", &refused, &[]).await, 403);
    assert_eq!(disclose_with(&gw, "sdd", &permitted, &[]).await, 200);

    let store = gw.store().await;
    let before_outage = assert_chain_verifies(&store).await;
    assert_eq!(
        before_outage.len(),
        5,
        "consent, handover, three disclosures"
    );
    receiver.wait_for(before_outage.len()).await;

    // The receiver goes down. Disclosures go on, each still audited before its answer.
    receiver.stop().await;
    for _ in 0..3 {
        assert_eq!(disclose_with(&gw, "sdd", &permitted, &[]).await, 200);
    }
    assert_eq!(
        disclose_with(&gw, "sdd", &refused, &[("traceparent", &traceparent)]).await,
        403
    );
    // The exporter noticed (without sleeping: /metrics is asked until it says so).
    let failed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let m = metrics(&gw).await;
            if !m.contains("poortwachter_logboek_export_failures_total 0\n") {
                return m;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the failed delivery is counted");
    assert!(
        failed.contains("poortwachter_logboek_lag_records"),
        "{failed}"
    );
    let all = assert_chain_verifies(&store).await;
    assert_eq!(all.len(), 9);
    assert_eq!(
        receiver.spans().len(),
        5,
        "nothing arrived while it was down"
    );

    // It comes back: the exporter catches up from its cursor.
    receiver.restart().await;
    receiver.wait_for(all.len()).await;
    let spans = receiver.spans();
    let delivered = by_seq(&spans);
    let seqs: Vec<i64> = delivered.keys().copied().collect();
    assert_eq!(seqs, (1..=9).collect::<Vec<_>>(), "every record, none lost");
    for (seq, copies) in &delivered {
        assert_eq!(
            copies.len(),
            1,
            "record {seq} delivered once (no crash, so no re-send)"
        );
    }
    for record in &all {
        assert_matches(
            delivered[&record.seq][0],
            record,
            "urn:test:subject-pseudonym",
        );
    }
    // The first disclosure continued the caller's trace: the foreign operation is named.
    let first = all
        .iter()
        .find(|r| r.entry.kind == Some(AuditKind::Disclosure))
        .unwrap();
    let span = delivered[&first.seq][0];
    assert_eq!(hex::encode(&span.trace_id), CALLER_TRACE);
    assert_eq!(hex::encode(&span.parent_span_id), CALLER_SPAN);
    assert_eq!(
        text_attr(span, FOREIGN_OPERATION_SPAN_ID),
        Some(CALLER_SPAN)
    );
    assert_eq!(
        text_attr(span, FOREIGN_OPERATION_PROCESSOR),
        Some(format!("urn:oin:{}", devkit::demo::SDD).as_str())
    );
    assert_eq!(
        text_attr(span, PROCESSING_ACTIVITY_ID),
        Some("https://register.drechtsteden.example/verwerkingsactiviteiten/max-ww-bemiddeling")
    );
    // Never a BSN, never a field value, never a field name.
    let bodies = receiver.received.lock().unwrap().bodies.concat();
    let raw = String::from_utf8_lossy(&bodies);
    for secret in [
        CLIENT_WITH_CONSENT,
        CLIENT_WITHOUT_CONSENT,
        "Orderpicker",
        "own_transport",
    ] {
        assert!(!raw.contains(secret), "`{secret}` was sent to the Logboek");
    }
    // The cursor stands at the last record, and the lag is zero.
    let m = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let m = metrics(&gw).await;
            if m.contains("poortwachter_logboek_lag_records 0\n") {
                return m;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the lag goes back to zero");
    assert!(
        m.contains("poortwachter_logboek_exported_records_total 9\n"),
        "{m}"
    );
    assert_eq!(store.logboek_cursor().await.unwrap(), 9);
    gw.server.shutdown(Duration::from_secs(5)).await;
}
