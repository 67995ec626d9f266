//! Storage of signed audit checkpoints and the raw audit rows that verification reads, behind
//! the backend-neutral `Store`. Stores and returns what is there; it never judges a signature or
//! a hash.

use policy::Sha256Hash;

use super::{Store, StoreError};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::record::AuditRecord;

/// A checkpoint row as stored (the head still text, so a corrupt row can be reported, not lost).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    pub seq: i64,
    pub head: String,
    pub time: String,
    pub key_id: String,
    pub signature: String,
}

impl CheckpointRow {
    /// The checkpoint, or why the row is not one.
    pub fn parse(&self) -> Result<Checkpoint, String> {
        let head = Sha256Hash::parse(&self.head)
            .ok_or_else(|| format!("checkpoint at seq {}: head is not sha256:<hex>", self.seq))?;
        Ok(Checkpoint {
            seq: self.seq,
            head,
            time: self.time.clone(),
            key_id: self.key_id.clone(),
            signature: self.signature.clone(),
        })
    }
}

/// An audit row with every column, for verification: the hashed `record` JSON and the columns
/// that filters use, which must agree with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub id: String,
    pub time: String,
    pub kind: String,
    pub requester_oin: Option<String>,
    pub source_oin: Option<String>,
    pub subject_pseudonym: Option<String>,
    pub purpose: Option<String>,
    pub decision: Option<String>,
    pub reason: Option<String>,
    pub record: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Signs a checkpoint over (seq, head hash); called inside the append transaction. Shared and
/// owned (`Arc`, `'static`) so that the audit writer can keep it on whichever thread it runs.
pub type CheckpointSign = std::sync::Arc<dyn Fn(i64, Sha256Hash) -> Checkpoint + Send + Sync>;

/// The chain head (`(0, GENESIS)` while the log is empty) and the latest checkpoint's seq (0 when
/// none), from the columns a backend read inside its append transaction.
pub(super) fn chain_head(
    seq: Option<i64>,
    hash: Option<String>,
    checkpointed: Option<i64>,
) -> Result<((i64, Sha256Hash), i64), StoreError> {
    let head = match (seq, hash) {
        (Some(seq), Some(hash)) => (seq, head_hash(seq, &hash)?),
        _ => (0, crate::audit::record::GENESIS),
    };
    Ok((head, checkpointed.unwrap_or(0)))
}

/// The stored hash of audit record `seq`, parsed (a corrupt one is reported, never guessed).
pub(super) fn head_hash(seq: i64, hash: &str) -> Result<Sha256Hash, StoreError> {
    Sha256Hash::parse(hash)
        .ok_or_else(|| StoreError::Corrupt(format!("audit record {seq}: bad hash")))
}

/// What one chained append wrote.
#[derive(Debug, Clone)]
pub struct ChainAppend {
    pub records: Vec<AuditRecord>,
    /// The checkpoint written in the same transaction, when one was due.
    pub checkpoint: Option<Checkpoint>,
}

impl Store {
    /// Append entries as the next records of the one chain, reading and locking its head inside
    /// the transaction (several gateway instances may append); sign a checkpoint in the same
    /// transaction when `every_records` records have accumulated since the last one. On SQLite
    /// this blocks the calling thread until the commit is durable (see
    /// `appends_block_the_caller`).
    pub async fn append_chained(
        &self,
        entries: &[crate::audit::record::AuditEntry],
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

    /// Open an existing database read-only, without migrations (SQLite: the file opened
    /// read-only; PostgreSQL: every transaction read-only).
    pub async fn open_read_only(url: &str) -> Result<Store, StoreError> {
        match super::Backend::of(url)? {
            super::Backend::Sqlite => Ok(Store::Sqlite(
                super::sqlite::SqliteStore::open_read_only(url).await?,
            )),
            super::Backend::Postgres => Ok(Store::Postgres(
                super::postgres::PgStore::open_read_only(url).await?,
            )),
        }
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
