//! Consent tokens: verification of the compact JWS (`typ: consent+jwt`, ES256 or EdDSA, key by
//! `kid` of the issuing party, `aud`/`exp`/`nbf`/`iat` with leeway) into `ConsentClaims`.
//! Error messages never contain claim values (a token carries a BSN).

use jsonwebtoken::{decode, decode_header, Algorithm, Validation};
use policy::ConsentClaims;

use crate::keys::KeyRing;

/// Why a consent token is refused. Each maps to `invalid-consent-token` with this detail, except
/// `IssuerNotCaller` (`not-consent-issuer`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentTokenError {
    #[error("the token is not a well-formed compact JWS")]
    Malformed,
    #[error("the token header must have typ `consent+jwt`")]
    WrongType,
    #[error("the token algorithm is not allowed (only ES256 and EdDSA)")]
    AlgorithmNotAllowed,
    #[error("the token header has no kid, or the kid names no configured consent key")]
    UnknownKey,
    #[error("the token signature does not verify with the key its kid names")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not yet valid")]
    NotYetValid,
    #[error("the token was issued in the future")]
    IssuedInFuture,
    #[error("the token audience is not this gateway")]
    WrongAudience,
    #[error("the token claims are incomplete or invalid (every claim of the consent schema is required)")]
    Claims,
    #[error("the token is signed with a key of another organisation than its issuer")]
    KeyNotOfIssuer,
}

/// Verifies consent tokens against the configured consent keys.
#[derive(Debug, Clone)]
pub struct ConsentVerifier {
    keys: KeyRing,
    audience: String,
    leeway_secs: u64,
}

impl ConsentVerifier {
    pub fn new(keys: KeyRing, audience: String, leeway_secs: u64) -> Self {
        ConsentVerifier {
            keys,
            audience,
            leeway_secs,
        }
    }

    /// Verify `token` at `now` (Unix seconds) and return its claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<ConsentClaims, ConsentTokenError> {
        let header = decode_header(token).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
            | jsonwebtoken::errors::ErrorKind::InvalidAlgorithmName => {
                ConsentTokenError::AlgorithmNotAllowed
            }
            _ => ConsentTokenError::Malformed,
        })?;
        if header.typ.as_deref() != Some("consent+jwt") {
            return Err(ConsentTokenError::WrongType);
        }
        if !matches!(header.alg, Algorithm::ES256 | Algorithm::EdDSA) {
            return Err(ConsentTokenError::AlgorithmNotAllowed);
        }
        let kid = header.kid.as_deref().ok_or(ConsentTokenError::UnknownKey)?;
        let key = self.keys.get(kid).ok_or(ConsentTokenError::UnknownKey)?;
        if key.alg != header.alg {
            return Err(ConsentTokenError::AlgorithmNotAllowed);
        }

        // The validation is built from the key's algorithm, never from the token's header.
        let mut validation = Validation::new(key.alg);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "aud", "iss", "sub"]);
        validation.leeway = self.leeway_secs;
        // `exp` and `nbf` are checked below against the caller's `now` (one clock for all).
        validation.validate_exp = false;
        validation.validate_nbf = false;

        let data = decode::<serde_json::Value>(token, &key.key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => ConsentTokenError::BadSignature,
                K::InvalidAudience => ConsentTokenError::WrongAudience,
                K::InvalidAlgorithm => ConsentTokenError::AlgorithmNotAllowed,
                K::MissingRequiredClaim(_) => ConsentTokenError::Claims,
                K::InvalidToken | K::Base64(_) | K::Json(_) | K::Utf8(_) => {
                    ConsentTokenError::Malformed
                }
                _ => ConsentTokenError::BadSignature,
            }
        })?;
        let claims: ConsentClaims =
            serde_json::from_value(data.claims).map_err(|_| ConsentTokenError::Claims)?;

        let leeway = self.leeway_secs as i64;
        if claims.exp + leeway <= now {
            return Err(ConsentTokenError::Expired);
        }
        if claims.nbf - leeway > now {
            return Err(ConsentTokenError::NotYetValid);
        }
        if claims.iat - leeway > now {
            return Err(ConsentTokenError::IssuedInFuture);
        }
        if claims.aud != self.audience {
            return Err(ConsentTokenError::WrongAudience);
        }
        if claims.iss != key.owner {
            return Err(ConsentTokenError::KeyNotOfIssuer);
        }
        Ok(claims)
    }
}

/// Register a consent token presented by `caller` (must be its issuer): verify, check it refers
/// to a covenant the issuer is a party to, store the claims sealed, audit, answer.
pub async fn register(
    state: &crate::state::AppState,
    caller: policy::Oin,
    token: &str,
    trace: crate::disclosure::TraceIds,
) -> Result<crate::api::ConsentRegistered, crate::http::problem::ApiError> {
    use crate::http::problem::ApiError;
    let now = chrono::Utc::now();
    let claims = state
        .consents
        .verify(token.trim(), now.timestamp())
        .map_err(|e| ApiError::InvalidConsentToken(e.to_string()))?;
    if claims.iss != caller {
        return Err(ApiError::NotConsentIssuer);
    }
    let covenants = state.covenants();
    let known = covenants.entries().iter().any(|e| {
        e.covenant.id == claims.covenant
            && e.covenant.is_party(&claims.iss)
            && claims.recipients.iter().all(|r| e.covenant.is_party(r))
    });
    if !known {
        return Err(ApiError::InvalidConsentToken(
            "the token names a covenant that this gateway does not hold, or organisations that are not its parties".into(),
        ));
    }
    if claims.recipients.is_empty() || claims.fields.is_empty() {
        return Err(ApiError::InvalidConsentToken(
            "the token names no recipient or no field".into(),
        ));
    }
    if let Some(f) = claims
        .fields
        .iter()
        .find(|f| !covenants.catalogue().contains(f))
    {
        return Err(ApiError::InvalidConsentToken(format!(
            "field `{f}` is not in the field catalogue"
        )));
    }

    let pseudonym = state.pseudonymizer.pseudonym(&claims.sub);
    let plaintext = serde_json::to_vec(&claims).map_err(|_| ApiError::Internal)?;
    let sealed = state
        .kek
        .seal(
            crate::disclosure::consent_aad(claims.jti.as_str()).as_bytes(),
            &plaintext,
        )
        .map_err(|_| ApiError::Internal)?;
    let row = crate::store::ConsentRow {
        jti: claims.jti.to_string(),
        issuer_oin: claims.iss.to_string(),
        subject_pseudonym: pseudonym.clone(),
        purpose: claims.purpose.to_string(),
        covenant_id: claims.covenant.to_string(),
        not_before: claims.nbf,
        expires_at: claims.exp,
        registered_at: now.timestamp(),
        revoked_at: None,
        sealed,
    };
    match state.store.insert_consent(&row).await {
        Ok(()) => {}
        Err(crate::store::StoreError::Duplicate) => return Err(ApiError::DuplicateConsent),
        Err(_) => return Err(ApiError::Unavailable),
    }
    state
        .audit
        .append(crate::audit::record::AuditEntry {
            id: crate::crypto::time_ordered_id("cns"),
            kind: Some(crate::audit::record::AuditKind::ConsentRegistered),
            time: crate::disclosure::audit_time(now),
            trace_id: trace.trace_id,
            span_id: trace.span_id,
            requester_oin: Some(caller.to_string()),
            source_oin: Some(caller.to_string()),
            subject_pseudonym: Some(pseudonym),
            purpose: Some(claims.purpose.to_string()),
            consent_id: Some(claims.jti.to_string()),
            fields_released: claims.fields.iter().map(ToString::to_string).collect(),
            decision: Some(crate::audit::record::Outcome::Permit),
            ..Default::default()
        })
        .await
        .map_err(|_| ApiError::AuditUnavailable)?;
    let ts = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    Ok(crate::api::ConsentRegistered {
        consent_id: claims.jti.to_string(),
        purpose: claims.purpose.to_string(),
        recipients: claims.recipients.iter().map(ToString::to_string).collect(),
        fields: claims.fields.iter().map(ToString::to_string).collect(),
        covenant: claims.covenant.to_string(),
        not_before: ts(claims.nbf),
        expires_at: ts(claims.exp),
    })
}

/// Revoke consent `jti` on behalf of `caller` (its issuer). Irreversible; destroys the handover
/// records held only under it in the same transaction.
pub async fn revoke(
    state: &crate::state::AppState,
    caller: policy::Oin,
    jti: &str,
    trace: crate::disclosure::TraceIds,
) -> Result<crate::api::ConsentRevoked, crate::http::problem::ApiError> {
    use crate::http::problem::ApiError;
    let now = chrono::Utc::now();
    let row = state
        .store
        .consent(jti)
        .await
        .map_err(|_| ApiError::Unavailable)?
        .ok_or(ApiError::NotFound)?;
    if row.issuer_oin != caller.as_str() {
        return Err(ApiError::NotConsentIssuer);
    }
    let destroyed = state
        .store
        .revoke_consent(jti, now.timestamp())
        .await
        .map_err(|_| ApiError::Unavailable)?
        .ok_or(ApiError::AlreadyRevoked)?;
    state
        .audit
        .append(crate::audit::record::AuditEntry {
            id: crate::crypto::time_ordered_id("rvk"),
            kind: Some(crate::audit::record::AuditKind::ConsentRevoked),
            time: crate::disclosure::audit_time(now),
            trace_id: trace.trace_id,
            span_id: trace.span_id,
            requester_oin: Some(caller.to_string()),
            source_oin: Some(caller.to_string()),
            subject_pseudonym: Some(row.subject_pseudonym),
            purpose: Some(row.purpose),
            consent_id: Some(row.jti.clone()),
            decision: Some(crate::audit::record::Outcome::Permit),
            reason: Some(format!("handovers-destroyed:{destroyed}")),
            ..Default::default()
        })
        .await
        .map_err(|_| ApiError::AuditUnavailable)?;
    Ok(crate::api::ConsentRevoked {
        consent_id: row.jti,
        revoked_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        handovers_destroyed: destroyed,
    })
}

/// Sign consent claims as a compact JWS (`typ: consent+jwt`) — what an issuer's system does; used
/// by the demo and the tests.
pub fn issue_token(
    claims: &ConsentClaims,
    kid: &str,
    alg: Algorithm,
    key: &jsonwebtoken::EncodingKey,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = jsonwebtoken::Header::new(alg);
    header.typ = Some("consent+jwt".into());
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, key)
}
