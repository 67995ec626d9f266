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

impl Store {
    /// Open an existing database read-only, without migrations.
    pub async fn open_read_only(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Store::Sqlite(
                super::sqlite::SqliteStore::open_read_only(url).await?,
            ))
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    /// Append chained records and, when given, a checkpoint over them, in one durable
    /// transaction.
    pub async fn append_audit_checkpointed(
        &self,
        records: &[AuditRecord],
        checkpoint: Option<&Checkpoint>,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.append_audit_checkpointed(records, checkpoint).await,
        }
    }

    /// Store a checkpoint on its own (the timer's).
    pub async fn insert_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.insert_checkpoint(checkpoint).await,
        }
    }

    /// The checkpoint with the highest seq.
    pub async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        match self {
            Store::Sqlite(s) => s.latest_checkpoint().await,
        }
    }

    /// Checkpoint rows with `from <= seq <= to`, in seq order.
    pub async fn audit_checkpoint_rows(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<CheckpointRow>, StoreError> {
        match self {
            Store::Sqlite(s) => s.audit_checkpoint_rows(from, to).await,
        }
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
        match self {
            Store::Sqlite(s) => s.audit_rows(after, limit).await,
        }
    }

    /// How many audit rows there are.
    pub async fn audit_count(&self) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.audit_count().await,
        }
    }

    /// The stored hash of the record at `seq` (the column, not recomputed).
    pub async fn audit_hash_at(&self, seq: i64) -> Result<Option<String>, StoreError> {
        match self {
            Store::Sqlite(s) => s.audit_hash_at(seq).await,
        }
    }
}
