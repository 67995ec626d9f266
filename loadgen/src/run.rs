//! Applying the load: closed loop (each worker sends its next request when the previous answer is
//! read) or open loop (a pacer thread issues tickets at fixed intervals; latency counts from each
//! ticket's due time, so queueing behind a slow server is measured, not omitted).

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use tokio::sync::{mpsc, Mutex};

use crate::options::{Engine, Options};
use crate::report::{Report, Settings, Tally};
use crate::target::{Target, TargetError};

type Tickets = Arc<Mutex<mpsc::UnboundedReceiver<Instant>>>;

/// When the run starts, stops recording warm-up, and ends.
#[derive(Debug, Clone, Copy)]
struct Clock {
    warmup_end: Instant,
    end: Instant,
}

/// Run the load described by `options` on the current Tokio runtime and report.
pub async fn run(options: &Options) -> Result<Report, TargetError> {
    let target = Arc::new(Target::from_options(options)?);
    let connections = options.connections().max(1);

    // Connect before the clock starts, so the warm-up is not spent on handshakes.
    let mut tallies: Vec<Tally> = (0..connections).map(|_| Tally::default()).collect();
    let mut conns: Vec<Option<SendRequest<Full<Bytes>>>> = Vec::with_capacity(connections);
    for tally in tallies.iter_mut() {
        if target.pooled() {
            conns.push(None);
        } else {
            tally.connections += 1;
            conns.push(target.connect().await.ok());
        }
    }

    let start = Instant::now();
    let warmup_end = start + options.warmup;
    let clock = Clock {
        warmup_end,
        end: warmup_end + options.duration,
    };
    let (tickets, pacer) = match options.rate {
        Some(rate) => {
            let (tx, rx) = mpsc::unbounded_channel();
            let pacer = std::thread::Builder::new()
                .name("loadgen-pacer".into())
                .spawn(move || pace(tx, start, clock.end, rate))
                .ok();
            (Some(Arc::new(Mutex::new(rx))), pacer)
        }
        None => (None, None),
    };

    let mut workers = tokio::task::JoinSet::new();
    for (tally, conn) in tallies.into_iter().zip(conns) {
        workers.spawn(worker(target.clone(), clock, tickets.clone(), conn, tally));
    }
    drop(tickets);
    let mut total = Tally::default();
    while let Some(done) = workers.join_next().await {
        if let Ok(tally) = done {
            total.merge(tally);
        }
    }
    let elapsed = start.elapsed();
    let unsent = match pacer {
        Some(handle) => {
            let issued = tokio::task::spawn_blocking(move || handle.join().unwrap_or(0))
                .await
                .unwrap_or(0);
            Some(issued.saturating_sub(total.started))
        }
        None => options.rate.map(|_| 0),
    };

    let settings = Settings {
        target: target.describe(),
        engine: match options.engine {
            Engine::Direct => "direct",
            Engine::Pool => "pool",
        }
        .to_owned(),
        connections,
        rate: options.rate,
        threads: options.threads,
        warmup: options.warmup,
        duration: options.duration,
    };
    Ok(Report::new(settings, &total, elapsed, unsent))
}

/// Issue one ticket (its due time) every `1/rate` seconds from `start` until `end`; returns how
/// many were issued. A plain thread with `sleep` keeps to the schedule far more closely than the
/// runtime's millisecond timer would.
fn pace(tx: mpsc::UnboundedSender<Instant>, start: Instant, end: Instant, rate: f64) -> u64 {
    let rate = if rate.is_finite() && rate > 0.0 {
        rate
    } else {
        return 0;
    };
    let mut issued: u64 = 0;
    loop {
        let due = start + Duration::from_secs_f64(issued as f64 / rate);
        if due >= end {
            return issued;
        }
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        if tx.send(due).is_err() {
            return issued;
        }
        issued += 1;
    }
}

async fn worker(
    target: Arc<Target>,
    clock: Clock,
    tickets: Option<Tickets>,
    mut conn: Option<SendRequest<Full<Bytes>>>,
    mut tally: Tally,
) -> Tally {
    let mut backoff = false;
    loop {
        if backoff {
            // The server refused a connection last time: do not spin on it (closed loop only;
            // in open loop a wait would count in the latency of the requests that were due).
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let due = match &tickets {
            Some(tickets) => {
                let next = tickets.lock().await.recv().await;
                match next {
                    Some(due) => due,
                    None => break,
                }
            }
            None => Instant::now(),
        };
        let sent = Instant::now();
        if sent >= clock.end {
            break;
        }
        tally.started += 1;
        let outcome = target.send(&mut conn, &mut tally.connections).await;
        let answered = Instant::now();
        backoff = tickets.is_none() && outcome.is_err() && conn.is_none();
        if due >= clock.warmup_end {
            tally.record(&outcome, answered - due, answered - sent);
        } else {
            tally.warmup_requests += 1;
        }
    }
    tally
}
