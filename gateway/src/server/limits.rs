//! The connection caps: how many connections are open, of which kind, and which unidentified
//! connection is closed to make room when a new one arrives and the budget is full. A connection
//! is unidentified from its accept until its handshake shows a configured organisation's
//! certificate; identified connections are never closed to make room, and an unidentified one only
//! once it has gone [`GRACE`] without progress (so a flood of new connections cannot cut every
//! handshake short, an organisation's included). Knows nothing of TLS or HTTP; holds its lock only
//! to count.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::activity::{instant_of, now_ms, Activity};
use super::throttle::{Throttle, REPORT_INTERVAL};
use crate::metrics::Metrics;

/// The caps in force (after the file-descriptor limit is taken into account).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub max_open: usize,
    pub max_unidentified: usize,
}

/// How long an unidentified connection may go without progress (accept, end of the handshake,
/// start or end of a request) before it can be closed to make room: longer than a handshake
/// takes over a slow network, shorter than a slow-loris client waits.
pub const GRACE: Duration = Duration::from_millis(250);

/// The open connections of one listener.
pub struct Limits {
    caps: Caps,
    grace_ms: u64,
    inner: Mutex<Inner>,
    /// Signalled when a connection closes (the accept loop may wait for room).
    room: Notify,
    metrics: Arc<Metrics>,
}

struct Inner {
    identified: usize,
    unidentified: HashMap<u64, Arc<Slot>>,
    next_id: u64,
    evictions: Throttle,
}

/// One open connection as the caps see it.
#[derive(Debug, Default)]
struct Slot {
    activity: Arc<Activity>,
    evict: Notify,
}

impl Limits {
    pub fn new(caps: Caps, grace: Duration, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Limits {
            caps,
            grace_ms: grace.as_millis() as u64,
            inner: Mutex::new(Inner {
                identified: 0,
                unidentified: HashMap::new(),
                next_id: 0,
                evictions: Throttle::new(REPORT_INTERVAL),
            }),
            room: Notify::new(),
            metrics,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait until a new connection can be admitted: below both caps, or with an unidentified
    /// connection that may be closed to make room. Meanwhile new connections wait in the
    /// kernel's backlog: when organisations hold every place, or when every unidentified
    /// connection made progress within the grace period (a flood of new connections).
    pub async fn room(&self) {
        loop {
            let wake = {
                let inner = self.lock();
                if !self.full(&inner) {
                    return;
                }
                let now = now_ms();
                if self.slowest(&inner, now).is_some() {
                    return;
                }
                // When the first unidentified connection's grace runs out.
                inner
                    .unidentified
                    .values()
                    .map(|s| s.activity.eviction_rank().1 + self.grace_ms)
                    .min()
            };
            match wake {
                Some(at) => {
                    let at = tokio::time::Instant::from_std(instant_of(at));
                    tokio::select! {
                        _ = self.room.notified() => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => self.room.notified().await,
            }
        }
    }

    fn full(&self, inner: &Inner) -> bool {
        inner.unidentified.len() >= self.caps.max_unidentified
            || inner.identified + inner.unidentified.len() >= self.caps.max_open
    }

    /// The unidentified connection to close first: among those that went at least the grace
    /// period without progress, the ones waiting for a request, then those in the handshake, then
    /// those serving a request; in each, the one longest without progress.
    fn slowest(&self, inner: &Inner, now: u64) -> Option<u64> {
        inner
            .unidentified
            .iter()
            .map(|(id, slot)| (slot.activity.eviction_rank(), *id))
            .filter(|((_, progress), _)| now.saturating_sub(*progress) >= self.grace_ms)
            .min()
            .map(|(_, id)| id)
    }

    /// Admit a just-accepted connection (unidentified until its handshake says otherwise). When
    /// the unidentified budget or the total cap is full, the slowest unidentified connection is
    /// told to close first (call after [`Limits::room`], which waits until there is one).
    pub fn admit(self: &Arc<Self>) -> ConnGuard {
        let slot = Arc::new(Slot::default());
        let (id, report) = {
            let mut inner = self.lock();
            let mut report = None;
            // Normally one goes; more when an earlier admission found none that could go yet.
            while self.full(&inner) && self.evict_slowest(&mut inner, &mut report) {}
            let id = inner.next_id;
            inner.next_id += 1;
            inner.unidentified.insert(id, slot.clone());
            (id, report)
        };
        self.metrics.connection_opened();
        self.report_evictions(report);
        ConnGuard {
            limits: self.clone(),
            id,
            slot,
            identified: false,
            cause: "aborted",
        }
    }

    /// Close the slowest unidentified connection, if there is one (to free a file descriptor
    /// when the process ran out of them).
    pub fn evict_one(&self) {
        let mut report = None;
        self.evict_slowest(&mut self.lock(), &mut report);
        self.report_evictions(report);
    }

    /// Tell the slowest unidentified connection to close (counting it towards the next log
    /// line, `report`); `false` when none may go yet.
    fn evict_slowest(&self, inner: &mut Inner, report: &mut Option<u64>) -> bool {
        let Some(slot) = self
            .slowest(inner, now_ms())
            .and_then(|victim| inner.unidentified.remove(&victim))
        else {
            return false;
        };
        slot.evict.notify_one();
        self.metrics.connection_refused("unidentified");
        if let Some(n) = inner.evictions.hit(Instant::now()) {
            *report = Some(report.unwrap_or(0) + n);
        }
        true
    }

    fn report_evictions(&self, count: Option<u64>) {
        if let Some(n) = count {
            tracing::warn!(
                closed = n,
                budget = self.caps.max_unidentified,
                "unidentified connections at their budget (connections.max_unidentified): \
                 closed {n} of the slowest to make room since the last report"
            );
        }
    }

    fn close(&self, id: u64, identified: bool, cause: &'static str) {
        {
            let mut inner = self.lock();
            if identified {
                inner.identified -= 1;
            } else {
                inner.unidentified.remove(&id);
            }
        }
        let kind = if identified {
            "identified"
        } else {
            "unidentified"
        };
        self.metrics.connection_closed(kind, cause);
        self.room.notify_one();
    }
}

/// An admitted connection; closing it (or dropping it) gives its place back.
pub struct ConnGuard {
    limits: Arc<Limits>,
    id: u64,
    slot: Arc<Slot>,
    identified: bool,
    cause: &'static str,
}

impl ConnGuard {
    pub fn activity(&self) -> &Arc<Activity> {
        &self.slot.activity
    }

    /// Resolves when this connection was chosen to make room: close it at once.
    pub async fn evicted(&self) {
        self.slot.evict.notified().await
    }

    /// The handshake showed a configured organisation: the connection leaves the unidentified
    /// budget. `false` when it was already chosen to make room.
    pub fn identify(&mut self) -> bool {
        {
            let mut inner = self.limits.lock();
            if inner.unidentified.remove(&self.id).is_none() {
                return false;
            }
            inner.identified += 1;
        }
        self.identified = true;
        self.limits.metrics.connection_identified();
        true
    }

    /// The connection ended for `cause` (a `cause` label of the connection metrics).
    pub fn close(mut self, cause: &'static str) {
        self.cause = cause;
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.limits.close(self.id, self.identified, self.cause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    fn limits(max_open: usize, max_unidentified: usize) -> (Arc<Limits>, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new());
        let caps = Caps {
            max_open,
            max_unidentified,
        };
        (Limits::new(caps, Duration::ZERO, metrics.clone()), metrics)
    }

    fn is_evicted(guard: &ConnGuard) -> bool {
        let evicted = guard.evicted();
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut evicted = std::pin::pin!(evicted);
        evicted.as_mut().poll(&mut cx).is_ready()
    }

    #[test]
    fn eviction_takes_the_slowest_unidentified_connection_and_never_an_identified_one() {
        let (limits, metrics) = limits(4, 3);
        // An organisation's connection, identified after its handshake.
        let mut org = limits.admit();
        org.activity().handshake_done();
        assert!(org.identify());
        // Three unidentified: one still in its handshake, two waiting for a request (the older
        // of which is the slowest), and one serving a request.
        let handshaking = limits.admit();
        let stalled = limits.admit();
        stalled.activity().handshake_done();
        std::thread::sleep(std::time::Duration::from_millis(3));
        let fresher = limits.admit();
        fresher.activity().handshake_done();
        // Budget (3) full: the next connection makes the longest-stalled waiting one go.
        let newcomer = limits.admit();
        assert!(
            is_evicted(&stalled),
            "the slowest waiting connection goes first"
        );
        assert!(!is_evicted(&fresher) && !is_evicted(&handshaking) && !is_evicted(&org));
        stalled.close("evicted");
        // Next: the remaining waiting one, before any handshake.
        let _busy = fresher.activity().request_started();
        let another = limits.admit();
        assert!(
            is_evicted(&handshaking),
            "then the oldest handshake, before the newer one"
        );
        assert!(!is_evicted(&newcomer));
        assert!(!is_evicted(&fresher), "serving a request: last in line");
        assert!(
            !is_evicted(&org),
            "identified connections are never evicted"
        );
        drop(another);
        let text = metrics.render(&[]);
        assert!(
            text.contains("poortwachter_connections_refused_total{kind=\"unidentified\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("poortwachter_connections_open{kind=\"identified\"} 1\n"));
    }

    #[tokio::test]
    async fn the_accept_loop_waits_only_when_organisations_hold_every_connection() {
        let (limits, _) = limits(2, 1);
        let mut a = limits.admit();
        assert!(a.identify());
        let b = limits.admit();
        // Full, but `b` is unidentified and can make room: no waiting.
        tokio::time::timeout(std::time::Duration::from_secs(1), limits.room())
            .await
            .expect("room while an unidentified connection can go");
        let c = limits.admit();
        assert!(is_evicted(&b));
        drop(b);
        let mut c = c;
        assert!(c.identify());
        // Both places held by organisations: wait until one closes.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), limits.room());
        assert!(
            waiting.await.is_err(),
            "no room while organisations hold both"
        );
        a.close("closed");
        tokio::time::timeout(std::time::Duration::from_secs(1), limits.room())
            .await
            .expect("room once one closed");
        drop(c);
    }

    #[tokio::test]
    async fn a_connection_younger_than_the_grace_period_is_not_cut_short() {
        let metrics = Arc::new(Metrics::new());
        let caps = Caps {
            max_open: 10,
            max_unidentified: 1,
        };
        let grace = Duration::from_millis(300);
        let limits = Limits::new(caps, grace, metrics);
        let handshaking = limits.admit();
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(2), limits.room())
            .await
            .expect("room once the grace period is over");
        assert!(started.elapsed() >= grace - Duration::from_millis(5));
        let _next = limits.admit();
        assert!(is_evicted(&handshaking));
    }

    #[test]
    fn an_evicted_connection_cannot_become_identified() {
        let (limits, _) = limits(3, 1);
        let mut first = limits.admit();
        let _second = limits.admit();
        assert!(is_evicted(&first));
        assert!(!first.identify(), "its place is gone");
    }
}
