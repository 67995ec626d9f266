//! The embedded SQLite backend: WAL journal, `synchronous = FULL` so a committed audit record
//! survives a crash, migrations at start. Holds the sqlx pool the shared statements run on, and
//! the direct reads and audit writer of `sqlite_direct`. No decisions here.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::chain::{ChainAppend, CheckpointSign};
use super::error::StoreError;
use super::sqlite_direct::{DirectReads, DirectWriter};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::record::{AuditEntry, AuditRecord};

/// Begins a transaction that holds SQLite's write lock from its first statement (what pruning
/// the audit log takes; the writer's chained appends take the same lock through rusqlite).
pub(super) const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
    /// The disclosure path's reads, off sqlx (`sqlite_direct`).
    pub(super) reads: Arc<DirectReads>,
    /// The audit writer, off sqlx; `None` for a store opened read-only.
    pub(super) writer: Option<Arc<DirectWriter>>,
}

impl SqliteStore {
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        // The direct reads and the audit writer open their own connections to the same file;
        // an in-memory database would be a different, empty one for each.
        if is_in_memory(url) {
            return Err(StoreError::InMemory);
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // Statement journals (a multi-row audit INSERT needs one) in memory, not in a temp
            // file created and deleted on every commit.
            .pragma("temp_store", "MEMORY");
        // No ping before each acquire: with SQLite every statement, a ping included, is a hand-off
        // to the connection's worker thread, and a local file connection does not go stale.
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let path = options.get_filename();
        Ok(SqliteStore {
            pool,
            reads: Arc::new(DirectReads::open(path)?),
            writer: Some(Arc::new(DirectWriter::open(path)?)),
        })
    }

    /// Open an existing database read-only, without migrations (offline verification must not
    /// change what it verifies).
    pub async fn open_read_only(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .read_only(true)
            .create_if_missing(false);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        Ok(SqliteStore {
            pool,
            reads: Arc::new(DirectReads::open(options.get_filename())?),
            writer: None,
        })
    }

    /// Append `entries` as the next records of the chain. The head is read inside a write
    /// transaction (`BEGIN IMMEDIATE`), so every writer — this gateway or another process on the
    /// same file — extends one chain. When the records since the latest checkpoint reach
    /// `every_records`, the new head is signed and the checkpoint goes in the same transaction.
    pub async fn append_chained(
        &self,
        entries: &[AuditEntry],
        every_records: i64,
        sign: &CheckpointSign,
    ) -> Result<ChainAppend, StoreError> {
        let writer = self.writer.as_ref().ok_or(StoreError::ReadOnly)?;
        writer.append_chained(entries, every_records, sign)
    }

    /// Sign the current head when records exist that no checkpoint covers yet.
    pub async fn checkpoint_head(
        &self,
        sign: &CheckpointSign,
    ) -> Result<Option<Checkpoint>, StoreError> {
        let writer = self.writer.as_ref().ok_or(StoreError::ReadOnly)?;
        writer.checkpoint_head(sign)
    }

    /// The audit writer's probe write (see `Store::probe_write`), on the writer's connection.
    pub fn probe_write(&self, time: &str) -> Result<(), StoreError> {
        let writer = self.writer.as_ref().ok_or(StoreError::ReadOnly)?;
        writer.probe_write(time)
    }

    /// Insert records that are already chained, under the write lock (tests and imports).
    pub async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        let writer = self.writer.as_ref().ok_or(StoreError::ReadOnly)?;
        writer.insert_records(records)
    }
}

/// Whether a `sqlite:` URL names an in-memory database (private to the connection that made it).
fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}
