//! The row types of the store: what is stored, as the facade hands it out and takes it in. Plain
//! data and the stored text forms of enums; no SQL, no decisions (a row is never judged here,
//! only parsed into the value it claims to be).

use policy::{AdminState, CovenantId, Oin, Sha256Hash};

use super::error::StoreError;
use crate::audit::checkpoint::Checkpoint;
use crate::crypto::Sealed;

/// A registered consent as stored (claims sealed).
#[derive(Debug, Clone)]
pub struct ConsentRow {
    pub jti: String,
    pub issuer_oin: String,
    pub subject_pseudonym: String,
    pub purpose: String,
    pub covenant_id: String,
    pub not_before: i64,
    pub expires_at: i64,
    pub registered_at: i64,
    pub revoked_at: Option<i64>,
    pub sealed: Sealed,
}

/// An encrypted handover record.
#[derive(Debug, Clone)]
pub struct HandoverRow {
    pub purpose: String,
    pub subject_pseudonym: String,
    pub source_oin: String,
    pub covenant_id: String,
    /// The consent the record is held under; destroyed with it on revocation.
    pub consent_jti: Option<String>,
    pub stored_at: i64,
    pub expires_at: i64,
    pub sealed: Sealed,
}

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
    /// Issue 16: the verified actor's `sub` (migration 0007).
    pub actor_sub: Option<String>,
    pub record: String,
    pub prev_hash: String,
    pub hash: String,
}

/// One stored covenant version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CovenantVersionRow {
    pub covenant_id: CovenantId,
    pub version: u32,
    /// Canonical JSON of the covenant version.
    pub document: String,
    /// SHA-256 of `document`, as computed when it was stored.
    pub hash: Sha256Hash,
    pub admin: AdminState,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last change of `admin`.
    pub updated_at: i64,
}

/// One party's stored signature over one covenant version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CovenantSignatureRow {
    pub covenant_id: CovenantId,
    pub version: u32,
    pub party: Oin,
    /// Detached compact JWS.
    pub jws: String,
    /// Unix seconds.
    pub signed_at: i64,
}

/// The text form of an administrative state in the database.
pub(crate) fn admin_text(a: AdminState) -> &'static str {
    match a {
        AdminState::Open => "open",
        AdminState::Suspended => "suspended",
        AdminState::Terminated => "terminated",
    }
}

/// Parse [`admin_text`] back.
pub(crate) fn parse_admin(s: &str) -> Result<AdminState, StoreError> {
    match s {
        "open" => Ok(AdminState::Open),
        "suspended" => Ok(AdminState::Suspended),
        "terminated" => Ok(AdminState::Terminated),
        other => Err(StoreError::Corrupt(format!(
            "covenant admin state `{other}`"
        ))),
    }
}
