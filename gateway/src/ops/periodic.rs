//! The gateway's background jobs (covenant refresh, retention sweeps) share one loop: run the job
//! every interval, the first time at once, a late tick delayed rather than bunched, until the
//! shutdown signal turns true. Owns timing only; the jobs log their own outcome.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Spawn `job` to run every `interval` until `shutdown` turns `true`.
pub fn every<F, Fut>(
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
    mut job: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
            job().await;
        }
    })
}
