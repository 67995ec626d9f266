//! The audit record: what was decided, for whom, on what basis — with field *names* only and the
//! subject as a pseudonym. Also its canonical encoding and chain hash.

use policy::Sha256Hash;
use serde::{Deserialize, Serialize};

/// What kind of event a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditKind {
    Disclosure,
    ConsentRegistered,
    ConsentRevoked,
    HandoverStored,
    HandoverRefused,
    HandoverDestroyed,
    AuditRead,
    CovenantAdmin,
    /// Audit records older than the retention period were deleted up to a signed checkpoint.
    AuditPruned,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Disclosure => "disclosure",
            AuditKind::ConsentRegistered => "consent-registered",
            AuditKind::ConsentRevoked => "consent-revoked",
            AuditKind::HandoverStored => "handover-stored",
            AuditKind::HandoverRefused => "handover-refused",
            AuditKind::HandoverDestroyed => "handover-destroyed",
            AuditKind::AuditRead => "audit-read",
            AuditKind::CovenantAdmin => "covenant-admin",
            AuditKind::AuditPruned => "audit-pruned",
        }
    }
}

/// `permit` or `refuse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Permit,
    Refuse,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Permit => "permit",
            Outcome::Refuse => "refuse",
        }
    }
}

/// A withheld field name and why (never a value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithheldName {
    pub field: String,
    pub reason: String,
}

/// The content of an audit record before it is placed in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AuditEntry {
    /// The id returned to the client (`disclosure_id` for disclosures).
    pub id: String,
    pub kind: Option<AuditKind>,
    /// RFC 3339 UTC with microseconds.
    pub time: String,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    /// The calling organisation (from its certificate), or the officer's organisation.
    pub requester_oin: Option<String>,
    /// The person at the requester (`on_behalf_of`, or an officer's `sub`).
    pub requester_person: Option<String>,
    pub source_oin: Option<String>,
    /// HMAC-SHA256 pseudonym of the subject's BSN.
    pub subject_pseudonym: Option<String>,
    pub purpose: Option<String>,
    pub legal_basis: Option<String>,
    /// `id@version#sha256:…`
    pub covenant: Option<String>,
    pub consent_id: Option<String>,
    pub fields_released: Vec<String>,
    pub fields_withheld: Vec<WithheldName>,
    pub decision: Option<Outcome>,
    pub reason: Option<String>,
}

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
        let hash = Self::compute_hash(seq, &entry, &prev_hash);
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
