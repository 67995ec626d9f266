//! Log lines about repeated events (failed accepts, connections closed to make room) at most once
//! per interval, each with the number of events since the previous line: a flood of events makes
//! a handful of lines, never one line per event.

use std::time::{Duration, Instant};

/// How often at most a line is written about one kind of repeated event.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// Counts events; says when a line is due and how many events it reports.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    last_report: Option<Instant>,
    pending: u64,
}

impl Throttle {
    pub fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            last_report: None,
            pending: 0,
        }
    }

    /// Count one event at `now`. `Some(n)` when a line is due now, reporting `n` events (this one
    /// included): the first event after a quiet interval is reported at once, the ones after it
    /// together once the interval has passed.
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        self.pending += 1;
        self.due(now)
    }

    /// Events counted but not reported yet, when their line is due at `now`.
    pub fn flush(&mut self, now: Instant) -> Option<u64> {
        if self.pending == 0 {
            return None;
        }
        self.due(now)
    }

    fn due(&mut self, now: Instant) -> Option<u64> {
        if self
            .last_report
            .is_some_and(|t| now.saturating_duration_since(t) < self.interval)
        {
            return None;
        }
        self.last_report = Some(now);
        Some(std::mem::take(&mut self.pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_events_makes_one_line_per_interval_with_a_count() {
        let start = Instant::now();
        let mut t = Throttle::new(Duration::from_secs(10));
        let mut lines = Vec::new();
        // 100,000 events evenly over 25 seconds.
        for i in 0..100_000u64 {
            let now = start + Duration::from_micros(i * 250);
            if let Some(n) = t.hit(now) {
                lines.push(n);
            }
        }
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0], 1, "the first event is reported at once");
        assert!(lines[1] > 30_000, "{lines:?}");
        let end = start + Duration::from_secs(40);
        let rest = t.flush(end).expect("what was counted is reported");
        assert_eq!(lines.iter().sum::<u64>() + rest, 100_000);
        assert_eq!(t.flush(end), None);
    }
}
