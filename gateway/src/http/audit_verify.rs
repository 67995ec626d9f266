//! `GET /v1/audit/verify` (privacy officers and operators: verify the chain and checkpoints of
//! the live log, including against this gateway's own head) and `GET /v1/audit/checkpoint-key`
//! (public: the key that checks checkpoints offline). Thin: token → role → `AuditLog::verify`.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use serde::Serialize;

use crate::audit::record::Outcome;
use crate::audit::review::{self, Params, Reader, Scope};
use crate::audit::verify::{Head, VerifyOptions};
use crate::audit::verify_sources::SourceError;
use crate::auth::Role;
use crate::http::problem::{bearer, ApiError};
use crate::http::{query_pairs, QueryPairs};
use crate::ops::error::OpError;
use crate::state::AppState;

/// The routes, merged into the v1 router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/audit/verify", get(verify))
        .route("/v1/audit/checkpoint-key", get(checkpoint_key))
}

/// The query parameters of `GET /v1/audit/verify`: `allow_pruned` (accept a log whose oldest
/// records were removed by retention) and `expect_head` (a head kept by the caller,
/// `SEQ:sha256:HEX`, that the log must contain).
pub const VERIFY_QUERY: &[&str] = &["allow_pruned", "expect_head"];

async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let claims = bearer(&state.humans, &headers)?;
    let reader = Reader {
        org: Some(claims.org.clone()),
        person: claims.sub.clone(),
        scope: Scope::All,
    };
    if !(claims.has(Role::PrivacyOfficer) || claims.has(Role::Operator)) {
        return Err(review::refuse(&state, &claims, "audit-verify").await.into());
    }
    let pairs = query_pairs(query)?;
    let q = Params::parse(&pairs, VERIFY_QUERY)?;
    let allow_pruned = match q.get("allow_pruned") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::malformed("query `allow_pruned`: true or false")),
    };
    let expect_head = q
        .get("expect_head")
        .map(str::parse::<Head>)
        .transpose()
        .map_err(|e| ApiError::malformed(format!("query `expect_head`: {e}")))?;
    review::record_read(&state, &reader, "audit-verify", None, Outcome::Permit).await?;
    let options = VerifyOptions {
        allow_pruned_prefix: allow_pruned || state.config.audit.retention_days.prunes(),
        expect_head,
        threads: 0,
    };
    let report = state
        .audit
        .verify(&state.store, options)
        .await
        .map_err(|e| match e {
            SourceError::Store(e) => {
                tracing::error!(error = %e, "the audit log cannot be read for verification");
                ApiError::Op(OpError::Unavailable)
            }
            SourceError::Io(_) | SourceError::Task => ApiError::Op(OpError::Internal),
        })?;
    if let Some(p) = &report.problem {
        tracing::error!(
            kind = p.kind.as_str(),
            seq = p.seq,
            "audit log verification failed"
        );
    }
    let mut resp = Json(report).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The published checkpoint key.
#[derive(Debug, Serialize)]
struct PublishedKey {
    /// RFC 7638 thumbprint: what each checkpoint's `key_id` names.
    key_id: String,
    alg: &'static str,
    /// The raw 32-byte Ed25519 key, standard base64.
    public_key: String,
    /// SPKI PEM, for `poortwachter audit verify --checkpoint-key`.
    public_key_pem: String,
    jwk: Jwk,
    /// Earlier keys still trusted after a rotation (key ids).
    previous_key_ids: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Jwk {
    kty: &'static str,
    crv: &'static str,
    x: String,
    kid: String,
}

async fn checkpoint_key(State(state): State<AppState>) -> Response {
    let key = state.audit.checkpoint_key();
    let body = PublishedKey {
        key_id: key.key_id().to_owned(),
        alg: "EdDSA",
        public_key: base64::engine::general_purpose::STANDARD.encode(key.raw()),
        public_key_pem: key.to_pem(),
        jwk: Jwk {
            kty: "OKP",
            crv: "Ed25519",
            x: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.raw()),
            kid: key.key_id().to_owned(),
        },
        previous_key_ids: state
            .audit
            .checkpoint_keys()
            .keys()
            .iter()
            .skip(1)
            .map(|k| k.key_id().to_owned())
            .collect(),
    };
    Json(body).into_response()
}
