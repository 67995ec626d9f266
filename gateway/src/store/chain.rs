//! The chained audit append, as the backends share it: what an append returns and how a
//! checkpoint is signed, and the chain head read inside the append transaction. No SQL here.

use policy::Sha256Hash;

use super::decode::head_hash;
use super::error::StoreError;
use crate::audit::checkpoint::Checkpoint;
use crate::audit::record::AuditRecord;

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

/// What one chained append wrote.
#[derive(Debug, Clone)]
pub struct ChainAppend {
    pub records: Vec<AuditRecord>,
    /// The checkpoint written in the same transaction, when one was due.
    pub checkpoint: Option<Checkpoint>,
}
