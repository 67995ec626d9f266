//! Logging, tracing and metrics set-up: `tracing` for logs and spans, bridged to OpenTelemetry
//! (exported over OTLP/HTTP when `telemetry.otlp_endpoint` is set). Spans and log lines carry ids,
//! organisations, purposes, field names and reasons — never a BSN or a field value: those types
//! never reach a span field or a log macro.
//!
//! The cost on the request path is kept down on purpose (BENCHMARKS.md, "Third round"): log
//! lines are written for events only (span fields are not formatted into text for every span;
//! spans go to OpenTelemetry), spans carry only their own fields (no source location, thread,
//! target or busy/idle timing attributes), and without an OTLP endpoint spans are not recorded
//! at all — each request's own span still gets trace and span ids, which audit records carry, and
//! the spans inside a request (decision, reads, audit append) are not even created.

use std::io::IsTerminal as _;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_subscriber::filter::{filter_fn, FilterFn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::config::TelemetrySection;

/// The installed providers; `shutdown` flushes what is buffered.
pub struct Telemetry {
    pub tracer_provider: SdkTracerProvider,
    pub meter_provider: SdkMeterProvider,
}

impl Telemetry {
    /// Flush and stop exporting.
    pub fn shutdown(&self) {
        let _ = self.tracer_provider.force_flush();
        let _ = self.meter_provider.force_flush();
        let _ = self.tracer_provider.shutdown();
        let _ = self.meter_provider.shutdown();
    }
}

fn resource() -> Resource {
    Resource::builder()
        .with_service_name("poortwachter")
        .build()
}

/// Which `tracing` spans become OpenTelemetry spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spans {
    /// Every span: an exporter receives them.
    All,
    /// Only each request's own span (named `request`, opened by the HTTP layer), for the trace
    /// and span ids that audit records carry. Nothing would receive span data, so the spans
    /// inside a request are not created at all: about 5 % of the CPU time of a disclosure
    /// (BENCHMARKS.md, "Fifth round").
    RequestOnly,
}

/// The name of the span the HTTP layer opens for every request.
pub const REQUEST_SPAN: &str = "request";

/// Set up from the configuration: OTLP exporters when an endpoint is configured, otherwise
/// providers without exporters (request spans still get trace ids, which audit records carry).
pub fn init(section: &TelemetrySection) -> anyhow::Result<Telemetry> {
    let (traces, metrics) = providers(section)?;
    let spans = if section.otlp_endpoint.is_some() {
        Spans::All
    } else {
        Spans::RequestOnly
    };
    Ok(install(
        traces,
        metrics,
        section.log_filter.as_deref(),
        spans,
    ))
}

/// The trace and metric providers the configuration asks for (nothing installed yet).
fn providers(section: &TelemetrySection) -> anyhow::Result<(SdkTracerProvider, SdkMeterProvider)> {
    let mut traces = SdkTracerProvider::builder().with_resource(resource());
    let mut metrics = SdkMeterProvider::builder().with_resource(resource());
    match &section.otlp_endpoint {
        // Nothing would receive the spans: build no span data, keep the ids.
        None => traces = traces.with_sampler(Sampler::AlwaysOff),
        Some(endpoint) => {
            use opentelemetry_otlp::WithExportConfig;
            let base = endpoint.trim_end_matches('/');
            let spans = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(format!("{base}/v1/traces"))
                .build()?;
            let meters = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_endpoint(format!("{base}/v1/metrics"))
                .build()?;
            traces = traces.with_batch_exporter(spans);
            metrics = metrics.with_periodic_exporter(meters);
        }
    }
    Ok((traces.build(), metrics.build()))
}

/// Install the given providers globally and the `tracing` subscriber (logs to stderr plus the
/// OpenTelemetry bridge for `spans`). A second call keeps the first subscriber.
pub fn install(
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    filter: Option<&str>,
    spans: Spans,
) -> Telemetry {
    let filter = log_filter(filter);
    let tracer = tracer_provider.tracer("poortwachter");
    opentelemetry::global::set_tracer_provider(tracer_provider.clone());
    opentelemetry::global::set_meter_provider(meter_provider.clone());
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(log_lines())
        .with(span_export(tracer).with_filter(span_selection(spans)))
        .try_init();
    Telemetry {
        tracer_provider,
        meter_provider,
    }
}

/// Log lines on stderr, one per event (colour only on a terminal). Spans are not formatted into
/// text: that cost every request a formatted copy of every span's fields, for log lines that are
/// rarely written; a span's data goes to OpenTelemetry instead.
fn log_lines<S>() -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fmt::layer()
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_filter(filter_fn(|metadata| metadata.is_event()))
}

/// The bridge from `tracing` spans to OpenTelemetry: a span carries the fields it was given and
/// nothing per call on top (no source file and line, thread, target or busy/idle timings).
fn span_export<S>(tracer: SdkTracer) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
}

/// The filter that lets only the chosen spans reach the OpenTelemetry bridge. It looks at a
/// span's static metadata only, so `tracing` caches its answer per call site and a span no
/// layer wants costs nothing where it is opened.
fn span_selection(spans: Spans) -> FilterFn<impl Fn(&tracing::Metadata<'_>) -> bool> {
    filter_fn(move |metadata| match spans {
        Spans::All => true,
        Spans::RequestOnly => metadata.is_span() && metadata.name() == REQUEST_SPAN,
    })
}

/// The caller's W3C trace context (`traceparent`, with its `tracestate`), when it sent a
/// well-formed one: the request span continues the caller's trace as a child of the caller's span.
/// A malformed header is ignored (the request starts a trace of its own), never refused.
pub fn caller_context(headers: &axum::http::HeaderMap) -> Option<opentelemetry::Context> {
    use opentelemetry::propagation::TextMapPropagator as _;
    use opentelemetry::trace::TraceContextExt as _;
    struct Headers<'a>(&'a axum::http::HeaderMap);
    impl opentelemetry::propagation::Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(|k| k.as_str()).collect()
        }
    }
    // Only one `traceparent` may be sent (W3C Trace Context, 3.2): two is no context at all.
    if headers.get_all("traceparent").iter().count() != 1 {
        return None;
    }
    let context =
        opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&Headers(headers));
    context.span().span_context().is_valid().then_some(context)
}

/// The caller's span id in a context from [`caller_context`] (lowercase hex).
pub fn caller_span_id(context: &opentelemetry::Context) -> String {
    use opentelemetry::trace::TraceContextExt as _;
    context.span().span_context().span_id().to_string()
}

/// Serve `request` with `span` as a child of the caller's span when the caller sent a W3C trace
/// context (`caller`), remembering the caller's span for the audit records made meanwhile.
pub async fn continue_caller_trace<F: std::future::Future>(
    span: &tracing::Span,
    caller: Option<opentelemetry::Context>,
    request: F,
) -> F::Output {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let foreign = caller.as_ref().map(caller_span_id);
    if let Some(context) = caller {
        // Fails only when no OpenTelemetry layer is installed (CLI commands): then there are no
        // ids to continue either.
        let _ = span.set_parent(context);
    }
    FOREIGN_SPAN.scope(foreign, request).await
}

tokio::task_local! {
    /// The caller's span id (lowercase hex) while a request that continued the caller's W3C
    /// trace context is served: set by the HTTP layer around the request, read by
    /// [`current_trace_ids`].
    pub static FOREIGN_SPAN: Option<String>;
}

/// Trace context for an audit record (OpenTelemetry ids, when a trace is active).
#[derive(Debug, Clone, Default)]
pub struct TraceIds {
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    /// The caller's span, when the request continued the caller's W3C trace context (the
    /// foreign operation of the Logboek Dataverwerkingen standard).
    pub foreign_span_id: Option<String>,
}

/// The OpenTelemetry trace and span id of the current `tracing` span, for audit records.
pub fn current_trace_ids() -> TraceIds {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let context = tracing::Span::current().context();
    let span = context.span();
    let sc = span.span_context();
    if sc.is_valid() {
        TraceIds {
            trace_id: Some(sc.trace_id().to_string()),
            span_id: Some(sc.span_id().to_string()),
            foreign_span_id: FOREIGN_SPAN.try_with(|f| f.clone()).ok().flatten(),
        }
    } else {
        TraceIds::default()
    }
}

/// Simple logging only (for CLI commands that run no server).
pub fn init_logs(filter: Option<&str>) {
    let _ = tracing_subscriber::registry()
        .with(log_filter(filter))
        .with(log_lines())
        .try_init();
}

/// `RUST_LOG` when set, else the configured filter, else `info`.
fn log_filter(configured: Option<&str>) -> EnvFilter {
    EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(configured.unwrap_or("info")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::trace::InMemorySpanExporter;

    fn ids_inside_a_span(provider: &SdkTracerProvider) -> TraceIds {
        let subscriber =
            tracing_subscriber::registry().with(span_export(provider.tracer("poortwachter")));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", endpoint = "POST /v1/disclosures");
            span.in_scope(current_trace_ids)
        })
    }

    /// Opens a request span with a `decision` span inside it; returns the names of the spans
    /// exported and the ids seen inside the request span and inside the decision span.
    fn request_with_a_child_span(spans: Spans) -> (Vec<String>, TraceIds, TraceIds) {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(span_export(provider.tracer("poortwachter")).with_filter(span_selection(spans)));
        let (in_request, in_decision) = tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!(REQUEST_SPAN, endpoint = "POST /v1/disclosures");
            request.in_scope(|| {
                let in_request = current_trace_ids();
                let in_decision = tracing::info_span!("decision").in_scope(current_trace_ids);
                (in_request, in_decision)
            })
        });
        let names = exporter
            .get_finished_spans()
            .unwrap()
            .iter()
            .map(|s| s.name.to_string())
            .collect();
        (names, in_request, in_decision)
    }

    #[test]
    fn without_an_exporter_only_the_request_span_is_created_and_it_keeps_its_ids() {
        let (names, in_request, in_decision) = request_with_a_child_span(Spans::RequestOnly);
        assert_eq!(names, ["request"]);
        assert!(in_request.span_id.is_some());
        assert_eq!(in_decision.trace_id, in_request.trace_id);
        assert_eq!(in_decision.span_id, in_request.span_id, "no decision span");

        let (names, in_request, in_decision) = request_with_a_child_span(Spans::All);
        assert_eq!(names, ["decision", "request"]);
        assert_eq!(in_decision.trace_id, in_request.trace_id);
        assert_ne!(
            in_decision.span_id, in_request.span_id,
            "a decision span of its own"
        );
    }

    #[test]
    fn without_an_exporter_spans_are_not_recorded_but_audit_records_still_get_trace_ids() {
        let unused = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::AlwaysOff)
            .with_simple_exporter(unused.clone())
            .build();
        let ids = ids_inside_a_span(&provider);
        let trace_id = ids.trace_id.expect("a trace id without an exporter");
        assert_eq!(trace_id.len(), 32);
        assert_ne!(trace_id, "0".repeat(32));
        assert!(ids.span_id.is_some());
        assert!(unused.get_finished_spans().unwrap().is_empty());
    }

    #[test]
    fn spans_are_recorded_only_when_an_otlp_endpoint_is_configured() {
        use opentelemetry::trace::{Span as _, Tracer as _};
        let recording = |endpoint: Option<&str>| {
            let section = TelemetrySection {
                otlp_endpoint: endpoint.map(str::to_owned),
                log_filter: None,
            };
            let (traces, metrics) = providers(&section).unwrap();
            let span = traces.tracer("poortwachter").start("request");
            let answer = (span.is_recording(), span.span_context().is_valid());
            drop(span);
            let _ = traces.shutdown();
            let _ = metrics.shutdown();
            answer
        };
        assert_eq!(
            recording(None),
            (false, true),
            "no endpoint: ids, no span data"
        );
        assert_eq!(recording(Some("http://127.0.0.1:9")), (true, true));
    }

    #[test]
    fn exported_spans_carry_their_own_fields_and_no_location_thread_or_timing_attributes() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let ids = ids_inside_a_span(&provider);
        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(
            Some(spans[0].span_context.trace_id().to_string()),
            ids.trace_id
        );
        let keys: Vec<&str> = spans[0]
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect();
        assert_eq!(keys, ["endpoint"]);
    }

    fn headers(pairs: &[(&str, &str)]) -> axum::http::HeaderMap {
        let mut map = axum::http::HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    /// The ids an audit record made inside a request span that continued `caller` gets, with
    /// span data off (no exporter), as in production without an OTLP endpoint.
    fn ids_continuing(caller: Option<opentelemetry::Context>) -> TraceIds {
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::AlwaysOff)
            .build();
        let subscriber = tracing_subscriber::registry().with(
            span_export(provider.tracer("poortwachter"))
                .with_filter(span_selection(Spans::RequestOnly)),
        );
        let _guard = tracing::subscriber::set_default(subscriber);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            use tracing::Instrument as _;
            let span = tracing::info_span!(REQUEST_SPAN, endpoint = "POST /v1/disclosures");
            continue_caller_trace(
                &span,
                caller,
                async { current_trace_ids() }.instrument(span.clone()),
            )
            .await
        })
    }

    #[test]
    fn a_request_continues_the_callers_trace_and_remembers_the_callers_span() {
        let caller = caller_context(&headers(&[("traceparent", CALLER)]));
        assert!(caller.is_some());
        let ids = ids_continuing(caller);
        assert_eq!(
            ids.trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(ids.foreign_span_id.as_deref(), Some("00f067aa0ba902b7"));
        let own = ids.span_id.expect("a span of its own");
        assert_ne!(
            own, "00f067aa0ba902b7",
            "the request span is a child, not the caller's"
        );
    }

    #[test]
    fn without_a_usable_traceparent_a_request_starts_its_own_trace_and_names_no_foreign_span() {
        for bad in [
            vec![],
            vec![("traceparent", "garbage")],
            vec![(
                "traceparent",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            )],
            vec![(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            )],
            vec![(
                "traceparent",
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            )],
            vec![(
                "traceparent",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )],
            vec![("traceparent", CALLER), ("traceparent", CALLER)],
        ] {
            let caller = caller_context(&headers(&bad));
            assert!(caller.is_none(), "{bad:?}");
            let ids = ids_continuing(caller);
            assert_ne!(
                ids.trace_id.as_deref(),
                Some("4bf92f3577b34da6a3ce929d0e0e4736"),
                "{bad:?}"
            );
            assert!(ids.trace_id.is_some());
            assert_eq!(ids.foreign_span_id, None, "{bad:?}");
        }
    }
}
