//! SQLite queries for audit checkpoints and for reading the audit log back for verification.
//! Every value is bound, never spliced into the SQL text.

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::Row;

use super::checkpoints::{AuditRow, CheckpointRow};
use super::sqlite::{insert_audit, SqliteStore};
use super::StoreError;
use crate::audit::checkpoint::Checkpoint;
use crate::audit::record::AuditRecord;

async fn insert(conn: &mut sqlx::SqliteConnection, cp: &Checkpoint) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_checkpoints (seq, head, time, key_id, signature) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(cp.seq)
    .bind(cp.head.to_string())
    .bind(&cp.time)
    .bind(&cp.key_id)
    .bind(&cp.signature)
    .execute(conn)
    .await?;
    Ok(())
}

fn checkpoint_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<CheckpointRow, StoreError> {
    Ok(CheckpointRow {
        seq: r.try_get("seq")?,
        head: r.try_get("head")?,
        time: r.try_get("time")?,
        key_id: r.try_get("key_id")?,
        signature: r.try_get("signature")?,
    })
}

impl SqliteStore {
    /// Open an existing database read-only, without migrations (offline verification must not
    /// change what it verifies).
    pub async fn open_read_only(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .read_only(true)
            .create_if_missing(false);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        Ok(SqliteStore { pool })
    }

    pub async fn append_audit_checkpointed(
        &self,
        records: &[AuditRecord],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_audit(&mut tx, records).await?;
        if let Some(cp) = checkpoint {
            insert(&mut tx, cp).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn insert_checkpoint(&self, cp: &Checkpoint) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert(&mut conn, cp).await
    }

    pub async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM audit_checkpoints ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(checkpoint_from_row).transpose()
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
        rows.iter().map(checkpoint_from_row).collect()
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
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    seq: r.try_get("seq")?,
                    id: r.try_get("id")?,
                    time: r.try_get("time")?,
                    kind: r.try_get("kind")?,
                    requester_oin: r.try_get("requester_oin")?,
                    source_oin: r.try_get("source_oin")?,
                    subject_pseudonym: r.try_get("subject_pseudonym")?,
                    purpose: r.try_get("purpose")?,
                    decision: r.try_get("decision")?,
                    reason: r.try_get("reason")?,
                    record: r.try_get("record")?,
                    prev_hash: r.try_get("prev_hash")?,
                    hash: r.try_get("hash")?,
                })
            })
            .collect()
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
}
