//! The audit entry: what was decided, for whom, on what basis — with field *names* only and the
//! subject as a pseudonym. Plain data; it knows nothing of the chain or of its encoding.

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
