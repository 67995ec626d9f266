//! The chained-append rule, once for both backends: link and hash each record onto the head, sign
//! a checkpoint when one is due, all in one transaction under the chain's write lock. Backends
//! fill in [`ChainTx`]; this file never speaks SQL, never writes without reading the head first.

use policy::Sha256Hash;

use super::decode::head_hash;
use super::error::StoreError;
use crate::audit::checkpoint::Checkpoint;
use crate::audit::record::{AuditEntry, AuditRecord, GENESIS};

/// Signs a checkpoint over (seq, head hash); called inside the append transaction. Shared and
/// owned (`Arc`, `'static`) so that the audit writer can keep it on whichever thread it runs.
pub type CheckpointSign = std::sync::Arc<dyn Fn(i64, Sha256Hash) -> Checkpoint + Send + Sync>;

/// What one chained append wrote.
#[derive(Debug, Clone)]
pub struct ChainAppend {
    pub records: Vec<AuditRecord>,
    /// The checkpoint written in the same transaction, when one was due.
    pub checkpoint: Option<Checkpoint>,
}

/// The columns a backend reads for the head, inside its transaction: the last record's `seq` and
/// `hash` (`None` while the log is empty) and the highest checkpointed `seq` (`None` when none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct HeadColumns {
    pub seq: Option<i64>,
    pub hash: Option<String>,
    pub checkpointed: Option<i64>,
}

/// One backend transaction that holds the chain's write lock from its start until `commit` or
/// `rollback` (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: `LOCK TABLE audit_log IN EXCLUSIVE MODE`),
/// so that every writer on the database extends the one chain. Dropped without either, it rolls
/// back. The primitives store and read what they are given; they decide nothing.
pub(super) trait ChainTx: Sized {
    /// The head and the latest checkpoint's seq, as the previous lock holder committed them.
    async fn head(&mut self) -> Result<HeadColumns, StoreError>;
    /// Insert records that are already chained, in order.
    async fn insert_records(&mut self, records: &[AuditRecord]) -> Result<(), StoreError>;
    async fn insert_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), StoreError>;
    async fn commit(self) -> Result<(), StoreError>;
    async fn rollback(self) -> Result<(), StoreError>;
}

/// The chain as the transaction found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    /// The last record's seq, 0 while the log is empty.
    seq: i64,
    /// The last record's hash, [`GENESIS`] while the log is empty.
    hash: Sha256Hash,
    /// The seq the latest checkpoint covers, 0 when there is none.
    checkpointed: i64,
}

impl Head {
    /// The head the columns name; a stored hash that does not parse is reported, never guessed.
    fn parse(columns: HeadColumns) -> Result<Head, StoreError> {
        let (seq, hash) = match (columns.seq, columns.hash) {
            (Some(seq), Some(hash)) => (seq, head_hash(seq, &hash)?),
            _ => (0, GENESIS),
        };
        Ok(Head {
            seq,
            hash,
            checkpointed: columns.checkpointed.unwrap_or(0),
        })
    }
}

/// `entries` as the records after (`seq`, `hash`): each at the next seq, linked to the hash of
/// the record before it.
fn link(mut seq: i64, mut prev: Sha256Hash, entries: &[AuditEntry]) -> Vec<AuditRecord> {
    let mut scratch = Vec::with_capacity(1024);
    entries
        .iter()
        .map(|entry| {
            seq += 1;
            let record = AuditRecord::chain_with(seq, entry.clone(), prev, &mut scratch);
            prev = record.hash;
            record
        })
        .collect()
}

/// Whether a checkpoint is due at head `seq`: `every_records` records or more since the one at
/// `checkpointed`.
fn checkpoint_due(seq: i64, checkpointed: i64, every_records: i64) -> bool {
    seq - checkpointed >= every_records
}

/// Append `entries` as the next records of the chain in `tx`: read the head, link and hash each
/// record onto it, insert them, and when a checkpoint is due sign the new head and insert the
/// checkpoint too. Commits only when every step succeeded; on an error `tx` is dropped, so
/// nothing of the append is kept.
pub(super) async fn append(
    mut tx: impl ChainTx,
    entries: &[AuditEntry],
    every_records: i64,
    sign: &CheckpointSign,
) -> Result<ChainAppend, StoreError> {
    let head = Head::parse(tx.head().await?)?;
    let records = link(head.seq, head.hash, entries);
    tx.insert_records(&records).await?;
    let (seq, hash) = records
        .last()
        .map_or((head.seq, head.hash), |r| (r.seq, r.hash));
    let checkpoint = checkpoint_due(seq, head.checkpointed, every_records).then(|| sign(seq, hash));
    if let Some(cp) = &checkpoint {
        tx.insert_checkpoint(cp).await?;
    }
    tx.commit().await?;
    Ok(ChainAppend {
        records,
        checkpoint,
    })
}

/// Sign the head in `tx` when records exist that no checkpoint covers yet (the lock held, so the
/// head cannot move and two writers cannot both sign it); otherwise roll back.
pub(super) async fn checkpoint_head(
    mut tx: impl ChainTx,
    sign: &CheckpointSign,
) -> Result<Option<Checkpoint>, StoreError> {
    let head = Head::parse(tx.head().await?)?;
    if head.seq <= head.checkpointed {
        tx.rollback().await?;
        return Ok(None);
    }
    let cp = sign(head.seq, head.hash);
    tx.insert_checkpoint(&cp).await?;
    tx.commit().await?;
    Ok(Some(cp))
}

/// Insert records the caller already chained (tests and imports), under the chain's lock, so
/// that they cannot interleave with another writer's chained append.
pub(super) async fn insert_chained(
    mut tx: impl ChainTx,
    records: &[AuditRecord],
) -> Result<(), StoreError> {
    tx.insert_records(records).await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::sync::Arc;

    use futures_util::FutureExt;

    use super::*;
    use crate::audit::checkpoint::CheckpointSigner;

    /// A log in memory: what a backend committed.
    #[derive(Debug, Default)]
    struct Log {
        records: Vec<AuditRecord>,
        checkpoints: Vec<Checkpoint>,
        /// Fail the insert of the record with this id.
        refuse_id: Option<String>,
    }

    /// A transaction over [`Log`] that keeps its writes apart until `commit`.
    struct MemoryTx {
        log: Rc<RefCell<Log>>,
        records: Vec<AuditRecord>,
        checkpoints: Vec<Checkpoint>,
    }

    impl MemoryTx {
        fn begin(log: &Rc<RefCell<Log>>) -> MemoryTx {
            MemoryTx {
                log: log.clone(),
                records: Vec::new(),
                checkpoints: Vec::new(),
            }
        }
    }

    impl ChainTx for MemoryTx {
        async fn head(&mut self) -> Result<HeadColumns, StoreError> {
            let log = self.log.borrow();
            let last = log.records.last();
            Ok(HeadColumns {
                seq: last.map(|r| r.seq),
                hash: last.map(|r| r.hash.to_string()),
                checkpointed: log.checkpoints.iter().map(|c| c.seq).max(),
            })
        }
        async fn insert_records(&mut self, records: &[AuditRecord]) -> Result<(), StoreError> {
            let refuse = self.log.borrow().refuse_id.clone();
            if records.iter().any(|r| Some(&r.entry.id) == refuse.as_ref()) {
                return Err(StoreError::Duplicate);
            }
            self.records.extend_from_slice(records);
            Ok(())
        }
        async fn insert_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
            self.checkpoints.push(checkpoint.clone());
            Ok(())
        }
        async fn commit(self) -> Result<(), StoreError> {
            let mut log = self.log.borrow_mut();
            log.records.extend(self.records);
            log.checkpoints.extend(self.checkpoints);
            Ok(())
        }
        async fn rollback(self) -> Result<(), StoreError> {
            Ok(())
        }
    }

    fn entries(ids: &[&str]) -> Vec<AuditEntry> {
        ids.iter()
            .map(|id| AuditEntry {
                id: (*id).into(),
                ..Default::default()
            })
            .collect()
    }

    fn signing() -> CheckpointSign {
        let signer = Arc::new(CheckpointSigner::generate().unwrap());
        Arc::new(move |seq, head| signer.sign(seq, head, "2026-11-25T00:00:00Z".into()))
    }

    fn append_now(
        log: &Rc<RefCell<Log>>,
        ids: &[&str],
        every_records: i64,
        sign: &CheckpointSign,
    ) -> Result<ChainAppend, StoreError> {
        append(MemoryTx::begin(log), &entries(ids), every_records, sign)
            .now_or_never()
            .unwrap()
    }

    #[test]
    fn records_link_onto_the_head_and_hash_as_audit_record_chain_does() {
        let log = Rc::default();
        let sign = signing();
        append_now(&log, &["a", "b"], 100, &sign).unwrap();
        let next = append_now(&log, &["c"], 100, &sign).unwrap();
        let log = log.borrow();
        let mut prev = GENESIS;
        for (i, r) in log.records.iter().enumerate() {
            let expected = AuditRecord::chain(i as i64 + 1, r.entry.clone(), prev);
            assert_eq!(*r, expected);
            prev = r.hash;
        }
        assert_eq!(next.records, log.records[2..]);
    }

    #[test]
    fn a_checkpoint_covers_the_new_head_once_every_records_are_uncovered() {
        let log = Rc::default();
        let sign = signing();
        let first = append_now(&log, &["a", "b"], 3, &sign).unwrap();
        assert!(first.checkpoint.is_none());
        let second = append_now(&log, &["c", "d"], 3, &sign).unwrap();
        let cp = second.checkpoint.expect("due at 4 records since 0");
        assert_eq!((cp.seq, cp.head), (4, second.records[1].hash));
        let third = append_now(&log, &["e", "f"], 3, &sign).unwrap();
        assert!(third.checkpoint.is_none(), "2 records since the one at 4");
        assert_eq!(log.borrow().checkpoints, [cp]);
    }

    #[test]
    fn a_failed_insert_commits_nothing() {
        let log: Rc<RefCell<Log>> = Rc::default();
        let sign = signing();
        append_now(&log, &["a"], 100, &sign).unwrap();
        log.borrow_mut().refuse_id = Some("c".into());
        assert!(append_now(&log, &["b", "c"], 1, &sign).is_err());
        let log = log.borrow();
        assert_eq!(log.records.len(), 1);
        assert!(log.checkpoints.is_empty());
    }

    #[test]
    fn checkpoint_head_signs_only_records_no_checkpoint_covers() {
        let log = Rc::default();
        let sign = signing();
        let now = |log| {
            checkpoint_head(MemoryTx::begin(log), &sign)
                .now_or_never()
                .unwrap()
        };
        assert!(
            now(&log).unwrap().is_none(),
            "an empty log has nothing to sign"
        );
        let appended = append_now(&log, &["a", "b"], 100, &sign).unwrap();
        let cp = now(&log).unwrap().expect("two uncovered records");
        assert_eq!((cp.seq, cp.head), (2, appended.records[1].hash));
        assert!(now(&log).unwrap().is_none(), "the head is covered");
    }

    #[test]
    fn a_head_hash_that_does_not_parse_is_corrupt() {
        let head = Head::parse(HeadColumns {
            seq: Some(7),
            hash: Some("sha256:zz".into()),
            checkpointed: None,
        });
        assert!(matches!(head, Err(StoreError::Corrupt(_))), "{head:?}");
        let empty = Head::parse(HeadColumns::default()).unwrap();
        assert_eq!((empty.seq, empty.hash, empty.checkpointed), (0, GENESIS, 0));
    }
}
