//! The audit-log store behind the facade: chained appends and checkpoints (rule in `chain`), and
//! the rows, checkpoints and counts that review, verification and retention read, in SQL written
//! once for both backends. Returns what is stored; it never judges a signature or a hash.

use sqlx::{Encode, Executor, Type};

use super::chain::{ChainAppend, CheckpointSign};
use super::decode::{self, Columns};
use super::rows::{AuditRow, CheckpointRow};
use super::sql::{RowsAffected, Sql, SqlDatabase};
use super::{postgres_chain, sqlite, Store, StoreError};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::record::{AuditEntry, AuditRecord};

impl Store {
    /// Append entries as the next records of the one chain, reading and locking its head inside
    /// the transaction (several gateway instances may append); sign a checkpoint in the same
    /// transaction when `every_records` records have accumulated since the last one. On SQLite
    /// this blocks the calling thread until the commit is durable (see
    /// `appends_block_the_caller`).
    pub async fn append_chained(
        &self,
        entries: &[AuditEntry],
        every_records: i64,
        sign: &CheckpointSign,
    ) -> Result<ChainAppend, StoreError> {
        dispatch!(self, s => s.append_chained(entries, every_records, sign).await)
    }

    /// Sign and store a checkpoint over the current head if records exist that none covers.
    pub async fn checkpoint_head(
        &self,
        sign: &CheckpointSign,
    ) -> Result<Option<Checkpoint>, StoreError> {
        dispatch!(self, s => s.checkpoint_head(sign).await)
    }

    /// Write one row apart from the log (`audit_writer_probe`), through the same connection the
    /// audit writer commits on: whether the database takes writes again after a failed commit,
    /// learnt without writing an audit record. On SQLite this blocks the calling thread.
    pub async fn probe_write(&self, time: &str) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.probe_write(time),
            Store::Postgres(s) => {
                sqlx::query(super::sql::PROBE_WRITE)
                    .bind(time)
                    .bind(vec![0u8; super::sql::PROBE_PADDING])
                    .execute(&s.pool)
                    .await?;
                Ok(())
            }
        }
    }

    /// Append chained records in one durable transaction.
    pub async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        dispatch!(self, s => s.append_audit(records).await)
    }

    /// The last record's sequence number and hash.
    pub async fn audit_head(&self) -> Result<Option<(i64, policy::Sha256Hash)>, StoreError> {
        dispatch!(self, s => Sql(&s.pool).audit_head().await)
    }

    /// Records with `seq > after`, in order, at most `limit`.
    pub async fn audit_records(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        dispatch!(self, s => Sql(&s.pool).audit_records(after, limit).await)
    }

    /// Whether an audit record with this id exists.
    pub async fn audit_has_id(&self, id: &str) -> Result<bool, StoreError> {
        dispatch!(self, s => Sql(&s.pool).audit_has_id(id).await)
    }

    /// The checkpoint with the highest seq.
    pub async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        dispatch!(self, s => Sql(&s.pool).latest_checkpoint().await)
    }

    /// Checkpoint rows with `from <= seq <= to`, in seq order.
    pub async fn audit_checkpoint_rows(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<CheckpointRow>, StoreError> {
        dispatch!(self, s => Sql(&s.pool).audit_checkpoint_rows(from, to).await)
    }

    /// Checkpoints with `from <= seq <= to`, in seq order (what an export of that range needs).
    pub async fn audit_checkpoints(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        self.audit_checkpoint_rows(from, to)
            .await?
            .iter()
            .map(|r| r.parse().map_err(StoreError::Corrupt))
            .collect()
    }

    /// Raw audit rows with `seq > after`, in seq order, at most `limit`.
    pub async fn audit_rows(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        dispatch!(self, s => Sql(&s.pool).audit_rows(after, limit).await)
    }

    /// How many audit rows there are.
    pub async fn audit_count(&self) -> Result<u64, StoreError> {
        dispatch!(self, s => Sql(&s.pool).audit_count().await)
    }

    /// The stored hash of the record at `seq` (the column, not recomputed).
    pub async fn audit_hash_at(&self, seq: i64) -> Result<Option<String>, StoreError> {
        dispatch!(self, s => Sql(&s.pool).audit_hash_at(seq).await)
    }

    /// The highest checkpointed seq whose record is older than `cutoff` (RFC 3339, as records
    /// store their time): the furthest point up to which audit retention may delete.
    pub async fn audit_prune_anchor(&self, cutoff: &str) -> Result<Option<i64>, StoreError> {
        dispatch!(self, s => Sql(&s.pool).audit_prune_anchor(cutoff).await)
    }

    /// Delete the records (and checkpoints) before `anchor`, which must be a checkpointed seq:
    /// the log then starts at a record a signed checkpoint vouches for. Returns how many records.
    /// Under each backend's write lock on the log, so that no append interleaves.
    pub async fn prune_audit_before(&self, anchor: i64) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => {
                Sql(&s.pool)
                    .prune_audit_before(sqlite::BEGIN_WRITE, anchor)
                    .await
            }
            Store::Postgres(s) => {
                Sql(&s.pool)
                    .prune_audit_before(postgres_chain::BEGIN_CHAIN_LOCK, anchor)
                    .await
            }
        }
    }
}

impl<DB: SqlDatabase> Sql<'_, DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    i64: for<'a> Encode<'a, DB> + Type<DB>,
{
    async fn audit_head(&self) -> Result<Option<(i64, policy::Sha256Hash)>, StoreError> {
        let row = sqlx::query::<DB>("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(self.0)
            .await?;
        row.as_ref().map(decode::head).transpose()
    }

    async fn audit_records(&self, after: i64, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let rows =
            sqlx::query::<DB>("SELECT record FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(self.0)
                .await?;
        rows.iter().map(decode::audit).collect()
    }

    async fn audit_has_id(&self, id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query::<DB>("SELECT 1 AS one FROM audit_log WHERE id = $1")
            .bind(id)
            .fetch_optional(self.0)
            .await?;
        Ok(row.is_some())
    }

    async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        let row = sqlx::query::<DB>("SELECT * FROM audit_checkpoints ORDER BY seq DESC LIMIT 1")
            .fetch_optional(self.0)
            .await?;
        row.as_ref().map(decode::checkpoint).transpose()
    }

    async fn audit_checkpoint_rows(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<CheckpointRow>, StoreError> {
        let rows = sqlx::query::<DB>(
            "SELECT * FROM audit_checkpoints WHERE seq >= $1 AND seq <= $2 ORDER BY seq",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.0)
        .await?;
        rows.iter().map(decode::checkpoint).collect()
    }

    async fn audit_rows(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query::<DB>(
            "SELECT seq, id, time, kind, requester_oin, source_oin, subject_pseudonym, purpose, \
             decision, reason, actor_sub, record, prev_hash, hash FROM audit_log \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(self.0)
        .await?;
        rows.iter().map(decode::audit_row).collect()
    }

    async fn audit_count(&self) -> Result<u64, StoreError> {
        let row = sqlx::query::<DB>("SELECT COUNT(*) AS n FROM audit_log")
            .fetch_one(self.0)
            .await?;
        Ok(u64::try_from(row.int("n")?).unwrap_or(0))
    }

    async fn audit_hash_at(&self, seq: i64) -> Result<Option<String>, StoreError> {
        let row = sqlx::query::<DB>("SELECT hash FROM audit_log WHERE seq = $1")
            .bind(seq)
            .fetch_optional(self.0)
            .await?;
        Ok(row.as_ref().map(|r| r.text("hash")).transpose()?)
    }

    async fn audit_prune_anchor(&self, cutoff: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query::<DB>(
            "SELECT MAX(c.seq) AS anchor FROM audit_checkpoints c \
             JOIN audit_log a ON a.seq = c.seq WHERE a.time < $1",
        )
        .bind(cutoff)
        .fetch_one(self.0)
        .await?;
        Ok(row.opt_int("anchor")?)
    }

    /// `begin` starts a transaction that holds the backend's write lock on the log.
    async fn prune_audit_before(
        &self,
        begin: &'static str,
        anchor: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.0.begin_with(begin).await?;
        let deleted = sqlx::query::<DB>("DELETE FROM audit_log WHERE seq < $1")
            .bind(anchor)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query::<DB>("DELETE FROM audit_checkpoints WHERE seq < $1")
            .bind(anchor)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}
