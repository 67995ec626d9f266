//! Metrics: decisions by purpose, outcome and reason, request latencies, and the audit log's
//! commits (how long each took, how many records, how many failed) — recorded both as
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

impl HistogramData {
    fn observe(&mut self, seconds: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    /// The series of one histogram `name` with the label text `labels` (`key="value"`, or empty).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Default)]
struct Registry {
    /// (endpoint, purpose, outcome, reason) → count
    decisions: BTreeMap<(String, String, String, String), u64>,
    /// endpoint → latency histogram
    latency: BTreeMap<String, HistogramData>,
    /// Duration of each audit commit (successful or not).
    audit_commit: HistogramData,
    /// How long each append waited for its record to be durable (queue and commit).
    audit_wait: HistogramData,
    audit_records: u64,
    audit_commit_failures: u64,
    /// reason → requests answered 503 with it
    unavailable: BTreeMap<String, u64>,
}

/// The gateway's metrics. Cheap to share behind the `AppState`.
pub struct Metrics {
    registry: Mutex<Registry>,
    decisions: Counter<u64>,
    latency: Histogram<f64>,
    audit_commit: Histogram<f64>,
    audit_wait: Histogram<f64>,
    audit_records: Counter<u64>,
    unavailable: Counter<u64>,
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
            audit_commit: meter
                .f64_histogram("poortwachter.audit.commit.duration")
                .with_unit("s")
                .with_description(
                    "Time of one audit commit (a group of records, the sync to disk included), \
                     by outcome",
                )
                .build(),
            audit_wait: meter
                .f64_histogram("poortwachter.audit.wait.duration")
                .with_unit("s")
                .with_description(
                    "Time a request waited for its audit record to be durable (the queue \
                     before its commit, and the commit)",
                )
                .build(),
            audit_records: meter
                .u64_counter("poortwachter.audit.records")
                .with_description("Audit records committed")
                .build(),
            unavailable: meter
                .u64_counter("poortwachter.unavailable")
                .with_description(
                    "Requests refused with 503 because the database or the audit log failed \
                     them or time ran out, by reason",
                )
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
            r.latency
                .entry(endpoint.to_owned())
                .or_default()
                .observe(seconds);
        }
    }

    /// Record one audit commit of `records` records that took `seconds` and succeeded or not
    /// (a failed commit keeps none of its records; their requests are refused).
    pub fn audit_commit(&self, seconds: f64, records: usize, committed: bool) {
        let outcome = if committed { "committed" } else { "failed" };
        self.audit_commit
            .record(seconds, &[KeyValue::new("outcome", outcome)]);
        if committed {
            self.audit_records.add(records as u64, &[]);
        }
        if let Ok(mut r) = self.registry.lock() {
            r.audit_commit.observe(seconds);
            if committed {
                r.audit_records += records as u64;
            } else {
                r.audit_commit_failures += 1;
            }
        }
    }

    /// Count one request refused with 503 `reason` (`unavailable`, `audit-unavailable`,
    /// `timeout`): the database or the audit log failed it, or its time ran out.
    pub fn unavailable(&self, reason: &str) {
        self.unavailable
            .add(1, &[KeyValue::new("reason", reason.to_owned())]);
        if let Ok(mut r) = self.registry.lock() {
            *r.unavailable.entry(reason.to_owned()).or_default() += 1;
        }
    }

    /// Record how long one append waited for its record to be durable (or to fail): the time
    /// behind earlier commits plus its own. Compared with the commit durations, it shows whether
    /// slow disclosures queue for the audit log's disk.
    pub fn audit_wait(&self, seconds: f64) {
        self.audit_wait.record(seconds, &[]);
        if let Ok(mut r) = self.registry.lock() {
            r.audit_wait.observe(seconds);
        }
    }

    /// Prometheus text exposition of the registry, then the `gauges` computed at scrape time.
    pub fn render(&self, gauges: &[Gauge<'_>]) -> String {
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            render_registry(&mut out, &r);
        }
        for gauge in gauges {
            series(&mut out, gauge.name, "gauge", gauge.help);
            for (labels, value) in &gauge.samples {
                let text: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                if text.is_empty() {
                    let _ = writeln!(out, "{} {value}", gauge.name);
                } else {
                    let _ = writeln!(out, "{}{{{}}} {value}", gauge.name, text.join(","));
                }
            }
        }
        out
    }
}

/// A gauge whose samples are computed when `/metrics` is read (e.g. days until a covenant
/// ends), rendered with the registry's series.
#[derive(Debug, Clone)]
pub struct Gauge<'a> {
    pub name: &'a str,
    pub help: &'a str,
    /// Each sample's labels (name, unescaped value) and value.
    pub samples: Vec<(Vec<(&'a str, String)>, i64)>,
}

fn render_registry(out: &mut String, r: &Registry) {
    series(
        out,
        "poortwachter_decisions_total",
        "counter",
        "Decisions by endpoint, purpose, outcome and reason.",
    );
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
    let name = "poortwachter_request_duration_seconds";
    series(out, name, "histogram", "Time from request to answer.");
    for (endpoint, h) in &r.latency {
        h.render(out, name, &format!("endpoint=\"{}\"", escape(endpoint)));
    }
    let name = "poortwachter_audit_commit_duration_seconds";
    series(
        out,
        name,
        "histogram",
        "Time of one audit commit (a group of records, the sync to disk included).",
    );
    r.audit_commit.render(out, name, "");
    let name = "poortwachter_audit_wait_duration_seconds";
    series(
        out,
        name,
        "histogram",
        "Time a request waited for its audit record to be durable (the queue before its \
         commit, and the commit).",
    );
    r.audit_wait.render(out, name, "");
    let name = "poortwachter_audit_records_total";
    series(out, name, "counter", "Audit records committed.");
    let _ = writeln!(out, "{name} {}", r.audit_records);
    let name = "poortwachter_audit_commit_failures_total";
    series(
        out,
        name,
        "counter",
        "Audit commits that failed (their requests were refused).",
    );
    let _ = writeln!(out, "{name} {}", r.audit_commit_failures);
    let name = "poortwachter_unavailable_total";
    series(
        out,
        name,
        "counter",
        "Requests refused with 503 because the database or the audit log failed them, or their \
         time ran out, by reason.",
    );
    for (reason, n) in &r.unavailable {
        let _ = writeln!(out, "{name}{{reason=\"{}\"}} {n}", escape(reason));
    }
}

/// The `# HELP` and `# TYPE` lines that open one series in the Prometheus text.
fn series(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
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
        let text = m.render(&[]);
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
        assert!(text.contains(
            "poortwachter_request_duration_seconds_bucket{endpoint=\"disclosure\",le=\"+Inf\"} 1"
        ));
        assert!(text
            .contains("poortwachter_request_duration_seconds_sum{endpoint=\"disclosure\"} 0.002"));
    }

    #[test]
    fn audit_commits_count_records_only_when_committed() {
        let m = Metrics::new();
        m.audit_commit(0.0008, 5, true);
        m.audit_commit(0.03, 2, false);
        let text = m.render(&[]);
        assert!(text.contains("poortwachter_audit_records_total 5\n"));
        assert!(text.contains("poortwachter_audit_commit_failures_total 1\n"));
        assert!(
            text.contains("poortwachter_audit_commit_duration_seconds_bucket{le=\"0.001\"} 1\n")
        );
        assert!(text.contains("poortwachter_audit_commit_duration_seconds_bucket{le=\"0.05\"} 2\n"));
        assert!(text.contains("poortwachter_audit_commit_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("poortwachter_audit_commit_duration_seconds_count 2\n"));
    }
}
