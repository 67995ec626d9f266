//! The audit-log store behind the facade: the chained append and checkpoints (the rule is in
//! [`super::chain`]), the raw rows and checkpoints that verification reads, retention's pruning.
//! Stores and returns what is there; it never judges a signature or a hash.

use super::chain::{ChainAppend, CheckpointSign};
use super::rows::{AuditRow, CheckpointRow};
use super::{Store, StoreError};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::record::AuditEntry;

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

    /// The checkpoint with the highest seq.
    pub async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        dispatch!(self, s => s.latest_checkpoint().await)
    }

    /// Checkpoint rows with `from <= seq <= to`, in seq order.
    pub async fn audit_checkpoint_rows(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<CheckpointRow>, StoreError> {
        dispatch!(self, s => s.audit_checkpoint_rows(from, to).await)
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
        dispatch!(self, s => s.audit_rows(after, limit).await)
    }

    /// How many audit rows there are.
    pub async fn audit_count(&self) -> Result<u64, StoreError> {
        dispatch!(self, s => s.audit_count().await)
    }

    /// The stored hash of the record at `seq` (the column, not recomputed).
    pub async fn audit_hash_at(&self, seq: i64) -> Result<Option<String>, StoreError> {
        dispatch!(self, s => s.audit_hash_at(seq).await)
    }

    /// The highest checkpointed seq whose record is older than `cutoff` (RFC 3339, as records
    /// store their time): the furthest point up to which audit retention may delete.
    pub async fn audit_prune_anchor(&self, cutoff: &str) -> Result<Option<i64>, StoreError> {
        dispatch!(self, s => s.audit_prune_anchor(cutoff).await)
    }

    /// Delete the records (and checkpoints) before `anchor`, which must be a checkpointed seq:
    /// the log then starts at a record a signed checkpoint vouches for. Returns how many records.
    pub async fn prune_audit_before(&self, anchor: i64) -> Result<u64, StoreError> {
        dispatch!(self, s => s.prune_audit_before(anchor).await)
    }
}
