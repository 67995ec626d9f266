//! The SQLite work on the disclosure path through rusqlite, off sqlx: the reads (a subject's
//! consents, one handover record) on the request's thread, and the primitives of the chained audit
//! append (the rule is `chain`'s) on the audit writer's thread. It never decides what to write.
//!
//! Why: sqlx runs every SQLite statement on a per-connection worker thread and passes the
//! statement and each row across channels, so one small indexed read costs several thread
//! wake-ups, and an audit commit (BEGIN, head, INSERT, COMMIT) several more. Under load those
//! hand-offs, not SQLite, were most of the gateway's CPU time (BENCHMARKS.md, "Where the
//! gateway's time goes"). Here a read is a prepared, cached statement stepped where the request
//! is being handled (tens of microseconds with the pages cached), and a whole audit commit runs
//! where the audit writer batched it, with no hand-off at all.
//!
//! The read connections are read-only and the database is in WAL mode, so a read never waits for
//! the audit writer and never sees a half-written transaction. A read that has to go to the disk
//! holds its Tokio worker for that time; that is the trade made for the common, cached case.
//! The writer's connection has the same durability settings as the sqlx pool (`synchronous =
//! FULL`, checked by a test). Every other query stays on sqlx.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::FutureExt;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use super::chain::{self, ChainAppend, ChainTx, CheckpointSign, HeadColumns};
use super::error::StoreError;
use super::rows::{ConsentRow, HandoverRow};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::record::{AuditEntry, AuditRecord};

/// How long a statement waits for another connection's lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle read-only connections to one SQLite file, opened on demand.
#[derive(Debug)]
pub struct DirectReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// Connections kept open between reads (more may be open while reads overlap).
const KEEP_IDLE: usize = 8;

impl DirectReads {
    /// Open a first connection to `path` (the database must exist and be migrated).
    pub fn open(path: &Path) -> Result<DirectReads, StoreError> {
        let reads = DirectReads {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        };
        let first = reads.connect()?;
        reads.put_back(first);
        Ok(reads)
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(direct)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(direct)?;
        Ok(conn)
    }

    fn take(&self) -> Result<Connection, StoreError> {
        let idle = match self.idle.lock() {
            Ok(mut idle) => idle.pop(),
            Err(poisoned) => poisoned.into_inner().pop(),
        };
        match idle {
            Some(conn) => Ok(conn),
            None => self.connect(),
        }
    }

    fn put_back(&self, conn: Connection) {
        let mut idle = match self.idle.lock() {
            Ok(idle) => idle,
            Err(poisoned) => poisoned.into_inner(),
        };
        if idle.len() < KEEP_IDLE {
            idle.push(conn);
        }
    }

    /// Run `read` on an idle connection. A connection whose read failed is closed, not reused.
    fn with_connection<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.take()?;
        let result = read(&conn);
        if result.is_ok() {
            self.put_back(conn);
        }
        result
    }

    /// Every consent registered for one subject, in `jti` order.
    pub fn consents_for_subject(
        &self,
        subject_pseudonym: &str,
    ) -> Result<Vec<ConsentRow>, StoreError> {
        self.with_connection(|conn| {
            let mut statement = conn
                .prepare_cached("SELECT * FROM consents WHERE subject_pseudonym = ? ORDER BY jti")
                .map_err(direct)?;
            let mut rows = statement.query([subject_pseudonym]).map_err(direct)?;
            let mut consents = Vec::new();
            while let Some(row) = rows.next().map_err(direct)? {
                consents.push(super::decode::consent(row)?);
            }
            Ok(consents)
        })
    }

    /// The handover record of (purpose, subject, source), if one is stored.
    pub fn handover(
        &self,
        purpose: &str,
        subject_pseudonym: &str,
        source_oin: &str,
    ) -> Result<Option<HandoverRow>, StoreError> {
        self.with_connection(|conn| {
            let mut statement = conn
                .prepare_cached(
                    "SELECT * FROM handovers \
                     WHERE purpose = ? AND subject_pseudonym = ? AND source_oin = ?",
                )
                .map_err(direct)?;
            let mut rows = statement
                .query([purpose, subject_pseudonym, source_oin])
                .map_err(direct)?;
            match rows.next().map_err(direct)? {
                Some(row) => super::decode::handover(row).map(Some),
                None => Ok(None),
            }
        })
    }
}

fn direct(e: rusqlite::Error) -> StoreError {
    StoreError::Direct(e)
}

/// The audit writer's read-write connection. Each chained append is one `BEGIN IMMEDIATE`
/// transaction run on the calling thread, which blocks for the commit (`fsync` included): the
/// audit log calls it from its own writer thread (`audit::AuditLog::start`), never from a Tokio
/// worker that serves requests.
#[derive(Debug)]
pub struct DirectWriter {
    conn: Mutex<Connection>,
}

impl DirectWriter {
    /// Open the writer's connection to `path` (the database must exist and be migrated).
    pub fn open(path: &Path) -> Result<DirectWriter, StoreError> {
        Ok(DirectWriter {
            conn: Mutex::new(writer_connection(path)?),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        match self.conn.lock() {
            Ok(conn) => conn,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Begin the writer's transaction: `BEGIN IMMEDIATE` takes SQLite's write lock at once, so
    /// the head it reads is the one it extends, whoever else writes to the file.
    fn begin(conn: &mut Connection) -> Result<DirectTx<'_>, StoreError> {
        conn.transaction_with_behavior(TransactionBehavior::Immediate)
            .map(DirectTx)
            .map_err(direct)
    }

    /// Chain `entries` onto the head and commit them (see `SqliteStore::append_chained`).
    pub fn append_chained(
        &self,
        entries: &[AuditEntry],
        every_records: i64,
        sign: &CheckpointSign,
    ) -> Result<ChainAppend, StoreError> {
        let mut conn = self.lock();
        let tx = Self::begin(&mut conn)?;
        run_now(chain::append(tx, entries, every_records, sign))
    }

    /// Insert records that are already chained, in one transaction (tests and imports).
    pub fn insert_records(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = Self::begin(&mut conn)?;
        run_now(chain::insert_chained(tx, records))
    }

    /// Rewrite the probe row in a transaction of its own (see `Store::probe_write`).
    pub fn probe_write(&self, time: &str) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = Self::begin(&mut conn)?;
        let padding = vec![0u8; super::sql::PROBE_PADDING];
        tx.0.prepare_cached(super::sql::PROBE_WRITE)
            .and_then(|mut s| s.execute(rusqlite::params![time, padding]))
            .map_err(direct)?;
        tx.0.commit().map_err(direct)
    }

    /// Sign the head when records exist that no checkpoint covers yet.
    pub fn checkpoint_head(&self, sign: &CheckpointSign) -> Result<Option<Checkpoint>, StoreError> {
        let mut conn = self.lock();
        let tx = Self::begin(&mut conn)?;
        run_now(chain::checkpoint_head(tx, sign))
    }
}

/// The writer's read-write connection, with the same settings as the sqlx pool.
fn writer_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(direct)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(direct)?;
    // Durability first: a commit returns only once the WAL is on the disk.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(direct)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(direct)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(direct)?;
    Ok(conn)
}

/// Finish a chain-rule future over a [`DirectTx`] here, on the writer's thread. Every primitive
/// of a `DirectTx` is done when it returns (rusqlite blocks), so the future is ready at its first
/// poll: no executor, no hand-off, the whole commit where the batch was collected. Should a
/// future change make the rule wait on something else, the append fails (the transaction is
/// dropped, so it rolls back, and the request is refused) rather than panicking the writer.
fn run_now<T>(
    rule: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    rule.now_or_never().unwrap_or_else(|| {
        Err(StoreError::Thread(
            "the chain rule waited on something other than the SQLite transaction".into(),
        ))
    })
}

/// The writer's transaction, filling in the primitives of the chain rule (`super::chain`) with
/// rusqlite. Dropped without `commit`, it rolls back.
struct DirectTx<'c>(Transaction<'c>);

impl ChainTx for DirectTx<'_> {
    async fn head(&mut self) -> Result<HeadColumns, StoreError> {
        self.0
            .prepare_cached(
                "SELECT (SELECT seq FROM audit_log ORDER BY seq DESC LIMIT 1), \
                        (SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1), \
                        (SELECT MAX(seq) FROM audit_checkpoints)",
            )
            .and_then(|mut s| {
                s.query_row([], |r| {
                    Ok(HeadColumns {
                        seq: r.get(0)?,
                        hash: r.get(1)?,
                        checkpointed: r.get(2)?,
                    })
                })
            })
            .map_err(direct)
    }

    async fn insert_records(&mut self, records: &[AuditRecord]) -> Result<(), StoreError> {
        let mut statement = self
            .0
            .prepare_cached(
                "INSERT INTO audit_log (seq, id, time, kind, requester_oin, source_oin, \
                 subject_pseudonym, purpose, decision, reason, record, prev_hash, hash, \
                 actor_sub) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .map_err(direct)?;
        for r in records {
            let text = serde_json::to_string(r)
                .map_err(|e| StoreError::Corrupt(format!("audit record: {e}")))?;
            let e = &r.entry;
            statement
                .execute(rusqlite::params![
                    r.seq,
                    e.id,
                    e.time,
                    e.kind.map(|k| k.as_str()).unwrap_or("unknown"),
                    e.requester_oin,
                    e.source_oin,
                    e.subject_pseudonym,
                    e.purpose,
                    e.decision.map(|d| d.as_str()),
                    e.reason,
                    text,
                    r.prev_hash.to_string(),
                    r.hash.to_string(),
                    e.actor.as_ref().and_then(|a| a.sub.as_deref()),
                ])
                .map_err(direct)?;
        }
        Ok(())
    }

    async fn insert_checkpoint(&mut self, cp: &Checkpoint) -> Result<(), StoreError> {
        self.0
            .prepare_cached(
                "INSERT INTO audit_checkpoints (seq, head, time, key_id, signature) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .and_then(|mut s| {
                s.execute(rusqlite::params![
                    cp.seq,
                    cp.head.to_string(),
                    cp.time,
                    cp.key_id,
                    cp.signature
                ])
            })
            .map_err(direct)?;
        Ok(())
    }

    async fn commit(self) -> Result<(), StoreError> {
        self.0.commit().map_err(direct)
    }

    async fn rollback(self) -> Result<(), StoreError> {
        self.0.rollback().map_err(direct)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn migrated_file() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("direct.db");
        let url = format!("sqlite://{}", path.display());
        drop(
            super::super::sqlite::SqliteStore::open(&url, 1)
                .await
                .unwrap(),
        );
        (dir, path)
    }

    /// The writer's connection must commit as durably as the sqlx pool (a record the gateway
    /// has answered for survives a power cut) and stay in WAL mode (reads never wait for it).
    #[tokio::test]
    async fn the_writer_connection_is_durable_and_in_wal_mode() {
        let (_dir, path) = migrated_file().await;
        let conn = writer_connection(&path).unwrap();
        let synchronous: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(synchronous, 2, "synchronous = FULL");
        let journal: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(journal, "wal");
        let foreign_keys: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(foreign_keys, 1);
    }

    /// A read connection cannot write, whatever it is asked.
    #[tokio::test]
    async fn the_read_connections_cannot_write() {
        let (_dir, path) = migrated_file().await;
        let reads = DirectReads::open(&path).unwrap();
        let result = reads.with_connection(|conn| {
            conn.execute("DELETE FROM audit_log", [])
                .map_err(direct)
                .map(|_| ())
        });
        assert!(matches!(result, Err(StoreError::Direct(_))), "{result:?}");
    }

    /// A failed append keeps nothing: the duplicate id of the second entry undoes the first.
    #[tokio::test]
    async fn a_failed_append_keeps_none_of_its_records() {
        let (_dir, path) = migrated_file().await;
        let writer = DirectWriter::open(&path).unwrap();
        let signer =
            std::sync::Arc::new(crate::audit::checkpoint::CheckpointSigner::generate().unwrap());
        let sign: CheckpointSign = std::sync::Arc::new(move |seq, head| {
            signer.sign(seq, head, "2026-11-25T00:00:00Z".into())
        });
        let entry = |id: &str| AuditEntry {
            id: id.into(),
            ..Default::default()
        };
        writer.append_chained(&[entry("a")], 100, &sign).unwrap();
        let failed = writer.append_chained(&[entry("b"), entry("a")], 100, &sign);
        assert!(failed.is_err());
        let conn = writer_connection(&path).unwrap();
        let ids: Vec<String> = conn
            .prepare("SELECT id FROM audit_log ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ids, ["a"]);
        // The writer carries on after the failure.
        let next = writer.append_chained(&[entry("c")], 100, &sign).unwrap();
        assert_eq!(next.records[0].seq, 2);
    }
}
