//! RFC 9457 problem details: the one place where errors become HTTP statuses and stable `reason`
//! strings. Use-cases return `ops::error::OpError`; this module adds the few failures only HTTP
//! knows (certificates, bodies, methods, time-outs, rates). Details name fields and rules, never
//! values or BSNs.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use policy::{HandoverRefusal, Withheld};
use serde::Serialize;

use crate::auth::{AuthError, HumanClaims, HumanVerifier};
use crate::ops::error::OpError;
use crate::upstream::SourceFault;

/// A field a handover could not store, and why (the `fields` of its problem details).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub problem: String,
}

/// The `reason` of a problem response, attached as a response extension for spans and metrics.
#[derive(Debug, Clone, Copy)]
pub struct Reason(pub &'static str);

/// Every way a request can fail: a use-case's error, or one the HTTP layer finds itself.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Op(#[from] OpError),
    #[error("a client certificate is required for this endpoint")]
    NoClientCertificate,
    #[error("the organisation in the client certificate is not known to this gateway")]
    UnknownOrganisation,
    #[error("the request body is larger than this gateway accepts (limits.max_body_bytes)")]
    PayloadTooLarge,
    #[error("this method is not allowed on this path")]
    MethodNotAllowed,
    #[error("the request took too long")]
    Timeout,
    #[error("your organisation is over its request rate; try again shortly")]
    RateLimited,
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::Op(e.into())
    }
}

impl ApiError {
    /// A malformed request, with a detail that names the place, never the value.
    pub fn malformed(detail: impl Into<String>) -> Self {
        ApiError::Op(OpError::Malformed(detail.into()))
    }

    /// HTTP status, stable reason, and a short title.
    pub fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Op(op) => {
                let (status, title) = op_status(op);
                (status, op.reason(), title)
            }
            ApiError::NoClientCertificate => (
                StatusCode::UNAUTHORIZED,
                "no-client-certificate",
                "Client certificate required",
            ),
            ApiError::UnknownOrganisation => (
                StatusCode::FORBIDDEN,
                "unknown-organisation",
                "Unknown organisation",
            ),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            ApiError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout", "Timeout"),
            ApiError::RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
        }
    }

    /// The stable `reason` string.
    pub fn reason(&self) -> &'static str {
        self.parts().1
    }
}

/// The status and title of each use-case error.
fn op_status(op: &OpError) -> (StatusCode, &'static str) {
    use OpError::*;
    match op {
        InvalidBsn => (StatusCode::BAD_REQUEST, "Invalid BSN"),
        Malformed(_) => (StatusCode::BAD_REQUEST, "Malformed request"),
        FieldsRequired => (StatusCode::BAD_REQUEST, "Fields required"),
        Refused { .. } => (StatusCode::FORBIDDEN, "Disclosure refused"),
        InvalidConsentToken(_) => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid consent token"),
        InvalidActorAssertion(_) => (StatusCode::FORBIDDEN, "Invalid actor assertion"),
        NotConsentIssuer => (StatusCode::FORBIDDEN, "Not the consent issuer"),
        DuplicateConsent => (StatusCode::CONFLICT, "Consent already registered"),
        AlreadyRevoked => (StatusCode::CONFLICT, "Consent already revoked"),
        Handover(HandoverRefusal::Fields { .. }) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Handover record not stored",
        ),
        Handover(_) => (StatusCode::FORBIDDEN, "Handover record not stored"),
        Unauthorized => (StatusCode::UNAUTHORIZED, "Unauthorized"),
        Forbidden => (StatusCode::FORBIDDEN, "Forbidden"),
        InvalidCovenant(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid covenant document",
        ),
        VersionConflict(_) => (StatusCode::CONFLICT, "Version conflict"),
        Terminated => (StatusCode::CONFLICT, "Covenant terminated"),
        InvalidTransition(_) => (StatusCode::CONFLICT, "Invalid transition"),
        SignatureMalformed => (StatusCode::BAD_REQUEST, "Malformed signature"),
        SignatureInvalid(_) | NotAParty(_) | UnknownKey(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "Signature refused")
        }
        NotFound => (StatusCode::NOT_FOUND, "Not found"),
        AuditUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "Audit log unavailable"),
        Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "Service unavailable"),
        Internal => (StatusCode::INTERNAL_SERVER_ERROR, "Internal error"),
        Source {
            fault: SourceFault::Timeout,
            ..
        } => (StatusCode::GATEWAY_TIMEOUT, "Source did not answer in time"),
        Source { .. } => (StatusCode::BAD_GATEWAY, "Source gave no usable answer"),
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
    fields: Option<Vec<FieldProblem>>,
    /// Where a covenant document is invalid, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    problems: Option<Vec<ProblemItem>>,
}

#[derive(Serialize)]
struct ProblemItem {
    path: String,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, reason, title) = self.parts();
        let (mut disclosure_id, mut withheld, mut fields, mut problems) = (None, None, None, None);
        match &self {
            ApiError::Op(OpError::Refused {
                disclosure_id: id,
                withheld: w,
                ..
            }) => {
                disclosure_id = Some(id.as_str());
                withheld = (!w.is_empty()).then_some(w.as_slice());
            }
            ApiError::Op(OpError::Source {
                disclosure_id: id, ..
            }) => disclosure_id = Some(id.as_str()),
            ApiError::Op(OpError::Handover(refusal @ HandoverRefusal::Fields { .. })) => {
                fields = Some(
                    refusal
                        .problems()
                        .iter()
                        .map(|p| FieldProblem {
                            field: p.field.clone(),
                            problem: p.problem.to_owned(),
                        })
                        .collect(),
                )
            }
            ApiError::Op(OpError::InvalidCovenant(list)) => {
                problems = Some(
                    list.iter()
                        .map(|p| ProblemItem {
                            path: p.path.clone(),
                            message: p.message.clone(),
                        })
                        .collect(),
                )
            }
            _ => {}
        }
        let body = ProblemBody {
            type_: format!("https://poortwachter.example/problems/{reason}"),
            title,
            status: status.as_u16(),
            detail: self.to_string(),
            reason,
            disclosure_id,
            withheld,
            fields,
            problems,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        let mut resp = (status, bytes).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        if matches!(self, ApiError::PayloadTooLarge) {
            // The rest of the body is not read: the connection cannot carry another request.
            // HTTP/1.1 closes after this answer (and lingers so the client reads it); HTTP/2 drops
            // the header and resets the stream with NO_ERROR after the answer instead.
            resp.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
        }
        resp.extensions_mut().insert(Reason(reason));
        resp
    }
}

/// The verified person behind the `Authorization: Bearer …` header.
pub fn bearer(humans: &HumanVerifier, headers: &HeaderMap) -> Result<HumanClaims, AuthError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(AuthError::Unauthorized)?;
    humans.verify(token.trim())
}
