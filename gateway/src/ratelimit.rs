//! Per-organisation rate limits: a token bucket per calling OIN, checked before any work is done.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use policy::Oin;

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets by organisation: `rate` requests per second sustained, `burst` at once.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<Oin, Bucket>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RateLimiter({}/s, burst {})", self.rate, self.burst)
    }
}

impl RateLimiter {
    /// `rate` of 0 disables limiting.
    pub fn new(rate: f64, burst: f64) -> Self {
        RateLimiter {
            rate,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one token for `oin` at `now`; false when the organisation is over its limit.
    pub fn allow_at(&self, oin: &Oin, now: Instant) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            return false;
        };
        let bucket = buckets.entry(oin.clone()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub fn allow(&self, oin: &Oin) -> bool {
        self.allow_at(oin, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refuses_then_refills_per_organisation() {
        let limiter = RateLimiter::new(10.0, 3.0);
        let a: Oin = "00000001003214345000".parse().unwrap();
        let b: Oin = "00000001823288444000".parse().unwrap();
        let t0 = Instant::now();
        assert!(limiter.allow_at(&a, t0));
        assert!(limiter.allow_at(&a, t0));
        assert!(limiter.allow_at(&a, t0));
        assert!(!limiter.allow_at(&a, t0), "burst exhausted");
        assert!(
            limiter.allow_at(&b, t0),
            "another organisation has its own bucket"
        );
        assert!(
            limiter.allow_at(&a, t0 + Duration::from_millis(100)),
            "refilled one token"
        );
        assert!(!limiter.allow_at(&a, t0 + Duration::from_millis(100)));
    }

    #[test]
    fn zero_rate_disables_limiting() {
        let limiter = RateLimiter::new(0.0, 1.0);
        let a: Oin = "00000001003214345000".parse().unwrap();
        for _ in 0..1000 {
            assert!(limiter.allow(&a));
        }
    }
}
