//! Log lines for a failure that repeats (the database down, the audit disk full): one when it
//! starts, then at most one per interval with a count, and one when it ends — never one per
//! request, so an outage under load cannot flood the log. Callers pass the error, never a value.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One kind of failure and its log lines. Cheap to call on every success (an atomic load).
#[derive(Debug)]
pub struct FailureLog {
    /// What fails, as the log lines name it ("database requests", "audit commits").
    what: &'static str,
    /// At most one line per this interval while the failure lasts.
    every: Duration,
    failing: AtomicBool,
    episode: Mutex<Option<Episode>>,
}

#[derive(Debug, Clone, Copy)]
struct Episode {
    started: Instant,
    /// Failures since it started.
    total: u64,
    /// Failures since the last line.
    unreported: u64,
    last_line: Instant,
    last_failure: Instant,
}

impl FailureLog {
    pub const fn new(what: &'static str, every: Duration) -> FailureLog {
        FailureLog {
            what,
            every,
            failing: AtomicBool::new(false),
            episode: Mutex::new(None),
        }
    }

    fn episode(&self) -> std::sync::MutexGuard<'_, Option<Episode>> {
        match self.episode.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Whether the last thing reported was a failure.
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    /// One failure. The first of an episode is logged with its error at once; later ones are
    /// counted and summed up in one line per interval. A failure after a whole interval without
    /// one starts a new episode (for callers that never see a success).
    pub fn failed(&self, error: &dyn std::fmt::Display) {
        let now = Instant::now();
        let mut episode = self.episode();
        self.failing.store(true, Ordering::Release);
        match episode.as_mut() {
            Some(e) if now.duration_since(e.last_failure) < self.every => {
                e.total += 1;
                e.unreported += 1;
                e.last_failure = now;
                if now.duration_since(e.last_line) >= self.every {
                    tracing::error!(
                        failures = e.unreported,
                        seconds = now.duration_since(e.last_line).as_secs(),
                        since_start = e.total,
                        error = %error,
                        "{} still failing",
                        self.what
                    );
                    e.unreported = 0;
                    e.last_line = now;
                }
            }
            previous => {
                if let Some(e) = previous {
                    self.log_end(e, "paused");
                }
                tracing::error!(error = %error, "{} failing", self.what);
                *episode = Some(Episode {
                    started: now,
                    total: 1,
                    unreported: 0,
                    last_line: now,
                    last_failure: now,
                });
            }
        }
    }

    /// A success: ends the episode, if one is open, with a line that counts it.
    pub fn succeeded(&self) {
        if !self.failing.load(Ordering::Acquire) {
            return;
        }
        let mut episode = self.episode();
        self.failing.store(false, Ordering::Release);
        if let Some(e) = episode.take() {
            self.log_end(&e, "recovered");
        }
    }

    fn log_end(&self, e: &Episode, how: &str) {
        tracing::warn!(
            failures = e.total,
            seconds = e.started.elapsed().as_secs(),
            "{} {how}",
            self.what
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines written while `f` runs, captured by a subscriber of their own.
    fn lines_of(f: impl FnOnce()) -> Vec<String> {
        #[derive(Clone, Default)]
        struct Sink(std::sync::Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn a_thousand_failures_make_one_line_and_the_recovery_one_more() {
        let log = FailureLog::new("database requests", Duration::from_secs(3600));
        let lines = lines_of(|| {
            for _ in 0..1000 {
                log.failed(&"connection refused");
            }
            assert!(log.is_failing());
            log.succeeded();
            log.succeeded();
        });
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(
            lines[0].contains("database requests failing"),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("connection refused"), "{}", lines[0]);
        assert!(
            lines[1].contains("database requests recovered"),
            "{}",
            lines[1]
        );
        assert!(lines[1].contains("failures=1000"), "{}", lines[1]);
        assert!(!log.is_failing());
    }

    #[test]
    fn a_lasting_failure_gets_one_line_per_interval_with_its_count() {
        let log = FailureLog::new("audit commits", Duration::from_millis(50));
        let started = Instant::now();
        let lines = lines_of(|| {
            for _ in 0..40 {
                log.failed(&"database or disk is full");
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        // The first line, then one per 50 ms that passed: never one per failure.
        let intervals = started.elapsed().as_millis() / 50;
        assert!(lines.len() >= 2, "{lines:#?}");
        assert!(lines.len() as u128 <= 2 + intervals, "{lines:#?}");
        assert!(lines.len() < 40, "{lines:#?}");
        assert!(
            lines[1].contains("audit commits still failing"),
            "{}",
            lines[1]
        );
        assert!(lines[1].contains("failures="), "{}", lines[1]);
    }
}
