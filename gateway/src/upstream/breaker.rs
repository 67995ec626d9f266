//! A circuit breaker per source: after `threshold` consecutive failures it opens and refuses at
//! once for `open_for`; then one query may try (half-open): success closes it, failure opens it
//! again. Pure state over a caller-given `Instant` (no clock read here), so it is unit-tested
//! without waiting.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The breaker's state as exported on `/metrics` (0 closed, 1 open, 2 half-open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

#[derive(Debug)]
enum Inner {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is in flight; others are refused until it reports.
    HalfOpen,
}

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            open_for,
            inner: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    /// Whether a query may go to the source now.
    pub fn admit(&self, now: Instant) -> bool {
        let Ok(mut inner) = self.inner.lock() else {
            return false;
        };
        match *inner {
            Inner::Closed { .. } => true,
            Inner::Open { until } if now >= until => {
                *inner = Inner::HalfOpen;
                true
            }
            Inner::Open { .. } | Inner::HalfOpen => false,
        }
    }

    /// Report the outcome of an admitted query.
    pub fn record(&self, ok: bool, now: Instant) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        *inner = match (&*inner, ok) {
            (_, true) => Inner::Closed { failures: 0 },
            (Inner::Closed { failures }, false) if failures + 1 < self.threshold => Inner::Closed {
                failures: failures + 1,
            },
            (_, false) => Inner::Open {
                until: now + self.open_for,
            },
        };
    }

    pub fn state(&self, now: Instant) -> BreakerState {
        match self.inner.lock().as_deref() {
            Ok(Inner::Closed { .. }) => BreakerState::Closed,
            Ok(Inner::Open { until }) if now >= *until => BreakerState::HalfOpen,
            Ok(Inner::Open { .. }) | Err(_) => BreakerState::Open,
            Ok(Inner::HalfOpen) => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_half_opens_after_the_pause() {
        let t0 = Instant::now();
        let b = Breaker::new(3, Duration::from_secs(10));
        for _ in 0..2 {
            assert!(b.admit(t0));
            b.record(false, t0);
        }
        assert_eq!(b.state(t0), BreakerState::Closed);
        b.record(true, t0);
        for _ in 0..3 {
            assert!(b.admit(t0));
            b.record(false, t0);
        }
        assert_eq!(b.state(t0), BreakerState::Open);
        assert!(!b.admit(t0 + Duration::from_secs(9)));
        let later = t0 + Duration::from_secs(10);
        assert!(b.admit(later), "one probe after the pause");
        assert!(!b.admit(later), "only one probe at a time");
        b.record(false, later);
        assert_eq!(b.state(later), BreakerState::Open);
        let again = later + Duration::from_secs(10);
        assert!(b.admit(again));
        b.record(true, again);
        assert_eq!(b.state(again), BreakerState::Closed);
        assert!(b.admit(again));
    }
}
