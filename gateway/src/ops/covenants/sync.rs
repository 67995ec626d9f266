//! Keeps this instance's covenant snapshot in step with the database when covenants change
//! elsewhere (another gateway instance on the same PostgreSQL database, an operator's tool): every
//! `covenants_admin.refresh_interval_ms` it reads the covenant generation (one row, bumped by
//! trigger on every covenant change) and rebuilds the snapshot only when it moved. Consents need
//! no such step: they are read from the database on every request.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::failure_log::FailureLog;
use crate::ops::periodic::every;
use crate::state::AppState;
use crate::store::StoreError;

/// Check once: rebuild and swap in the snapshot when the database's covenant generation differs
/// from the one the current snapshot was built at. Returns whether it rebuilt.
pub async fn sync_once(state: &AppState) -> Result<bool, StoreError> {
    if state.store.covenant_generation().await? == state.covenant_generation() {
        return Ok(false);
    }
    // Serialised with this instance's own administrative acts, so snapshots are swapped in in
    // order; checked again under the lock, since an act may just have rebuilt.
    let _serial = state.covenant_admin.lock().await;
    if state.store.covenant_generation().await? == state.covenant_generation() {
        return Ok(false);
    }
    super::snapshot::refresh(state).await?;
    Ok(true)
}

/// Start the periodic check (unless the interval is 0); it stops when `shutdown` turns true.
pub fn spawn(state: AppState, shutdown: watch::Receiver<bool>) -> Option<JoinHandle<()>> {
    let every_ms = state.config.covenants_admin.refresh_interval_ms;
    if every_ms == 0 {
        tracing::info!("covenant refresh from the database is off (refresh_interval_ms = 0)");
        return None;
    }
    // Retried every interval; failures are logged when they start, once a minute, when they end.
    let failures =
        std::sync::Arc::new(FailureLog::new("covenant refresh", Duration::from_secs(60)));
    Some(every(
        Duration::from_millis(every_ms),
        shutdown,
        move || {
            let (state, failures) = (state.clone(), failures.clone());
            async move {
                match sync_once(&state).await {
                    Ok(true) => {
                        failures.succeeded();
                        tracing::info!(
                            generation = state.covenant_generation(),
                            "covenants changed in the database; snapshot rebuilt"
                        )
                    }
                    Ok(false) => failures.succeeded(),
                    Err(e) => failures.failed(&e),
                }
            }
        },
    ))
}
