//! RFC 9457 problem details: the one place where errors become HTTP statuses and stable `reason`
//! strings. Details name fields and rules, never values or BSNs.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use policy::{RefusalReason, Withheld};
use serde::Serialize;

/// A field a handover could not store, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub problem: String,
}

/// The `reason` of a problem response, attached as a response extension for spans and metrics.
#[derive(Debug, Clone, Copy)]
pub struct Reason(pub &'static str);

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a client certificate is required for this endpoint")]
    NoClientCertificate,
    #[error("the organisation in the client certificate is not known to this gateway")]
    UnknownOrganisation,
    #[error("the subject's BSN is not 9 digits passing the 11-check")]
    InvalidBsn,
    #[error("{0}")]
    Malformed(String),
    #[error("the request body is larger than this gateway accepts (limits.max_body_bytes)")]
    PayloadTooLarge,
    #[error("{}", refusal_text(*.reason))]
    Refused {
        reason: RefusalReason,
        disclosure_id: String,
        withheld: Vec<Withheld>,
    },
    #[error("the consent token is not acceptable: {0}")]
    InvalidConsentToken(String),
    #[error("only the issuer of a consent may register or revoke it")]
    NotConsentIssuer,
    #[error("a consent with this id is already registered")]
    DuplicateConsent,
    #[error("the consent has already been revoked")]
    AlreadyRevoked,
    #[error("the handover record was not stored: {count} field(s) are not acceptable", count = .fields.len())]
    HandoverFields {
        reason: &'static str,
        fields: Vec<FieldProblem>,
    },
    #[error("{detail}")]
    HandoverRefused {
        reason: &'static str,
        detail: String,
    },
    #[error("no such resource")]
    NotFound,
    #[error("this method is not allowed on this path")]
    MethodNotAllowed,
    #[error("the audit log cannot be written; nothing was released")]
    AuditUnavailable,
    #[error("a dependency of the gateway is unavailable; nothing was released")]
    Unavailable,
    #[error("a bearer token is required")]
    Unauthorized,
    #[error("this role may not do this")]
    Forbidden,
    #[error("the request took too long")]
    Timeout,
    #[error("your organisation is over its request rate; try again shortly")]
    RateLimited,
    #[error("internal error")]
    Internal,
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
    }
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    type_: String,
    title: &'a str,
    status: u16,
    detail: String,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    disclosure_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    withheld: Option<&'a [Withheld]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a [FieldProblem]>,
}

impl ApiError {
    /// HTTP status, stable reason, and a short title.
    pub fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError::*;
        match self {
            NoClientCertificate => (
                StatusCode::UNAUTHORIZED,
                "no-client-certificate",
                "Client certificate required",
            ),
            UnknownOrganisation => (
                StatusCode::FORBIDDEN,
                "unknown-organisation",
                "Unknown organisation",
            ),
            InvalidBsn => (StatusCode::BAD_REQUEST, "invalid-bsn", "Invalid BSN"),
            Malformed(_) => (
                StatusCode::BAD_REQUEST,
                "malformed-request",
                "Malformed request",
            ),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            Refused { reason, .. } => {
                (StatusCode::FORBIDDEN, reason.as_str(), "Disclosure refused")
            }
            InvalidConsentToken(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-consent-token",
                "Invalid consent token",
            ),
            NotConsentIssuer => (
                StatusCode::FORBIDDEN,
                "not-consent-issuer",
                "Not the consent issuer",
            ),
            DuplicateConsent => (
                StatusCode::CONFLICT,
                "duplicate-consent",
                "Consent already registered",
            ),
            AlreadyRevoked => (
                StatusCode::CONFLICT,
                "consent-revoked",
                "Consent already revoked",
            ),
            HandoverFields { reason, .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                reason,
                "Handover record not stored",
            ),
            HandoverRefused { reason, .. } => {
                (StatusCode::FORBIDDEN, reason, "Handover record not stored")
            }
            NotFound => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            AuditUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "audit-unavailable",
                "Audit log unavailable",
            ),
            Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            Forbidden => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout", "Timeout"),
            RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
            Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }

    /// The stable `reason` string.
    pub fn reason(&self) -> &'static str {
        self.parts().1
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, reason, title) = self.parts();
        let (disclosure_id, withheld, fields) = match &self {
            ApiError::Refused {
                disclosure_id,
                withheld,
                ..
            } => (
                Some(disclosure_id.as_str()),
                (!withheld.is_empty()).then_some(withheld.as_slice()),
                None,
            ),
            ApiError::HandoverFields { fields, .. } => (None, None, Some(fields.as_slice())),
            _ => (None, None, None),
        };
        let body = ProblemBody {
            type_: format!("https://poortwachter.example/problems/{reason}"),
            title,
            status: status.as_u16(),
            detail: self.to_string(),
            reason,
            disclosure_id,
            withheld,
            fields,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        let mut resp = (status, bytes).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        resp.extensions_mut().insert(Reason(reason));
        resp
    }
}
