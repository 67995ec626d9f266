//! The one error of the use-cases: every way an act can be refused or fail, each with its stable
//! `reason` (DESIGN.md §3). No HTTP here: `http::problem` alone maps these to statuses and
//! problem details. Messages name fields and rules, never a value or a BSN.

use std::time::Duration;

use policy::{CovenantProblem, HandoverRefusal, Oin, RefusalReason, Withheld};

use crate::failure_log::FailureLog;
use crate::upstream::SourceFault;

/// Why a use-case refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("the subject's BSN is not 9 digits passing the 11-check")]
    InvalidBsn,
    #[error("{0}")]
    Malformed(String),
    /// A disclosure request that names no field: the caller must say what it needs (there is no
    /// "give me everything"). Refused before any decision or read.
    #[error(
        "name the fields you need in `fields` (at least one): nothing is released without them"
    )]
    FieldsRequired,
    #[error("{}", refusal_text(*.reason))]
    Refused {
        reason: RefusalReason,
        disclosure_id: String,
        withheld: Vec<Withheld>,
    },
    #[error("the consent token is not acceptable: {0}")]
    InvalidConsentToken(String),
    /// Issue 16: an actor assertion was sent and is not acceptable.
    #[error("{0}")]
    InvalidActorAssertion(crate::actor::ActorError),
    #[error("only the issuer of a consent may register or revoke it")]
    NotConsentIssuer,
    #[error("a consent with this id is already registered")]
    DuplicateConsent,
    #[error("the consent has already been revoked")]
    AlreadyRevoked,
    /// A handover record refused by `policy::accept_handover` or for want of consent.
    #[error(transparent)]
    Handover(HandoverRefusal),
    #[error("a bearer token is required")]
    Unauthorized,
    #[error("this role may not do this")]
    Forbidden,
    #[error("the covenant document is not valid: {}", summary(.0))]
    InvalidCovenant(Vec<CovenantProblem>),
    #[error("{0}")]
    VersionConflict(String),
    #[error("the covenant is terminated; termination is final")]
    Terminated,
    #[error("{0}")]
    InvalidTransition(&'static str),
    #[error(
        "the signature is not a detached compact JWS (header..signature) of a covenant signature"
    )]
    SignatureMalformed,
    #[error("{0}")]
    SignatureInvalid(String),
    #[error("{0} is not a party to this covenant version")]
    NotAParty(Oin),
    #[error("key `{0}` is not a registered covenant key of the signing party")]
    UnknownKey(String),
    #[error("no such resource")]
    NotFound,
    #[error("the audit log cannot be written; nothing was released or changed")]
    AuditUnavailable,
    #[error("a dependency of the gateway is unavailable; nothing was released or changed")]
    Unavailable,
    #[error("internal error")]
    Internal,
    /// Live disclosure (issue 18): the source's own service gave no usable answer. Audited; the
    /// request released nothing.
    #[error("{}", source_text(*.fault))]
    Source {
        fault: SourceFault,
        disclosure_id: String,
    },
}

fn source_text(fault: SourceFault) -> &'static str {
    match fault {
        SourceFault::Unavailable => {
            "the source's service could not be reached or refused the query; nothing was released"
        }
        SourceFault::Timeout => {
            "the source's service did not answer in time; nothing was released"
        }
        SourceFault::InvalidAnswer => {
            "the source's service gave an answer that could not be checked (malformed, about another subject, or a value of the wrong type); nothing was released"
        }
    }
}

impl OpError {
    /// The stable `reason` string (also written to the audit record of a refused act).
    pub fn reason(&self) -> &'static str {
        use OpError::*;
        match self {
            InvalidBsn => "invalid-bsn",
            Malformed(_) => "malformed-request",
            FieldsRequired => "fields-required",
            Refused { reason, .. } => reason.as_str(),
            InvalidConsentToken(_) => "invalid-consent-token",
            InvalidActorAssertion(_) => "invalid-actor-assertion",
            NotConsentIssuer => "not-consent-issuer",
            DuplicateConsent => "duplicate-consent",
            AlreadyRevoked => "consent-revoked",
            Handover(refusal) => refusal.reason().as_str(),
            Unauthorized => "unauthorized",
            Forbidden => "forbidden",
            InvalidCovenant(_) => "invalid-covenant",
            VersionConflict(_) => "version-conflict",
            Terminated => "covenant-terminated",
            InvalidTransition(_) => "invalid-transition",
            SignatureMalformed => "signature-malformed",
            SignatureInvalid(_) => "signature-invalid",
            NotAParty(_) => "not-a-party",
            UnknownKey(_) => "unknown-key",
            NotFound => "not-found",
            AuditUnavailable => "audit-unavailable",
            Unavailable => "unavailable",
            Internal => "internal",
            Source { fault, .. } => fault.reason(),
        }
    }
}

/// What a refusal means, in words a caller's operator understands.
fn refusal_text(reason: RefusalReason) -> &'static str {
    match reason {
        RefusalReason::NoActiveCovenant => {
            "no covenant in force on this gateway includes your organisation"
        }
        RefusalReason::PurposeNotGranted => {
            "no covenant in force grants your organisation data for this purpose"
        }
        RefusalReason::ConsentRequired => {
            "this purpose needs the client's consent, and no valid consent covers this request"
        }
        RefusalReason::ConsentRevoked => "the client's consent for this purpose has been revoked",
        RefusalReason::ConsentExpired => {
            "the client's consent for this purpose is not valid at this time (expired or not yet valid)"
        }
        RefusalReason::FieldNotGranted => {
            "none of the requested fields may be released to you; `withheld` says why per field"
        }
        RefusalReason::ActorRequired => {
            "the covenant grants this purpose only to named roles: send a valid actor assertion (header `Actor-Token`) for the employee"
        }
        RefusalReason::RoleNotGranted => {
            "the employee in the actor assertion holds none of the roles the covenant grants this purpose to"
        }
    }
}

fn summary(problems: &[CovenantProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<crate::covenant_sig::SignatureError> for OpError {
    fn from(e: crate::covenant_sig::SignatureError) -> Self {
        use crate::covenant_sig::SignatureError;
        match e {
            SignatureError::Malformed => OpError::SignatureMalformed,
            SignatureError::OtherCovenant(other) => OpError::SignatureInvalid(format!(
                "the signature is for {other}, not for this covenant version"
            )),
            SignatureError::NotAParty(oin) => OpError::NotAParty(oin),
            SignatureError::UnknownKey(kid) => OpError::UnknownKey(kid),
            SignatureError::BadSignature | SignatureError::Signing(_) => OpError::SignatureInvalid(
                "the signature does not verify over this covenant version's canonical hash".into(),
            ),
        }
    }
}

/// The database failing under requests (refused `unavailable`): logged when it starts and then
/// once per interval with a count, never once per request (`failure_log`). Readiness reports
/// its end. A static because the failure reaches it through `From`, away from any state.
pub static DATABASE_FAILURES: FailureLog =
    FailureLog::new("database requests", Duration::from_secs(10));

impl From<crate::store::StoreError> for OpError {
    fn from(e: crate::store::StoreError) -> Self {
        DATABASE_FAILURES.failed(&e);
        OpError::Unavailable
    }
}

impl From<crate::auth::AuthError> for OpError {
    fn from(e: crate::auth::AuthError) -> Self {
        match e {
            crate::auth::AuthError::Unauthorized => OpError::Unauthorized,
            crate::auth::AuthError::Forbidden => OpError::Forbidden,
        }
    }
}

impl From<crate::audit::review::ReviewError> for OpError {
    fn from(e: crate::audit::review::ReviewError) -> Self {
        use crate::audit::review::ReviewError;
        match e {
            ReviewError::Forbidden => OpError::Forbidden,
            ReviewError::UnknownParameter { .. } | ReviewError::InvalidParameter { .. } => {
                OpError::Malformed(e.to_string())
            }
            ReviewError::AuditUnavailable => OpError::AuditUnavailable,
            ReviewError::Store(e) => OpError::from(e),
        }
    }
}
