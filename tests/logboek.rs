//! The Logboek Dataverwerkingen export and the W3C trace context it relies on, end to end over
//! mutual TLS: a request continues the caller's `traceparent` (its audit record names the
//! caller's trace and span); every audit record reaches a real OTLP/HTTP receiver that this test
//! runs, as one log record with the `dpl.core.*` attributes, also after the receiver was down.

mod common;

use common::*;
use devkit::demo::CLIENT_WITH_CONSENT;
use hyper::Method;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use serde_json::Value;

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
