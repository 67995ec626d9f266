//! Consent claims: the payload of a client's signed, purpose-bound consent token, once its
//! signature has been verified elsewhere. This module only models and compares claims.

use serde::{Deserialize, Serialize};

use crate::ids::{Bsn, ConsentId, CovenantId, FieldName, Oin, Purpose};

/// The signed form a consent records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// How consent was obtained, e.g. `signed-paper-form`, `digid-signature`.
    pub method: String,
    /// SHA-256 (hex) of the scanned or signed document.
    pub document_sha256: String,
    /// The adviser (person identifier at the issuer) who recorded it.
    pub recorded_by: String,
}

/// The claims of a consent token (`typ: consent+jwt`). Times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentClaims {
    pub iss: Oin,
    pub sub: Bsn,
    pub aud: String,
    pub jti: ConsentId,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub purpose: Purpose,
    pub recipients: Vec<Oin>,
    pub fields: Vec<FieldName>,
    pub covenant: CovenantId,
    pub evidence: Evidence,
}

impl ConsentClaims {
    /// Whether `now` (Unix seconds) lies within `nbf..exp`.
    pub fn in_validity(&self, now: i64) -> bool {
        self.nbf <= now && now < self.exp
    }

    pub fn names_field(&self, field: &FieldName) -> bool {
        self.fields.contains(field)
    }
}

/// A registered consent and whether its issuer has revoked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub claims: ConsentClaims,
    pub revoked: bool,
}
