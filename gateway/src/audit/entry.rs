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
    /// An organisation presented a consent token for registration and was refused.
    ConsentRegistrationRefused,
    /// An organisation asked to revoke a consent and was refused.
    ConsentRevocationRefused,
    HandoverStored,
    /// A source tried to store a handover record and was refused.
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
            AuditKind::ConsentRegistrationRefused => "consent-registration-refused",
            AuditKind::ConsentRevocationRefused => "consent-revocation-refused",
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

/// What a refused consent token showed that is safe to keep: values the gateway's own
/// configuration knows, or that the issuer's verified signature vouches for — never the token,
/// never a value an unverified token chose, never a claim about the person (SECURITY.md, "What a
/// refused consent token leaves in the audit log").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentTokenFacts {
    /// The header's `alg`, when it is a registered JWS algorithm name (`none` and `HS256`
    /// included: they show a forgery attempt).
    pub alg: Option<String>,
    /// The header's `kid`, when it names a configured consent key.
    pub kid: Option<String>,
    /// The `iss` claim, when the signature verified or it is a configured consent issuer.
    pub iss: Option<String>,
    /// The `jti` claim, only when the signature verified.
    pub jti: Option<String>,
    /// `verified` when the signature verified with the key the `kid` names, else `not-verified`.
    pub signature: String,
    /// Which check the token failed (`bad-signature`, `expired`, `unknown-key`, …); null when the
    /// record's `reason` says it all (`not-consent-issuer`, `duplicate-consent`).
    pub defect: Option<String>,
}

// --- issue 16: the employee behind a call ---

/// The actor assertion of a system call (disclosure, consent, handover), as the record keeps it:
/// whether one was sent and verified, and if so who and in which granted role. Values come only
/// from a verified assertion (the issuer's word), never from a refused one's unverified claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorFacts {
    /// `verified` (a valid assertion came with the call), `none` (none was sent) or `invalid`
    /// (one was sent and refused: the record's reason is `invalid-actor-assertion`).
    pub assertion: String,
    /// The assertion's issuer (`iss`), when its signature verified.
    pub iss: Option<String>,
    /// The pseudonymous employee id (`sub`), when its signature verified.
    pub sub: Option<String>,
    /// The grant's role the employee used, when the grant names roles and one was held.
    pub role: Option<String>,
    /// Which check a refused assertion failed (`bad-signature`, `expired`, `replayed`, …).
    pub defect: Option<String>,
}

impl ActorFacts {
    /// No assertion came with the call.
    pub fn none() -> Self {
        ActorFacts {
            assertion: "none".into(),
            iss: None,
            sub: None,
            role: None,
            defect: None,
        }
    }
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
    /// Only on `consent-registration-refused` records: what the refused token showed. Absent
    /// (not null) on every other record, so that records written before it existed keep their
    /// hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_token: Option<ConsentTokenFacts>,
    pub fields_released: Vec<String>,
    pub fields_withheld: Vec<WithheldName>,
    pub decision: Option<Outcome>,
    pub reason: Option<String>,
    // Logboek Dataverwerkingen (both absent, not null, when there is none, so that records
    // written before they existed keep their hashes):
    /// The register entry of the processing activity the decision fell under (the grant's
    /// `processing_activity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_activity: Option<String>,
    /// The caller's span (W3C `traceparent` parent id) when the request continued the caller's
    /// trace: the foreign operation of the Logboek Dataverwerkingen standard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign_span_id: Option<String>,
    /// Issue 16: on every system call's record (disclosures, consents, handovers, their
    /// refusals) the actor assertion's facts, `{"assertion":"none",…}` when none was sent.
    /// Absent (not null) on other records and on records written before it existed, so those keep
    /// their hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<ActorFacts>,
    /// Live disclosure (issue 18): present only on disclosures under a live grant; absent (not
    /// null) on every other record, so that older records keep their hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveFacts>,
}

/// What a live disclosure adds to its audit record: the fields the source sent without being
/// asked (names only; the values were dropped, never kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LiveFacts {
    pub over_delivered: Vec<String>,
}
