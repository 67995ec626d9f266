//! What the accept loop does when `accept` fails: errors of one connection (reset or aborted
//! before we took it) are skipped; any other error (out of file descriptors, out of memory, …)
//! pauses accepting with a growing back-off, so the loop never spins; and a log line is written
//! at most once per interval, with the number of failures since the previous one.

use std::io;
use std::time::{Duration, Instant};

use super::throttle::{Throttle, REPORT_INTERVAL};

/// The first pause after a failure that is not one connection's own.
pub const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// The longest pause.
pub const MAX_PAUSE: Duration = Duration::from_secs(1);

/// What to do after a failed accept.
#[derive(Debug, PartialEq, Eq)]
pub struct Failure {
    /// Pause this long before accepting again.
    pub pause: Option<Duration>,
    /// The process is out of descriptors or memory: free a place if one can go.
    pub exhausted: bool,
    /// Write a line now, reporting this many failures.
    pub report: Option<u64>,
}

/// The accept loop's record of failures.
#[derive(Debug)]
pub struct AcceptErrors {
    log: Throttle,
    pause: Option<Duration>,
}

impl Default for AcceptErrors {
    fn default() -> Self {
        AcceptErrors {
            log: Throttle::new(REPORT_INTERVAL),
            pause: None,
        }
    }
}

impl AcceptErrors {
    /// `accept` failed with `err` at `now`.
    pub fn failed(&mut self, err: &io::Error, now: Instant) -> Failure {
        let report = self.log.hit(now);
        if one_connections_error(err) {
            return Failure {
                pause: None,
                exhausted: false,
                report,
            };
        }
        let pause = match self.pause {
            None => FIRST_PAUSE,
            Some(p) => (p * 2).min(MAX_PAUSE),
        };
        self.pause = Some(pause);
        Failure {
            pause: Some(pause),
            exhausted: out_of_resources(err),
            report,
        }
    }

    /// `accept` succeeded: the back-off starts over; `Some(n)` when the failures counted since
    /// the last line are due to be reported.
    pub fn succeeded(&mut self, now: Instant) -> Option<u64> {
        self.pause = None;
        self.log.flush(now)
    }
}

fn one_connections_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

#[cfg(unix)]
fn out_of_resources(err: &io::Error) -> bool {
    use rustix::io::Errno;
    let Some(code) = err.raw_os_error() else {
        return false;
    };
    [Errno::MFILE, Errno::NFILE, Errno::NOBUFS, Errno::NOMEM]
        .iter()
        .any(|e| e.raw_os_error() == code)
}

#[cfg(not(unix))]
fn out_of_resources(_err: &io::Error) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emfile() -> io::Error {
        io::Error::from_raw_os_error(rustix::io::Errno::MFILE.raw_os_error())
    }

    #[test]
    fn accept_errors_back_off_and_are_logged_once_per_interval_with_a_count() {
        let start = Instant::now();
        let mut errors = AcceptErrors::default();
        let first = errors.failed(&emfile(), start);
        assert_eq!(
            first,
            Failure {
                pause: Some(FIRST_PAUSE),
                exhausted: true,
                report: Some(1)
            }
        );
        // A million failures within the interval: no line, a pause that grows to the maximum.
        let mut now = start;
        let mut lines = 0;
        for _ in 0..1_000_000 {
            now += Duration::from_nanos(5_000);
            let f = errors.failed(&emfile(), now);
            lines += f.report.is_some() as u32;
            assert!(f.pause.is_some_and(|p| p <= MAX_PAUSE));
        }
        assert_eq!(
            lines, 0,
            "5 s of failures after the first line: no more lines"
        );
        assert_eq!(errors.pause, Some(MAX_PAUSE));
        // The next failure after the interval reports them all at once.
        let later = start + REPORT_INTERVAL + Duration::from_millis(1);
        assert_eq!(errors.failed(&emfile(), later).report, Some(1_000_001));
        // A success resets the back-off.
        assert_eq!(errors.succeeded(later), None);
        assert_eq!(errors.failed(&emfile(), later).pause, Some(FIRST_PAUSE));
        // One connection's own error costs no pause.
        let reset = io::Error::from(io::ErrorKind::ConnectionAborted);
        let f = errors.failed(&reset, later);
        assert_eq!((f.pause, f.exhausted), (None, false));
    }
}
