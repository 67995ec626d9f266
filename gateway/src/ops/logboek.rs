//! The Logboek Dataverwerkingen export: in the background, read the durable audit log in order
//! from a persisted cursor, send each record as a log record to the organisation's OTLP/HTTP
//! receiver, and move the cursor only after the receiver acknowledged the batch. A receiver
//! outage loses nothing (the records wait in the audit log) and blocks no request (nothing on the
//! request path waits for the export); while it lasts the exporter backs off. Delivery is
//! at-least-once: a batch acknowledged but not yet recorded as such (a crash in between) is sent
//! again. Logs counts and errors only, never a record's content.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

use crate::config::LogboekSection;
use crate::logboek::encode::{self, Encoding};
use crate::logboek::receiver::{Receiver, ReceiverConfigError, SendError};
use crate::ops::periodic::every;
use crate::state::AppState;
use crate::store::StoreError;

/// Batches sent in one round at most, so that a long catch-up still notices a shutdown.
const BATCHES_PER_ROUND: usize = 64;

/// Why a round stopped before the exporter caught up.
#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error("audit log unreadable: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Send(#[from] SendError),
}

/// Start the export when `[logboek]` is configured; `None` when it is not.
pub fn spawn(
    state: AppState,
    shutdown: watch::Receiver<bool>,
) -> Result<Option<JoinHandle<()>>, ReceiverConfigError> {
    let Some(section) = state.config.logboek.clone() else {
        return Ok(None);
    };
    let exporter = Arc::new(Exporter::new(state, &section)?);
    exporter.state.metrics.logboek.running();
    tracing::info!(
        batch_size = section.batch_size,
        "Logboek Dataverwerkingen export running"
    );
    let interval = Duration::from_millis(section.interval_ms);
    Ok(Some(every(interval, shutdown, move || {
        let exporter = exporter.clone();
        async move { exporter.round().await }
    })))
}

/// The export's parts and its back-off state.
pub struct Exporter {
    state: AppState,
    receiver: Receiver,
    encoding: Encoding,
    batch_size: i64,
    interval: Duration,
    max_backoff: Duration,
    backoff: Mutex<Backoff>,
}

/// Failed rounds in a row, and the earliest time of the next attempt.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    not_before: Option<Instant>,
}

impl Exporter {
    pub fn new(state: AppState, section: &LogboekSection) -> Result<Exporter, ReceiverConfigError> {
        Ok(Exporter {
            receiver: Receiver::new(section)?,
            encoding: Encoding {
                gateway_id: state.config.gateway.id.clone(),
                data_subject_id_type: section.data_subject_id_type.clone(),
            },
            batch_size: i64::from(section.batch_size),
            interval: Duration::from_millis(section.interval_ms),
            max_backoff: Duration::from_millis(section.max_backoff_ms),
            backoff: Mutex::new(Backoff::default()),
            state,
        })
    }

    /// One round: unless backing off, send batches until caught up (or [`BATCHES_PER_ROUND`]).
    pub async fn round(&self) {
        let mut backoff = self.backoff.lock().await;
        if backoff.not_before.is_some_and(|t| Instant::now() < t) {
            return;
        }
        match self.catch_up().await {
            Ok(()) => {
                if backoff.failures > 0 {
                    tracing::info!(
                        failed_rounds = backoff.failures,
                        "Logboek Dataverwerkingen receiver acknowledges again; catching up"
                    );
                }
                *backoff = Backoff::default();
            }
            Err(e) => {
                self.state.metrics.logboek.failed();
                backoff.failures = backoff.failures.saturating_add(1);
                let pause = self
                    .interval
                    .saturating_mul(2u32.saturating_pow(backoff.failures.min(16)))
                    .min(self.max_backoff);
                backoff.not_before = Some(Instant::now() + pause);
                tracing::warn!(
                    error = %e,
                    failed_rounds = backoff.failures,
                    retry_in_ms = pause.as_millis() as u64,
                    "Logboek Dataverwerkingen export: batch not delivered; the records wait in the audit log"
                );
            }
        }
    }

    /// Send what the receiver has not acknowledged yet, batch by batch, in audit order.
    async fn catch_up(&self) -> Result<(), RoundError> {
        let store = &self.state.store;
        for _ in 0..BATCHES_PER_ROUND {
            let cursor = store.logboek_cursor().await?;
            self.measure_lag(cursor).await;
            let records = store.audit_records(cursor, self.batch_size).await?;
            let Some(last) = records.last().map(|r| r.seq) else {
                return Ok(());
            };
            self.receiver
                .send(&encode::request(&records, &self.encoding))
                .await?;
            let now = crate::timefmt::audit_time(chrono::Utc::now());
            // Acknowledged: move the cursor. If another instance moved it meanwhile, this batch
            // was (also) sent by it: at-least-once, and the next read starts from its cursor.
            if store.advance_logboek_cursor(cursor, last, &now).await? {
                self.state.metrics.logboek.exported(records.len() as u64);
            }
            if (records.len() as i64) < self.batch_size {
                let cursor = store.logboek_cursor().await?;
                self.measure_lag(cursor).await;
                return Ok(());
            }
        }
        Ok(())
    }

    async fn measure_lag(&self, cursor: i64) {
        if let Ok(head) = self.state.store.audit_head().await {
            let head = head.map_or(0, |(seq, _)| seq);
            self.state.metrics.logboek.lag(head - cursor);
        }
    }
}
