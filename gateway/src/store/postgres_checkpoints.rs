//! PostgreSQL queries for audit checkpoints, the chained append that several gateway instances
//! share, and reading the audit log back for verification. Every value is bound, never spliced
//! into the SQL text.

use sqlx::postgres::PgPoolOptions;
use sqlx::Row;

use policy::Sha256Hash;

use super::chain::{ChainAppend, CheckpointSign};
use super::error::StoreError;
use super::postgres::{begin_chain_transaction, connect_options, insert_audit, PgStore};
use super::rows::{AuditRow, CheckpointRow};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::record::{AuditEntry, AuditRecord};

async fn insert(conn: &mut sqlx::PgConnection, cp: &Checkpoint) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_checkpoints (seq, head, time, key_id, signature) \
         VALUES ($1, $2, $3, $4, $5)",
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

/// The head of the chain and the latest checkpoint's seq, read inside the caller's transaction
/// begun by [`begin_chain_transaction`]: under READ COMMITTED each statement sees every commit
/// made before it started, so this is the head the previous lock holder left.
async fn head_and_checkpoint(
    conn: &mut sqlx::PgConnection,
) -> Result<((i64, Sha256Hash), i64), StoreError> {
    // One round trip for both: the last record (if any) and the latest checkpoint's seq.
    let row = sqlx::query(
        "SELECT last.seq, last.hash, (SELECT MAX(seq) FROM audit_checkpoints) AS checkpointed \
         FROM (SELECT 1) AS one LEFT JOIN LATERAL \
         (SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1) AS last ON TRUE",
    )
    .fetch_one(&mut *conn)
    .await?;
    let seq: Option<i64> = row.try_get("seq")?;
    let hash: Option<String> = row.try_get("hash")?;
    let checkpointed: Option<i64> = row.try_get("checkpointed")?;
    super::chain::chain_head(seq, hash, checkpointed)
}

impl PgStore {
    /// Append `entries` as the next records of the one chain. The transaction first takes the
    /// chain lock (`LOCK TABLE audit_log IN EXCLUSIVE MODE`), then reads the head: every instance
    /// on this database extends the same chain, one commit after another. When the records since
    /// the latest checkpoint reach `every_records`, the new head is signed and the checkpoint goes
    /// in the same transaction.
    pub async fn append_chained(
        &self,
        entries: &[AuditEntry],
        every_records: i64,
        sign: &CheckpointSign,
    ) -> Result<ChainAppend, StoreError> {
        let mut tx = begin_chain_transaction(&self.pool).await?;
        let ((mut seq, mut prev), checkpointed) = head_and_checkpoint(&mut tx).await?;
        let mut records = Vec::with_capacity(entries.len());
        for entry in entries {
            seq += 1;
            let r = AuditRecord::chain(seq, entry.clone(), prev);
            prev = r.hash;
            records.push(r);
        }
        insert_audit(&mut tx, &records).await?;
        let checkpoint = (seq - checkpointed >= every_records).then(|| sign(seq, prev));
        if let Some(cp) = &checkpoint {
            insert(&mut tx, cp).await?;
        }
        tx.commit().await?;
        Ok(ChainAppend {
            records,
            checkpoint,
        })
    }

    /// Sign the current head when records exist that no checkpoint covers yet (under the chain
    /// lock, so the head cannot move and two instances cannot both sign it).
    pub async fn checkpoint_head(
        &self,
        sign: &CheckpointSign,
    ) -> Result<Option<Checkpoint>, StoreError> {
        let mut tx = begin_chain_transaction(&self.pool).await?;
        let ((seq, head), checkpointed) = head_and_checkpoint(&mut tx).await?;
        if seq <= checkpointed {
            tx.rollback().await?;
            return Ok(None);
        }
        let cp = sign(seq, head);
        insert(&mut tx, &cp).await?;
        tx.commit().await?;
        Ok(Some(cp))
    }

    /// Connect without migrations, every transaction read-only (offline verification must not
    /// change what it verifies).
    pub async fn open_read_only(url: &str) -> Result<Self, StoreError> {
        let options = connect_options(url)?.options([("default_transaction_read_only", "on")]);
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        Ok(PgStore { pool })
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
        let rows = sqlx::query(
            "SELECT * FROM audit_checkpoints WHERE seq >= $1 AND seq <= $2 ORDER BY seq",
        )
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
             WHERE seq > $1 ORDER BY seq LIMIT $2",
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
            sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = $1")
                .bind(seq)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn audit_prune_anchor(&self, cutoff: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MAX(c.seq) FROM audit_checkpoints c JOIN audit_log a ON a.seq = c.seq \
             WHERE a.time < $1",
        )
        .bind(cutoff)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn prune_audit_before(&self, anchor: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("LOCK TABLE audit_log IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM audit_log WHERE seq < $1")
            .bind(anchor)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM audit_checkpoints WHERE seq < $1")
            .bind(anchor)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}
