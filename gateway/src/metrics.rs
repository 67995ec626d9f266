//! Metrics: decisions by purpose, outcome and reason, and request latencies — recorded both as
//! OpenTelemetry instruments (exported over OTLP when configured) and in a small registry that
//! `/metrics` renders as Prometheus text. Labels are organisations' roles, purposes and reasons;
//! never a BSN, a pseudonym or a field value.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use opentelemetry::metrics::{Counter, Histogram};
use opentelemetry::KeyValue;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default, Clone)]
struct HistogramData {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Registry {
    /// (endpoint, purpose, outcome, reason) → count
    decisions: BTreeMap<(String, String, String, String), u64>,
    /// endpoint → latency histogram
    latency: BTreeMap<String, HistogramData>,
}

/// The gateway's metrics. Cheap to share behind the `AppState`.
pub struct Metrics {
    registry: Mutex<Registry>,
    decisions: Counter<u64>,
    latency: Histogram<f64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Instruments come from the global meter provider (a no-op until telemetry is set up).
    pub fn new() -> Self {
        let meter = opentelemetry::global::meter("poortwachter");
        Metrics {
            registry: Mutex::new(Registry::default()),
            decisions: meter
                .u64_counter("poortwachter.decisions")
                .with_description("Decisions by endpoint, purpose, outcome and reason")
                .build(),
            latency: meter
                .f64_histogram("poortwachter.request.duration")
                .with_unit("s")
                .with_description("Time from request to answer, per endpoint")
                .build(),
        }
    }

    /// Count one decision. `purpose` must be a validated purpose (or a fixed placeholder).
    pub fn decision(&self, endpoint: &str, purpose: &str, outcome: &str, reason: &str) {
        self.decisions.add(
            1,
            &[
                KeyValue::new("endpoint", endpoint.to_owned()),
                KeyValue::new("purpose", purpose.to_owned()),
                KeyValue::new("outcome", outcome.to_owned()),
                KeyValue::new("reason", reason.to_owned()),
            ],
        );
        if let Ok(mut r) = self.registry.lock() {
            *r.decisions
                .entry((
                    endpoint.to_owned(),
                    purpose.to_owned(),
                    outcome.to_owned(),
                    reason.to_owned(),
                ))
                .or_default() += 1;
        }
    }

    /// Record how long a request to `endpoint` took.
    pub fn latency(&self, endpoint: &str, seconds: f64) {
        self.latency
            .record(seconds, &[KeyValue::new("endpoint", endpoint.to_owned())]);
        if let Ok(mut r) = self.registry.lock() {
            let h = r.latency.entry(endpoint.to_owned()).or_default();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += seconds;
        }
    }

    /// Prometheus text exposition of the registry.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(r) = self.registry.lock() else {
            return out;
        };
        out.push_str("# HELP poortwachter_decisions_total Decisions by endpoint, purpose, outcome and reason.\n");
        out.push_str("# TYPE poortwachter_decisions_total counter\n");
        for ((endpoint, purpose, outcome, reason), n) in &r.decisions {
            let _ = writeln!(
                out,
                "poortwachter_decisions_total{{endpoint=\"{}\",purpose=\"{}\",outcome=\"{}\",reason=\"{}\"}} {n}",
                escape(endpoint),
                escape(purpose),
                escape(outcome),
                escape(reason)
            );
        }
        out.push_str("# HELP poortwachter_request_duration_seconds Time from request to answer.\n");
        out.push_str("# TYPE poortwachter_request_duration_seconds histogram\n");
        for (endpoint, h) in &r.latency {
            let e = escape(endpoint);
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "poortwachter_request_duration_seconds_bucket{{endpoint=\"{e}\",le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "poortwachter_request_duration_seconds_bucket{{endpoint=\"{e}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "poortwachter_request_duration_seconds_sum{{endpoint=\"{e}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "poortwachter_request_duration_seconds_count{{endpoint=\"{e}\"}} {}",
                h.count
            );
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms_in_prometheus_text() {
        let m = Metrics::new();
        m.decision("disclosure", "job-mediation", "refuse", "consent-required");
        m.decision("disclosure", "job-mediation", "refuse", "consent-required");
        m.latency("disclosure", 0.002);
        let text = m.render();
        assert!(text.contains(
            "poortwachter_decisions_total{endpoint=\"disclosure\",purpose=\"job-mediation\",outcome=\"refuse\",reason=\"consent-required\"} 2"
        ));
        assert!(text.contains(
            "poortwachter_request_duration_seconds_bucket{endpoint=\"disclosure\",le=\"0.0025\"} 1"
        ));
        assert!(text.contains(
            "poortwachter_request_duration_seconds_bucket{endpoint=\"disclosure\",le=\"0.001\"} 0"
        ));
        assert!(
            text.contains("poortwachter_request_duration_seconds_count{endpoint=\"disclosure\"} 1")
        );
    }
}
