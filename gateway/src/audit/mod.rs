//! The audit log writer: every decision becomes a chained record that is committed durably
//! before the caller may answer. Concurrent appends share one commit (group commit): while one
//! transaction is being synced, newly arriving records queue and go together in the next.

pub mod record;

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::store::Store;
use record::{AuditEntry, AuditRecord, GENESIS};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuditError {
    /// The record could not be made durable; the caller must fail closed.
    #[error("the audit log cannot be written")]
    Unavailable,
}

struct Pending {
    entry: AuditEntry,
    done: oneshot::Sender<Result<i64, AuditError>>,
}

/// Handle to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditLog")
    }
}

/// Group-commit settings.
#[derive(Debug, Clone, Copy)]
pub struct GroupCommit {
    pub max_records: usize,
    /// Extra time to wait for more records once one has arrived (0: only what is queued).
    pub max_wait: Duration,
}

impl AuditLog {
    /// Load the chain head and start the writer. The returned handle finishes once every clone of
    /// the `AuditLog` is dropped and all queued records are written.
    pub async fn start(
        store: Store,
        settings: GroupCommit,
    ) -> Result<(AuditLog, JoinHandle<()>), crate::store::StoreError> {
        let head = store.audit_head().await?.unwrap_or((0, GENESIS));
        let (tx, rx) = mpsc::channel(settings.max_records.max(1) * 16);
        let task = tokio::spawn(writer(store, rx, head, settings));
        Ok((AuditLog { tx }, task))
    }

    /// Append an entry and wait until it is durable. Returns its sequence number.
    pub async fn append(&self, entry: AuditEntry) -> Result<i64, AuditError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Pending { entry, done })
            .await
            .map_err(|_| AuditError::Unavailable)?;
        wait.await.map_err(|_| AuditError::Unavailable)?
    }
}

async fn writer(
    store: Store,
    mut rx: mpsc::Receiver<Pending>,
    mut head: (i64, policy::Sha256Hash),
    settings: GroupCommit,
) {
    let max = settings.max_records.max(1);
    let mut batch: Vec<Pending> = Vec::with_capacity(max);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        if !settings.max_wait.is_zero() {
            let deadline = tokio::time::Instant::now() + settings.max_wait;
            while batch.len() < max {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(p)) => batch.push(p),
                    _ => break,
                }
            }
        }
        while batch.len() < max {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }

        let mut records = Vec::with_capacity(batch.len());
        let (mut seq, mut prev) = head;
        for p in &batch {
            seq += 1;
            let r = AuditRecord::chain(seq, p.entry.clone(), prev);
            prev = r.hash;
            records.push(r);
        }
        match store.append_audit(&records).await {
            Ok(()) => {
                head = (seq, prev);
                for (p, r) in batch.drain(..).zip(&records) {
                    let _ = p.done.send(Ok(r.seq));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, records = records.len(), "audit append failed; refusing the requests in this commit");
                for p in batch.drain(..) {
                    let _ = p.done.send(Err(AuditError::Unavailable));
                }
                // The transaction rolled back; re-read the head in case another writer moved it.
                if let Ok(Some(h)) = store.audit_head().await {
                    head = h;
                }
            }
        }
    }
}
