//! What one connection is doing, for the caps and the timeouts: in its TLS handshake, waiting for
//! a request, reading a request's head, or serving requests; and when it last made progress.
//! Lock-free: the connection's reads and requests update it, its watchdog and the caps read it.
//! Knows times and counts only, never what was read.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

static EPOCH: OnceLock<Instant> = OnceLock::new();

fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds on the connections' clock; never 0 (0 means "not set" in [`Activity`]).
pub fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64 + 1
}

/// The instant of a time on the connections' clock.
pub fn instant_of(ms: u64) -> Instant {
    epoch() + Duration::from_millis(ms.saturating_sub(1))
}

/// The timeouts of the phases of a connection (`[connections]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub handshake: Duration,
    /// From the first byte of an HTTP/1.1 request head to its end.
    pub header_read_ms: u64,
    /// With no request in flight, until a new request begins.
    pub idle_ms: u64,
}

/// Where a connection stands, in the order in which unidentified connections are closed to make
/// room: those waiting for a request first (they cannot be an organisation's), then those still
/// in the handshake (they might be), then those serving a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Waiting,
    Handshake,
    Busy,
}

/// Why the watchdog closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// An HTTP/1.1 request head began but did not end within the header-read timeout.
    Header,
    /// No request began within the idle timeout.
    Idle,
}

/// The shared record of one connection's progress.
#[derive(Debug)]
pub struct Activity {
    handshaking: AtomicBool,
    in_flight: AtomicU32,
    /// Accept, end of the handshake, start or end of a request.
    last_progress: AtomicU64,
    /// The first read after the last progress while no request was in flight (0: none).
    reading_since: AtomicU64,
    changed: Notify,
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

impl Activity {
    /// A connection just accepted: in its handshake.
    pub fn new() -> Self {
        Activity {
            handshaking: AtomicBool::new(true),
            in_flight: AtomicU32::new(0),
            last_progress: AtomicU64::new(now_ms()),
            reading_since: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    /// The TLS handshake is done: waiting for the first request.
    pub fn handshake_done(&self) {
        self.handshaking.store(false, Ordering::Relaxed);
        self.progress();
    }

    /// A request head is complete and the request is being served until the guard drops (at the
    /// end of its response body).
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.progress();
        InFlight(self.clone())
    }

    /// Bytes arrived. The first bytes after progress, with no request in flight, start the
    /// header-read clock.
    pub fn note_read(&self) {
        if self.reading_since.load(Ordering::Relaxed) == 0
            && self.in_flight.load(Ordering::Acquire) == 0
            && self
                .reading_since
                .compare_exchange(0, now_ms(), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.changed.notify_one();
        }
    }

    /// The phase and the time of the last progress: the order of eviction.
    pub fn eviction_rank(&self) -> (Phase, u64) {
        let phase = if self.handshaking.load(Ordering::Relaxed) {
            Phase::Handshake
        } else if self.in_flight.load(Ordering::Acquire) > 0 {
            Phase::Busy
        } else {
            Phase::Waiting
        };
        (phase, self.last_progress.load(Ordering::Relaxed))
    }

    /// When the watchdog must close the connection unless it makes progress first, and why.
    pub fn next_expiry(&self, timeouts: &Timeouts, http2: bool) -> Option<(u64, Expiry)> {
        expiry(
            self.in_flight.load(Ordering::Acquire),
            self.last_progress.load(Ordering::Relaxed),
            self.reading_since.load(Ordering::Relaxed),
            timeouts,
            http2,
        )
    }

    /// Wait until something that may move the expiry happened (reading began, a request ended).
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    fn progress(&self) {
        self.last_progress.store(now_ms(), Ordering::Relaxed);
        self.reading_since.store(0, Ordering::Relaxed);
    }
}

/// A request being served; its drop is progress.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.progress();
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.changed.notify_one();
        }
    }
}

/// The rule: nothing expires while a request is in flight (the request timeout governs it);
/// an HTTP/1.1 head that began must end within the header-read timeout; otherwise a new request
/// must begin within the idle timeout. HTTP/2 multiplexes control frames with requests, so only
/// the idle rule applies to it.
fn expiry(
    in_flight: u32,
    last_progress: u64,
    reading_since: u64,
    t: &Timeouts,
    http2: bool,
) -> Option<(u64, Expiry)> {
    if in_flight > 0 {
        return None;
    }
    if !http2 && reading_since != 0 {
        return Some((reading_since + t.header_read_ms, Expiry::Header));
    }
    Some((last_progress + t.idle_ms, Expiry::Idle))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        handshake: Duration::from_secs(5),
        header_read_ms: 10_000,
        idle_ms: 60_000,
    };

    #[test]
    fn an_idle_wait_and_a_slow_head_have_their_own_limits() {
        // Waiting with nothing read: the idle limit from the last progress.
        assert_eq!(expiry(0, 1_000, 0, &T, false), Some((61_000, Expiry::Idle)));
        // A head began at 30 s: it must end by 40 s, whatever the idle limit says.
        assert_eq!(
            expiry(0, 1_000, 30_000, &T, false),
            Some((40_000, Expiry::Header))
        );
        // HTTP/2: control frames are not a head; only the idle rule.
        assert_eq!(
            expiry(0, 1_000, 30_000, &T, true),
            Some((61_000, Expiry::Idle))
        );
        // A request in flight: the request timeout governs, not these.
        assert_eq!(expiry(1, 1_000, 30_000, &T, false), None);
    }

    #[test]
    fn reads_start_the_header_clock_once_and_requests_reset_it() {
        let a = Arc::new(Activity::new());
        a.handshake_done();
        assert_eq!(a.eviction_rank().0, Phase::Waiting);
        assert!(matches!(a.next_expiry(&T, false), Some((_, Expiry::Idle))));
        a.note_read();
        let first = a.reading_since.load(Ordering::Relaxed);
        assert_ne!(first, 0);
        a.note_read();
        assert_eq!(a.reading_since.load(Ordering::Relaxed), first);
        assert!(matches!(
            a.next_expiry(&T, false),
            Some((_, Expiry::Header))
        ));
        let request = a.request_started();
        assert_eq!(a.eviction_rank().0, Phase::Busy);
        assert_eq!(a.next_expiry(&T, false), None);
        a.note_read(); // the request's body: not a new head
        assert_eq!(a.reading_since.load(Ordering::Relaxed), 0);
        drop(request);
        assert!(matches!(a.next_expiry(&T, false), Some((_, Expiry::Idle))));
    }

    #[test]
    fn connections_waiting_for_a_request_go_before_handshakes_and_busy_ones() {
        assert!(Phase::Waiting < Phase::Handshake);
        assert!(Phase::Handshake < Phase::Busy);
    }
}
