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
use super::rows::{ConsentRow, HandoverRow};
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

    pub async fn insert_consent(&self, c: &ConsentRow) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO consents (jti, issuer_oin, subject_pseudonym, purpose, covenant_id, \
             not_before, expires_at, registered_at, revoked_at, wrapped_key, sealed_claims) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.jti)
        .bind(&c.issuer_oin)
        .bind(&c.subject_pseudonym)
        .bind(&c.purpose)
        .bind(&c.covenant_id)
        .bind(c.not_before)
        .bind(c.expires_at)
        .bind(c.registered_at)
        .bind(c.revoked_at)
        .bind(&c.sealed.wrapped_key)
        .bind(&c.sealed.ciphertext)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Duplicate),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn consent(&self, jti: &str) -> Result<Option<ConsentRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM consents WHERE jti = ?")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(super::decode::consent).transpose()
    }

    pub async fn consents_for_subject(
        &self,
        subject_pseudonym: &str,
    ) -> Result<Vec<ConsentRow>, StoreError> {
        self.reads.consents_for_subject(subject_pseudonym)
    }

    pub async fn revoke_consent(&self, jti: &str, at: i64) -> Result<Option<u64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let updated =
            sqlx::query("UPDATE consents SET revoked_at = ? WHERE jti = ? AND revoked_at IS NULL")
                .bind(at)
                .bind(jti)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if updated == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        // Destroy the data: the row holds the only copy of the wrapped data key.
        let destroyed = sqlx::query("DELETE FROM handovers WHERE consent_jti = ?")
            .bind(jti)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(Some(destroyed))
    }

    pub async fn put_handover(&self, h: &HandoverRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO handovers (purpose, subject_pseudonym, source_oin, covenant_id, \
             consent_jti, stored_at, expires_at, wrapped_key, ciphertext) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (purpose, subject_pseudonym, source_oin) DO UPDATE SET \
             covenant_id = excluded.covenant_id, consent_jti = excluded.consent_jti, \
             stored_at = excluded.stored_at, expires_at = excluded.expires_at, \
             wrapped_key = excluded.wrapped_key, ciphertext = excluded.ciphertext",
        )
        .bind(&h.purpose)
        .bind(&h.subject_pseudonym)
        .bind(&h.source_oin)
        .bind(&h.covenant_id)
        .bind(&h.consent_jti)
        .bind(h.stored_at)
        .bind(h.expires_at)
        .bind(&h.sealed.wrapped_key)
        .bind(&h.sealed.ciphertext)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn handover(
        &self,
        purpose: &str,
        subject_pseudonym: &str,
        source_oin: &str,
    ) -> Result<Option<HandoverRow>, StoreError> {
        self.reads.handover(purpose, subject_pseudonym, source_oin)
    }

    pub async fn sweep_handovers(&self, now: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM handovers WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected())
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
