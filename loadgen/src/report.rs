//! What a run measured: counts per worker ([`Tally`], merged at the end) and the [`Report`] made
//! from them, printed as text or JSON. Latencies are recorded in microseconds in HDR histograms
//! (3 significant digits) and reported in milliseconds.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::target::{problem_reason, Answer, TransportError};

/// Highest latency a histogram tracks exactly (µs); longer ones are recorded as this.
const MAX_TRACKED_US: u64 = 600_000_000;

fn histogram() -> Histogram<u64> {
    // Bounds and precision are constants that `new_with_bounds` accepts.
    Histogram::new_with_bounds(1, MAX_TRACKED_US, 3).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// One worker's counts.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Latency of answered requests: from the intended send time (open loop) or the actual send
    /// time (closed loop) to the end of the response body.
    pub latency: Histogram<u64>,
    /// From the actual send time to the end of the response body.
    pub service: Histogram<u64>,
    /// Measured requests that got an HTTP answer.
    pub answered: u64,
    /// Of those, 2xx answers.
    pub ok: u64,
    pub statuses: BTreeMap<u16, u64>,
    /// Non-2xx answers by status and problem `reason`.
    pub failures: BTreeMap<(u16, Option<String>), u64>,
    /// Measured requests without an HTTP answer.
    pub transport: BTreeMap<TransportError, u64>,
    /// Requests started during the warm-up (not in the figures above).
    pub warmup_requests: u64,
    /// Every request started, warm-up included.
    pub started: u64,
    /// Connections opened.
    pub connections: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            latency: histogram(),
            service: histogram(),
            answered: 0,
            ok: 0,
            statuses: BTreeMap::new(),
            failures: BTreeMap::new(),
            transport: BTreeMap::new(),
            warmup_requests: 0,
            started: 0,
            connections: 0,
        }
    }
}

impl Tally {
    /// Count one measured request.
    pub fn record(
        &mut self,
        outcome: &Result<Answer, TransportError>,
        latency: Duration,
        service: Duration,
    ) {
        match outcome {
            Ok(answer) => {
                self.answered += 1;
                self.latency.saturating_record(micros(latency));
                self.service.saturating_record(micros(service));
                *self.statuses.entry(answer.status).or_default() += 1;
                if (200..300).contains(&answer.status) {
                    self.ok += 1;
                } else {
                    let reason = problem_reason(&answer.body);
                    *self.failures.entry((answer.status, reason)).or_default() += 1;
                }
            }
            Err(kind) => *self.transport.entry(*kind).or_default() += 1,
        }
    }

    /// Add another worker's counts to these.
    pub fn merge(&mut self, other: Tally) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        self.answered += other.answered;
        self.ok += other.ok;
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for (k, v) in other.failures {
            *self.failures.entry(k).or_default() += v;
        }
        for (k, v) in other.transport {
            *self.transport.entry(k).or_default() += v;
        }
        self.warmup_requests += other.warmup_requests;
        self.started += other.started;
        self.connections += other.connections;
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Percentiles {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Percentiles {
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p999: 0.0,
                max: 0.0,
                mean: 0.0,
            };
        }
        Percentiles {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// How the load was applied.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Closed loop: a fixed number of requests in flight.
    FixedConcurrency,
    /// Open loop: requests due at a fixed rate.
    FixedRate,
}

/// Non-2xx answers with one status and reason.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
    pub reason: Option<String>,
    pub count: u64,
}

/// The result of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Method and URL.
    pub target: String,
    pub mode: Mode,
    pub engine: String,
    /// Connections (closed loop: requests in flight).
    pub connections: usize,
    /// Offered requests per second (open loop only).
    pub offered_rps: Option<f64>,
    pub threads: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// Wall time of the whole run, warm-up and the tail of in-flight requests included.
    pub elapsed_s: f64,
    /// Measured requests that got an HTTP answer.
    pub requests: u64,
    /// Of those, 2xx.
    pub ok: u64,
    /// Non-2xx answers plus requests without an answer.
    pub errors: u64,
    /// Answered requests per second of measuring.
    pub throughput_rps: f64,
    /// Latency of answered requests; in open loop from the time each request was due.
    pub latency_ms: Percentiles,
    /// Open loop only: from the actual send to the answer (queueing in the generator excluded).
    pub service_time_ms: Option<Percentiles>,
    /// Answers by HTTP status.
    pub statuses: BTreeMap<String, u64>,
    /// Non-2xx answers by status and problem `reason`.
    pub failures: Vec<Failure>,
    /// Requests without an HTTP answer, by kind (`connect`, `tls`, `http`, `timeout`).
    pub transport_errors: BTreeMap<String, u64>,
    pub connections_opened: u64,
    pub warmup_requests: u64,
    /// Every request started, warm-up included (e.g. to compare with audit records written).
    pub total_requests: u64,
    /// Open loop only: requests that were due before the end but never sent (the generator or
    /// the server fell behind).
    pub unsent_at_end: Option<u64>,
}

/// The run's settings as the report states them.
#[derive(Debug, Clone)]
pub struct Settings {
    pub target: String,
    pub engine: String,
    pub connections: usize,
    pub rate: Option<f64>,
    pub threads: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

impl Report {
    /// Make the report from the merged tally.
    pub fn new(
        settings: Settings,
        tally: &Tally,
        elapsed: Duration,
        unsent_at_end: Option<u64>,
    ) -> Report {
        let transport: u64 = tally.transport.values().sum();
        let duration_s = settings.duration.as_secs_f64();
        Report {
            target: settings.target,
            mode: if settings.rate.is_some() {
                Mode::FixedRate
            } else {
                Mode::FixedConcurrency
            },
            engine: settings.engine,
            connections: settings.connections,
            offered_rps: settings.rate,
            threads: settings.threads,
            warmup_s: settings.warmup.as_secs_f64(),
            duration_s,
            elapsed_s: elapsed.as_secs_f64(),
            requests: tally.answered,
            ok: tally.ok,
            errors: (tally.answered - tally.ok) + transport,
            throughput_rps: if duration_s > 0.0 {
                tally.answered as f64 / duration_s
            } else {
                0.0
            },
            latency_ms: Percentiles::of(&tally.latency),
            service_time_ms: settings.rate.map(|_| Percentiles::of(&tally.service)),
            statuses: tally
                .statuses
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect(),
            failures: tally
                .failures
                .iter()
                .map(|((status, reason), count)| Failure {
                    status: *status,
                    reason: reason.clone(),
                    count: *count,
                })
                .collect(),
            transport_errors: tally
                .transport
                .iter()
                .map(|(k, n)| (k.label().to_owned(), *n))
                .collect(),
            connections_opened: tally.connections,
            warmup_requests: tally.warmup_requests,
            total_requests: tally.started,
            unsent_at_end,
        }
    }
}

fn percentiles_line(f: &mut fmt::Formatter<'_>, label: &str, p: &Percentiles) -> fmt::Result {
    writeln!(
        f,
        "{label:<14}p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}",
        p.p50, p.p90, p.p99, p.p999, p.max, p.mean
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offered_rps {
            Some(rate) => writeln!(
                f,
                "{}: fixed rate {rate}/s (open loop; latency from the intended send time), \
                 up to {} connections",
                self.target, self.connections
            )?,
            None => writeln!(
                f,
                "{}: fixed concurrency {} (closed loop)",
                self.target, self.connections
            )?,
        }
        writeln!(
            f,
            "{:<14}{:.1} s measured after {:.1} s warm-up; engine {}, {} thread(s)",
            "run", self.duration_s, self.warmup_s, self.engine, self.threads
        )?;
        writeln!(
            f,
            "{:<14}{} answered ({:.1}/s), {} 2xx, {} errors",
            "requests", self.requests, self.throughput_rps, self.ok, self.errors
        )?;
        if let Some(unsent) = self.unsent_at_end {
            writeln!(f, "{:<14}{unsent} due but never sent", "backlog")?;
        }
        percentiles_line(f, "latency (ms)", &self.latency_ms)?;
        if let Some(service) = &self.service_time_ms {
            percentiles_line(f, "service (ms)", service)?;
        }
        writeln!(
            f,
            "{:<14}{} opened; {} warm-up requests",
            "connections", self.connections_opened, self.warmup_requests
        )?;
        if !self.failures.is_empty() {
            writeln!(f, "errors by status and reason:")?;
            for failure in &self.failures {
                writeln!(
                    f,
                    "  {} {:<32}{}",
                    failure.status,
                    failure.reason.as_deref().unwrap_or("(no reason)"),
                    failure.count
                )?;
            }
        }
        if !self.transport_errors.is_empty() {
            writeln!(f, "requests without an answer:")?;
            for (kind, count) in &self.transport_errors {
                writeln!(f, "  {kind:<36}{count}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Bytes;

    fn answer(status: u16, body: &str) -> Result<Answer, TransportError> {
        Ok(Answer {
            status,
            body: Bytes::from(body.to_owned()),
        })
    }

    #[test]
    fn failures_are_counted_by_status_and_reason() {
        let ms = Duration::from_millis(1);
        let mut a = Tally::default();
        a.record(&answer(200, "{}"), ms, ms);
        a.record(&answer(403, r#"{"reason":"consent-required"}"#), ms, ms);
        let mut b = Tally::default();
        b.record(&answer(403, r#"{"reason":"consent-required"}"#), ms, ms);
        b.record(&answer(502, "bad gateway"), ms, ms);
        b.record(&Err(TransportError::Timeout), ms, ms);
        a.merge(b);

        let settings = Settings {
            target: "POST https://127.0.0.1:1/x".into(),
            engine: "direct".into(),
            connections: 1,
            rate: None,
            threads: 1,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(1),
        };
        let report = Report::new(settings, &a, Duration::from_secs(1), None);
        assert_eq!(report.requests, 4);
        assert_eq!(report.ok, 1);
        assert_eq!(report.errors, 4);
        assert_eq!(
            report.failures,
            vec![
                Failure {
                    status: 403,
                    reason: Some("consent-required".into()),
                    count: 2
                },
                Failure {
                    status: 502,
                    reason: None,
                    count: 1
                },
            ]
        );
        assert_eq!(report.transport_errors.get("timeout"), Some(&1));
        assert!(report.latency_ms.p50 >= 0.999 && report.latency_ms.p50 <= 1.001);
        let text = report.to_string();
        assert!(text.contains("consent-required"), "{text}");
    }
}
