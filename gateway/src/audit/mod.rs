//! The audit log writer: every decision becomes a chained record that is committed durably
//! before the caller may answer. Concurrent appends share one commit (group commit): while one
//! transaction is being synced, newly arriving records queue and go together in the next.
//!
//! A failed commit refuses the requests in it and nothing else: the writer carries on, reports
//! the log not writable (readiness) and probes the database until it takes writes again, and
//! logs the failure when it starts, once per interval while it lasts, and when it ends.

pub mod canonical;
pub mod checkpoint;
pub mod entry;
pub mod export;
pub mod record;
pub mod report;
pub mod review;
pub mod usage;
pub mod verify;
mod verify_diagnosis;
pub mod verify_report;
pub mod verify_sources;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::failure_log::FailureLog;
use crate::metrics::Metrics;
use crate::store::{CheckpointSign, Store, StoreError};
use checkpoint::{CheckpointKeys, CheckpointPublicKey, CheckpointSigner};
use record::{AuditEntry, GENESIS};
use verify::{Head, VerifyOptions, VerifyReport};

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
    shared: Arc<Shared>,
    /// Where each append's wait (queue and commit) is recorded.
    metrics: Arc<Metrics>,
}

struct Shared {
    /// The head of the chain as last committed by this writer.
    head: Mutex<(i64, policy::Sha256Hash)>,
    public_key: CheckpointPublicKey,
    /// The keys checkpoints in this log may be signed with (current and earlier).
    keys: CheckpointKeys,
    /// One verification at a time: it reads the whole log.
    verifying: Semaphore,
    /// Whether the last write of the writer (a commit, a checkpoint or a probe) succeeded.
    writable: AtomicBool,
}

/// While the last write failed, the writer probes the database this often when it has nothing
/// else to write.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// While commits keep failing, at most one log line per this interval (with the count).
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(10);

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

/// When the writer signs a checkpoint over the chain head: in the commit that brings the records
/// since the last checkpoint to `every_records`, or `every` after the first record that no
/// checkpoint covers yet, and when the writer stops.
#[derive(Debug, Clone)]
pub struct Checkpointing {
    pub signer: Arc<CheckpointSigner>,
    /// Earlier checkpoint keys (after a rotation), still trusted for verification.
    pub previous_keys: Vec<CheckpointPublicKey>,
    pub every_records: u64,
    pub every: Duration,
}

/// Why the checkpoint settings cannot be used. Messages name the key.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointConfigError {
    #[error("audit.checkpoint_key is required: the Ed25519 private key (PKCS#8 PEM) that signs audit checkpoints")]
    MissingKey,
    #[error("audit.checkpoint_key: {0}")]
    Key(checkpoint::CheckpointError),
    #[error("audit.checkpoint_previous_keys: {0}")]
    PreviousKey(checkpoint::CheckpointError),
}

impl Checkpointing {
    /// Load the keys named in `[audit]`.
    pub fn from_config(
        section: &crate::config::AuditSection,
    ) -> Result<Checkpointing, CheckpointConfigError> {
        let path = section
            .checkpoint_key
            .as_deref()
            .ok_or(CheckpointConfigError::MissingKey)?;
        let signer = CheckpointSigner::load(path).map_err(CheckpointConfigError::Key)?;
        let previous_keys = section
            .checkpoint_previous_keys
            .iter()
            .map(|p| CheckpointPublicKey::load(p))
            .collect::<Result<_, _>>()
            .map_err(CheckpointConfigError::PreviousKey)?;
        Ok(Checkpointing {
            signer: Arc::new(signer),
            previous_keys,
            every_records: section.checkpoint_every_records,
            every: Duration::from_secs(section.checkpoint_every_secs),
        })
    }
}

impl AuditLog {
    /// Load the chain head and start the writer. Refuses to start when the log is behind its
    /// latest checkpoint (it was truncated) or the checkpointed record differs: appending would
    /// bury the evidence. The returned handle finishes once every clone of the `AuditLog` is
    /// dropped, all queued records are written and the last of them is checkpointed.
    pub async fn start(
        store: Store,
        settings: GroupCommit,
        checkpointing: Checkpointing,
        metrics: Arc<Metrics>,
    ) -> Result<(AuditLog, JoinHandle<()>), StoreError> {
        // The checkpoint first, then the head: another instance may be appending (and signing)
        // meanwhile, and a head read after the checkpoint is never behind it unless the log was
        // truncated.
        let latest_checkpoint = store.latest_checkpoint().await?;
        let head = store.audit_head().await?.unwrap_or((0, GENESIS));
        let last_checkpoint = match latest_checkpoint {
            Some(row) => {
                let cp = row.parse().map_err(StoreError::Corrupt)?;
                if cp.seq > head.0 {
                    return Err(StoreError::Corrupt(format!(
                        "the audit log ends at seq {} but a checkpoint covers seq {}: it was \
                         truncated (run `poortwachter audit verify`)",
                        head.0, cp.seq
                    )));
                }
                let stored = store.audit_hash_at(cp.seq).await?;
                if stored.as_deref().and_then(policy::Sha256Hash::parse) != Some(cp.head) {
                    return Err(StoreError::Corrupt(format!(
                        "the audit record at seq {} does not match its checkpoint (run \
                         `poortwachter audit verify`)",
                        cp.seq
                    )));
                }
                cp.seq
            }
            None => 0,
        };
        let public_key = checkpointing.signer.public_key().clone();
        let keys = CheckpointKeys::new(
            std::iter::once(public_key.clone()).chain(checkpointing.previous_keys.iter().cloned()),
        );
        let shared = Arc::new(Shared {
            head: Mutex::new(head),
            public_key,
            keys,
            verifying: Semaphore::new(1),
            writable: AtomicBool::new(true),
        });
        let (tx, rx) = mpsc::channel(settings.max_records.max(1) * 16);
        let on_own_thread = store.appends_block_the_caller();
        let writing = writer(
            store,
            rx,
            settings,
            checkpointing,
            shared.clone(),
            last_checkpoint,
            metrics.clone(),
        );
        let task = if on_own_thread {
            spawn_on_own_thread(writing)?
        } else {
            tokio::spawn(writing)
        };
        Ok((
            AuditLog {
                tx,
                shared,
                metrics,
            },
            task,
        ))
    }

    /// Whether the writer task is still running (readiness).
    pub fn is_alive(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Whether the writer's last write (a commit, a checkpoint or, after a failure, a probe)
    /// succeeded (readiness). False from a failed commit until the database takes writes again.
    pub fn is_writable(&self) -> bool {
        self.shared.writable.load(Ordering::Acquire)
    }

    /// Append an entry and wait until it is durable. Returns its sequence number. The wait (in
    /// the queue, then the commit that carries the entry) is recorded in the metrics, whatever
    /// its outcome.
    pub async fn append(&self, entry: AuditEntry) -> Result<i64, AuditError> {
        let started = std::time::Instant::now();
        let (done, wait) = oneshot::channel();
        let durable = match self.tx.send(Pending { entry, done }).await {
            Ok(()) => wait.await.unwrap_or(Err(AuditError::Unavailable)),
            Err(_) => Err(AuditError::Unavailable),
        };
        self.metrics.audit_wait(started.elapsed().as_secs_f64());
        durable
    }

    /// The head this writer last committed (`None` while the log is empty).
    pub fn head(&self) -> Option<Head> {
        let (seq, hash) = match self.shared.head.lock() {
            Ok(h) => *h,
            Err(poisoned) => *poisoned.into_inner(),
        };
        (seq > 0).then_some(Head { seq, hash })
    }

    /// The public key of the checkpoints this gateway signs.
    pub fn checkpoint_key(&self) -> &CheckpointPublicKey {
        &self.shared.public_key
    }

    /// Every key checkpoints of this log may carry (current first).
    pub fn checkpoint_keys(&self) -> &CheckpointKeys {
        &self.shared.keys
    }

    /// Verify the log in `store` with its checkpoints and, unless `options` names another, this
    /// writer's own head (so that a truncation after the last checkpoint is found too). One
    /// verification runs at a time.
    pub async fn verify(
        &self,
        store: &Store,
        mut options: VerifyOptions,
    ) -> Result<VerifyReport, verify_sources::SourceError> {
        let _permit = self
            .shared
            .verifying
            .acquire()
            .await
            .map_err(|_| verify_sources::SourceError::Task)?;
        if options.expect_head.is_none() {
            options.expect_head = self.head();
        }
        verify_sources::verify_store(store, self.shared.keys.clone(), options, |_| {}).await
    }
}

/// Run the writer on a thread of its own (with a single-threaded runtime for its channel and
/// timer), for a store whose appends block the calling thread until the commit is durable: the
/// Tokio workers that serve requests never wait for an `fsync`, and a batch is committed where it
/// was collected, without another hand-off. The returned task finishes when the thread does.
fn spawn_on_own_thread(
    writing: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<JoinHandle<()>, StoreError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Thread(e.to_string()))?;
    let (finished, on_finish) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("audit-writer".into())
        .spawn(move || {
            runtime.block_on(writing);
            let _ = finished.send(());
        })
        .map_err(|e| StoreError::Thread(e.to_string()))?;
    Ok(tokio::spawn(async move {
        let _ = on_finish.await;
    }))
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

async fn until(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Sign the head now if any record is not yet covered by a checkpoint.
/// The store's signing callback for checkpoints by `signer`, dated when they are signed.
fn signing(signer: &Arc<CheckpointSigner>) -> CheckpointSign {
    let signer = signer.clone();
    Arc::new(move |seq, head| signer.sign(seq, head, now_rfc3339()))
}

async fn checkpoint_now(store: &Store, sign: &CheckpointSign) -> Result<(), StoreError> {
    store.checkpoint_head(sign).await.map(|_| ())
}

async fn writer(
    store: Store,
    mut rx: mpsc::Receiver<Pending>,
    settings: GroupCommit,
    checkpointing: Checkpointing,
    shared: Arc<Shared>,
    last_checkpoint: i64,
    metrics: Arc<Metrics>,
) {
    let max = settings.max_records.max(1);
    let every_records = i64::try_from(checkpointing.every_records.max(1)).unwrap_or(i64::MAX);
    let sign = signing(&checkpointing.signer);
    let set_head = |h: (i64, policy::Sha256Hash)| match shared.head.lock() {
        Ok(mut g) => *g = h,
        Err(poisoned) => *poisoned.into_inner() = h,
    };
    let failures = FailureLog::new("audit commits", FAILURE_LOG_EVERY);
    // After each write: readiness, the log lines, and when to probe (only after a failure).
    let wrote = |result: Result<(), &StoreError>| match result {
        Ok(()) => {
            shared.writable.store(true, Ordering::Release);
            failures.succeeded();
            None
        }
        Err(e) => {
            shared.writable.store(false, Ordering::Release);
            failures.failed(e);
            Some(Instant::now() + PROBE_EVERY)
        }
    };
    let mut probe: Option<Instant> = None;
    let uncovered = match shared.head.lock() {
        Ok(h) => h.0 > last_checkpoint,
        Err(poisoned) => poisoned.into_inner().0 > last_checkpoint,
    };
    // When the records that no checkpoint covers yet get one from the timer.
    let mut due = uncovered.then(|| Instant::now() + checkpointing.every);
    let mut batch: Vec<Pending> = Vec::with_capacity(max);
    let mut entries: Vec<AuditEntry> = Vec::with_capacity(max);
    loop {
        let first = tokio::select! {
            p = rx.recv() => match p {
                Some(p) => p,
                None => break,
            },
            _ = until(due) => {
                let checkpointed = checkpoint_now(&store, &sign).await;
                due = checkpointed
                    .is_err()
                    .then(|| Instant::now() + checkpointing.every);
                probe = wrote(checkpointed.as_ref().map(|_| ()));
                continue;
            }
            _ = until(probe) => {
                let probed = store.probe_write(&now_rfc3339()).await;
                probe = wrote(probed.as_ref().map(|_| ()));
                continue;
            }
        };
        batch.push(first);
        if !settings.max_wait.is_zero() {
            let deadline = Instant::now() + settings.max_wait;
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

        // The store chains the batch onto the head it reads under its write lock, so another
        // writer (a second gateway instance, an operator's tool) never forks the chain.
        entries.clear();
        entries.extend(batch.iter_mut().map(|p| std::mem::take(&mut p.entry)));
        let started = std::time::Instant::now();
        let appended = store.append_chained(&entries, every_records, &sign).await;
        metrics.audit_commit(
            started.elapsed().as_secs_f64(),
            entries.len(),
            appended.is_ok(),
        );
        match appended {
            Ok(appended) => {
                probe = wrote(Ok(()));
                if let Some(last) = appended.records.last() {
                    set_head((last.seq, last.hash));
                }
                if appended.checkpoint.is_some() {
                    due = None;
                } else if due.is_none() {
                    due = Some(Instant::now() + checkpointing.every);
                }
                for (p, r) in batch.drain(..).zip(&appended.records) {
                    let _ = p.done.send(Ok(r.seq));
                }
            }
            Err(e) => {
                // The requests in this commit are refused; the writer carries on.
                probe = wrote(Err(&e));
                for p in batch.drain(..) {
                    let _ = p.done.send(Err(AuditError::Unavailable));
                }
            }
        }
    }
    // Stopping: leave no record uncovered by a checkpoint.
    if let Err(e) = checkpoint_now(&store, &sign).await {
        tracing::error!(error = %e, "final audit checkpoint failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn writer_with(
        every_records: u64,
        every: Duration,
    ) -> (tempfile::TempDir, Store, AuditLog, JoinHandle<()>) {
        writer_reporting_to(every_records, every, Arc::new(Metrics::new())).await
    }

    /// A writer on a fresh SQLite store, one record per commit, recording into `metrics`.
    async fn writer_reporting_to(
        every_records: u64,
        every: Duration,
        metrics: Arc<Metrics>,
    ) -> (tempfile::TempDir, Store, AuditLog, JoinHandle<()>) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}/audit.db", dir.path().display());
        let store = Store::open(&crate::config::DatabaseSection::new(url))
            .await
            .expect("store");
        let (log, task) = AuditLog::start(
            store.clone(),
            GroupCommit {
                max_records: 1,
                max_wait: Duration::ZERO,
            },
            Checkpointing {
                signer: Arc::new(CheckpointSigner::generate().expect("key")),
                previous_keys: Vec::new(),
                every_records,
                every,
            },
            metrics,
        )
        .await
        .expect("writer starts");
        (dir, store, log, task)
    }

    fn entry(i: usize) -> AuditEntry {
        AuditEntry {
            id: format!("e{i}"),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn every_commit_and_every_wait_for_one_is_timed_and_records_counted_in_the_metrics() {
        let metrics = Arc::new(Metrics::new());
        let (_dir, _store, log, task) =
            writer_reporting_to(1000, Duration::from_secs(3600), metrics.clone()).await;
        for i in 0..3 {
            log.append(entry(i)).await.expect("appended");
        }
        drop(log);
        task.await.expect("writer stops");
        let text = metrics.render(&[]);
        assert!(
            text.contains("poortwachter_audit_records_total 3\n"),
            "{text}"
        );
        assert!(text.contains("poortwachter_audit_commit_duration_seconds_count 3\n"));
        assert!(text.contains("poortwachter_audit_commit_failures_total 0\n"));
        // Each append's wait is recorded too, and contains its own commit.
        assert!(text.contains("poortwachter_audit_wait_duration_seconds_count 3\n"));
        let sum = |name: &str| -> f64 {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name}_sum ")))
                .unwrap_or_else(|| panic!("{name}_sum in {text}"));
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        let commits = sum("poortwachter_audit_commit_duration_seconds");
        let waits = sum("poortwachter_audit_wait_duration_seconds");
        assert!(
            commits > 0.0 && waits >= commits,
            "waits {waits} s, commits {commits} s"
        );
    }

    #[tokio::test]
    async fn checkpoints_come_every_n_records_in_the_commit_and_at_shutdown() {
        let (_dir, store, log, task) = writer_with(5, Duration::from_secs(3600)).await;
        for i in 0..12 {
            log.append(entry(i)).await.expect("appended");
        }
        let seqs: Vec<i64> = store
            .audit_checkpoints(0, i64::MAX)
            .await
            .expect("checkpoints")
            .iter()
            .map(|c| c.seq)
            .collect();
        assert_eq!(seqs, [5, 10]);
        let keys = log.checkpoint_keys().clone();
        assert_eq!(log.head().map(|h| h.seq), Some(12));
        drop(log);
        task.await.expect("writer stops");
        let cps = store
            .audit_checkpoints(0, i64::MAX)
            .await
            .expect("checkpoints");
        assert_eq!(cps.iter().map(|c| c.seq).collect::<Vec<_>>(), [5, 10, 12]);
        for cp in &cps {
            keys.verify(cp).expect("signed by the writer's key");
        }
    }

    #[tokio::test]
    async fn the_timer_checkpoints_records_the_count_has_not_reached() {
        let (_dir, store, log, _task) = writer_with(1000, Duration::from_millis(200)).await;
        for i in 0..3 {
            log.append(entry(i)).await.expect("appended");
        }
        assert!(store.latest_checkpoint().await.expect("read").is_none());
        let deadline = Instant::now() + Duration::from_secs(10);
        let cp = loop {
            if let Some(cp) = store.latest_checkpoint().await.expect("read") {
                break cp;
            }
            assert!(Instant::now() < deadline, "no timer checkpoint");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(cp.seq, 3);
    }

    #[tokio::test]
    async fn a_log_behind_its_latest_checkpoint_refuses_to_start() {
        let (dir, store, log, task) = writer_with(2, Duration::from_secs(3600)).await;
        for i in 0..4 {
            log.append(entry(i)).await.expect("appended");
        }
        drop(log);
        task.await.expect("writer stops");
        let url = format!("sqlite://{}/audit.db", dir.path().display());
        let pool = sqlx::SqlitePool::connect(&url).await.expect("sqlite");
        sqlx::query("DELETE FROM audit_log WHERE seq > 2")
            .execute(&pool)
            .await
            .expect("deleted");
        let again = AuditLog::start(
            store,
            GroupCommit {
                max_records: 1,
                max_wait: Duration::ZERO,
            },
            Checkpointing {
                signer: Arc::new(CheckpointSigner::generate().expect("key")),
                previous_keys: Vec::new(),
                every_records: 2,
                every: Duration::from_secs(3600),
            },
            Arc::new(Metrics::new()),
        )
        .await;
        let e = again.expect_err("refused").to_string();
        assert!(e.contains("truncated"), "{e}");
    }
}
