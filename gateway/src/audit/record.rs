//! The audit record: an entry placed in the chain (its `seq`, the previous record's hash and its
//! own). The hash is computed by [`super::canonical`] over the entry types of [`super::entry`],
//! which are re-exported here; nothing here writes or reads storage.

use policy::Sha256Hash;
use serde::{Deserialize, Serialize};

pub use super::entry::{
    ActorFacts, AuditEntry, AuditKind, ConsentTokenFacts, LiveFacts, Outcome, WithheldName,
};

/// A record as stored: the entry, its position in the chain and the chain hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
    pub prev_hash: Sha256Hash,
    pub hash: Sha256Hash,
}

/// The hash before the first record.
pub const GENESIS: Sha256Hash = Sha256Hash([0u8; 32]);

impl AuditRecord {
    /// Place `entry` at `seq` after a record whose hash is `prev_hash`.
    pub fn chain(seq: i64, entry: AuditEntry, prev_hash: Sha256Hash) -> Self {
        Self::chain_with(seq, entry, prev_hash, &mut Vec::with_capacity(1024))
    }

    /// [`chain`](Self::chain), encoding into `scratch` (cleared first): a caller that chains a
    /// batch of records allocates one buffer for all of them.
    pub fn chain_with(
        seq: i64,
        entry: AuditEntry,
        prev_hash: Sha256Hash,
        scratch: &mut Vec<u8>,
    ) -> Self {
        let hash = super::canonical::hash_with(seq, &entry, &prev_hash, scratch);
        AuditRecord {
            seq,
            entry,
            prev_hash,
            hash,
        }
    }

    /// SHA-256 of the canonical JSON (sorted keys, no whitespace) of all members but `hash`,
    /// written by the hand-made encoder in [`super::canonical`] (byte-identical to
    /// `policy::canonical_json`, several times faster).
    pub fn compute_hash(seq: i64, entry: &AuditEntry, prev_hash: &Sha256Hash) -> Sha256Hash {
        super::canonical::hash_with(seq, entry, prev_hash, &mut Vec::with_capacity(1024))
    }

    /// Whether the stored hash matches the content.
    pub fn hash_is_valid(&self) -> bool {
        Self::compute_hash(self.seq, &self.entry, &self.prev_hash) == self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chained_records_verify_and_detect_changes() {
        let e = AuditEntry {
            id: "dsc_1".into(),
            kind: Some(AuditKind::Disclosure),
            fields_released: vec!["own_transport".into()],
            ..Default::default()
        };
        let r1 = AuditRecord::chain(1, e.clone(), GENESIS);
        assert!(r1.hash_is_valid());
        let r2 = AuditRecord::chain(2, e, r1.hash);
        assert_eq!(r2.prev_hash, r1.hash);
        let mut tampered = r1.clone();
        tampered.entry.fields_released.push("cv".into());
        assert!(!tampered.hash_is_valid());
    }

    #[test]
    fn record_json_round_trips() {
        let r = AuditRecord::chain(
            7,
            AuditEntry {
                id: "dsc_7".into(),
                decision: Some(Outcome::Refuse),
                reason: Some("consent-required".into()),
                ..Default::default()
            },
            GENESIS,
        );
        let text = serde_json::to_string(&r).unwrap();
        let back: AuditRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        assert!(back.hash_is_valid());
    }
}
