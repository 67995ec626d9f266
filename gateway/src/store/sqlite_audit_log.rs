//! SQLite queries for audit checkpoints and for reading the audit log back for verification.
//! Every value is bound, never spliced into the SQL text.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use super::chain::{ChainAppend, CheckpointSign};
use super::error::StoreError;
use super::rows::{AuditRow, CheckpointRow};
use super::sqlite::SqliteStore;
use crate::audit::checkpoint::Checkpoint;
use crate::audit::record::AuditEntry;

impl SqliteStore {
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
            reads: std::sync::Arc::new(super::sqlite_direct::DirectReads::open(
                options.get_filename(),
            )?),
            writer: None,
        })
    }

    pub async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM audit_checkpoints ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(super::decode::checkpoint).transpose()
    }

    pub async fn audit_checkpoint_rows(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<CheckpointRow>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM audit_checkpoints WHERE seq >= ? AND seq <= ? ORDER BY seq")
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(super::decode::checkpoint).collect()
    }

    pub async fn audit_rows(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, id, time, kind, requester_oin, source_oin, subject_pseudonym, purpose, \
             decision, reason, record, prev_hash, hash FROM audit_log \
             WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(super::decode::audit_row).collect()
    }

    pub async fn audit_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub async fn audit_hash_at(&self, seq: i64) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = ?")
                .bind(seq)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn audit_prune_anchor(&self, cutoff: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MAX(c.seq) FROM audit_checkpoints c JOIN audit_log a ON a.seq = c.seq \
             WHERE a.time < ?",
        )
        .bind(cutoff)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn prune_audit_before(&self, anchor: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let deleted = sqlx::query("DELETE FROM audit_log WHERE seq < ?")
            .bind(anchor)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM audit_checkpoints WHERE seq < ?")
            .bind(anchor)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}
