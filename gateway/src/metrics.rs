//! Metrics: decisions by purpose, outcome and reason, request latencies, the audit log's
//! commits (how long each took, how many records, how many failed) and connections (open,
//! refused and closed by kind, accept errors) — recorded both as
//! OpenTelemetry instruments (exported over OTLP when configured) and in a small registry that
//! `/metrics` renders as Prometheus text. Labels are organisations' roles, purposes and reasons;
//! never a BSN, a pseudonym or a field value.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use opentelemetry::metrics::{Counter, Histogram, UpDownCounter};
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
    /// kind → connections open now
    connections_open: BTreeMap<&'static str, i64>,
    /// kind → connections closed to keep within the caps
    connections_refused: BTreeMap<&'static str, u64>,
    /// (kind, cause) → connections closed
    connections_closed: BTreeMap<(&'static str, &'static str), u64>,
    accept_errors: u64,
}

/// The `kind` label of the connection series: every connection starts unidentified and becomes
/// identified when its handshake shows a configured organisation's certificate.
pub const CONNECTION_KINDS: [&str; 2] = ["identified", "unidentified"];

/// The gateway's metrics. Cheap to share behind the `AppState`.
pub struct Metrics {
    registry: Mutex<Registry>,
    decisions: Counter<u64>,
    latency: Histogram<f64>,
    audit_commit: Histogram<f64>,
    audit_wait: Histogram<f64>,
    audit_records: Counter<u64>,
    unavailable: Counter<u64>,
    connections_open: UpDownCounter<i64>,
    connections_refused: Counter<u64>,
    connections_closed: Counter<u64>,
    accept_errors: Counter<u64>,
    /// The Logboek Dataverwerkingen export (rendered only when it runs).
    pub logboek: LogboekMetrics,
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
        let mut registry = Registry::default();
        for kind in CONNECTION_KINDS {
            registry.connections_open.insert(kind, 0);
            registry.connections_refused.insert(kind, 0);
        }
        Metrics {
            registry: Mutex::new(registry),
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
            connections_open: meter
                .i64_up_down_counter("poortwachter.connections.open")
                .with_description("Connections open now, by kind (identified, unidentified)")
                .build(),
            connections_refused: meter
                .u64_counter("poortwachter.connections.refused")
                .with_description(
                    "Connections closed to keep within the connection caps (the slowest \
                     unidentified connection makes room for a new one), by kind",
                )
                .build(),
            connections_closed: meter
                .u64_counter("poortwachter.connections.closed")
                .with_description("Connections closed, by kind and cause")
                .build(),
            accept_errors: meter
                .u64_counter("poortwachter.accept.errors")
                .with_description(
                    "Failed accepts of new connections (e.g. out of file descriptors)",
                )
                .build(),
            logboek: LogboekMetrics::default(),
        }
    }

    /// A connection was accepted: it is unidentified until its handshake says otherwise.
    pub fn connection_opened(&self) {
        self.connection_open_delta("unidentified", 1);
    }

    /// An open connection turned out to be an organisation's (`unidentified` → `identified`).
    pub fn connection_identified(&self) {
        self.connection_open_delta("unidentified", -1);
        self.connection_open_delta("identified", 1);
    }

    /// A connection of `kind` (one of [`CONNECTION_KINDS`]) was closed for `cause`.
    pub fn connection_closed(&self, kind: &'static str, cause: &'static str) {
        self.connection_open_delta(kind, -1);
        self.connections_closed.add(
            1,
            &[KeyValue::new("kind", kind), KeyValue::new("cause", cause)],
        );
        if let Ok(mut r) = self.registry.lock() {
            *r.connections_closed.entry((kind, cause)).or_default() += 1;
        }
    }

    /// A connection of `kind` was chosen to be closed to make room (it is counted as closed,
    /// cause `evicted`, when it is gone).
    pub fn connection_refused(&self, kind: &'static str) {
        self.connections_refused
            .add(1, &[KeyValue::new("kind", kind)]);
        if let Ok(mut r) = self.registry.lock() {
            *r.connections_refused.entry(kind).or_default() += 1;
        }
    }

    /// Accepting a new connection failed.
    pub fn accept_error(&self) {
        self.accept_errors.add(1, &[]);
        if let Ok(mut r) = self.registry.lock() {
            r.accept_errors += 1;
        }
    }

    fn connection_open_delta(&self, kind: &'static str, delta: i64) {
        self.connections_open
            .add(delta, &[KeyValue::new("kind", kind)]);
        if let Ok(mut r) = self.registry.lock() {
            *r.connections_open.entry(kind).or_default() += delta;
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
        self.logboek.render(&mut out);
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
    let name = "poortwachter_connections_open";
    series(
        out,
        name,
        "gauge",
        "Connections open now, by kind (unidentified: in the TLS handshake, or without a configured organisation's certificate).",
    );
    for (kind, n) in &r.connections_open {
        let _ = writeln!(out, "{name}{{kind=\"{kind}\"}} {n}");
    }
    let name = "poortwachter_connections_refused_total";
    series(
        out,
        name,
        "counter",
        "Connections closed to keep within the connection caps (the slowest unidentified connection makes room for a new one).",
    );
    for (kind, n) in &r.connections_refused {
        let _ = writeln!(out, "{name}{{kind=\"{kind}\"}} {n}");
    }
    let name = "poortwachter_connections_closed_total";
    series(
        out,
        name,
        "counter",
        "Connections closed, by kind and cause.",
    );
    for ((kind, cause), n) in &r.connections_closed {
        let _ = writeln!(out, "{name}{{kind=\"{kind}\",cause=\"{cause}\"}} {n}");
    }
    let name = "poortwachter_accept_errors_total";
    series(
        out,
        name,
        "counter",
        "Failed accepts of new connections (e.g. out of file descriptors).",
    );
    let _ = writeln!(out, "{name} {}", r.accept_errors);
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

    #[test]
    fn connections_are_counted_by_kind_and_cause() {
        let m = Metrics::new();
        let text = m.render(&[]);
        assert!(text.contains("poortwachter_connections_open{kind=\"identified\"} 0\n"));
        assert!(text.contains("poortwachter_connections_refused_total{kind=\"unidentified\"} 0\n"));
        m.connection_opened();
        m.connection_opened();
        m.connection_opened();
        m.connection_identified();
        m.connection_refused("unidentified");
        m.connection_closed("unidentified", "evicted");
        m.accept_error();
        let text = m.render(&[]);
        assert!(text.contains("poortwachter_connections_open{kind=\"identified\"} 1\n"));
        assert!(text.contains("poortwachter_connections_open{kind=\"unidentified\"} 1\n"));
        assert!(text.contains("poortwachter_connections_refused_total{kind=\"unidentified\"} 1\n"));
        assert!(text.contains(
            "poortwachter_connections_closed_total{kind=\"unidentified\",cause=\"evicted\"} 1\n"
        ));
        assert!(text.contains("poortwachter_accept_errors_total 1\n"));
    }
}

// ── Logboek Dataverwerkingen export ──────────────────────────────────────────────────────────

/// The export's counters: records the receiver acknowledged, failed deliveries, and how many
/// durable audit records are not yet acknowledged (the lag). Rendered once the export runs.
#[derive(Debug, Default)]
pub struct LogboekMetrics {
    running: std::sync::atomic::AtomicBool,
    exported: std::sync::atomic::AtomicU64,
    failures: std::sync::atomic::AtomicU64,
    lag: std::sync::atomic::AtomicI64,
}

impl LogboekMetrics {
    /// The export runs: its series appear in `/metrics`.
    pub fn running(&self) {
        self.running
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The receiver acknowledged `records` more records.
    pub fn exported(&self, records: u64) {
        self.exported
            .fetch_add(records, std::sync::atomic::Ordering::Relaxed);
    }

    /// A batch was not delivered (it is sent again).
    pub fn failed(&self) {
        self.failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Durable audit records not yet acknowledged by the receiver.
    pub fn lag(&self, records: i64) {
        self.lag
            .store(records.max(0), std::sync::atomic::Ordering::Relaxed);
    }

    fn render(&self, out: &mut String) {
        use std::sync::atomic::Ordering::Relaxed;
        if !self.running.load(Relaxed) {
            return;
        }
        let name = "poortwachter_logboek_exported_records_total";
        series(
            out,
            name,
            "counter",
            "Audit records the Logboek Dataverwerkingen receiver acknowledged.",
        );
        let _ = writeln!(out, "{name} {}", self.exported.load(Relaxed));
        let name = "poortwachter_logboek_export_failures_total";
        series(
            out,
            name,
            "counter",
            "Batches the Logboek Dataverwerkingen receiver did not acknowledge (sent again later).",
        );
        let _ = writeln!(out, "{name} {}", self.failures.load(Relaxed));
        let name = "poortwachter_logboek_lag_records";
        series(
            out,
            name,
            "gauge",
            "Durable audit records the Logboek Dataverwerkingen receiver has not yet acknowledged.",
        );
        let _ = writeln!(out, "{name} {}", self.lag.load(Relaxed));
    }
}
