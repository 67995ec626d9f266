//! Logging, tracing and metrics set-up: `tracing` for logs and spans, bridged to OpenTelemetry
//! (exported over OTLP/HTTP when `telemetry.otlp_endpoint` is set). Spans and log lines carry ids,
//! organisations, purposes, field names and reasons — never a BSN or a field value: those types
//! never reach a span field or a log macro.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

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

/// Set up from the configuration: OTLP exporters when an endpoint is configured, otherwise
/// providers without exporters (spans still get trace ids, which audit records carry).
pub fn init(section: &TelemetrySection) -> anyhow::Result<Telemetry> {
    let mut traces = SdkTracerProvider::builder().with_resource(resource());
    let mut metrics = SdkMeterProvider::builder().with_resource(resource());
    if let Some(endpoint) = &section.otlp_endpoint {
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
    Ok(install(
        traces.build(),
        metrics.build(),
        section.log_filter.as_deref(),
    ))
}

/// Install the given providers globally and the `tracing` subscriber (logs to stderr plus the
/// OpenTelemetry bridge). A second call keeps the first subscriber.
pub fn install(
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    filter: Option<&str>,
) -> Telemetry {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(filter.unwrap_or("info")));
    let tracer = tracer_provider.tracer("poortwachter");
    opentelemetry::global::set_tracer_provider(tracer_provider.clone());
    opentelemetry::global::set_meter_provider(meter_provider.clone());
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt::layer().with_target(false).with_writer(std::io::stderr))
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .try_init();
    Telemetry {
        tracer_provider,
        meter_provider,
    }
}

/// The OpenTelemetry trace and span id of the current `tracing` span, for audit records.
pub fn current_trace_ids() -> crate::disclosure::TraceIds {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let context = tracing::Span::current().context();
    let span = context.span();
    let sc = span.span_context();
    if sc.is_valid() {
        crate::disclosure::TraceIds {
            trace_id: Some(sc.trace_id().to_string()),
            span_id: Some(sc.span_id().to_string()),
        }
    } else {
        crate::disclosure::TraceIds::default()
    }
}

/// Simple logging only (for CLI commands that run no server).
pub fn init_logs(filter: Option<&str>) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(filter.unwrap_or("info")));
    let _ = fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}
