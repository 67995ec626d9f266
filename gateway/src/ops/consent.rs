//! Consent acts of an issuing organisation: register a verified consent token (sealed, audited)
//! and revoke one (destroying the handover records held under it), plus opening the sealed
//! consents of one subject for a decision. Never logs a token, a claim value or a BSN.

use chrono::Utc;
use policy::{admit_consent, ConsentBook, ConsentInadmissible, ConsentRecord, Oin};

use crate::api::{ConsentRegistered, ConsentRevoked};
use crate::audit::record::{AuditEntry, AuditKind, Outcome};
use crate::crypto::{consent_aad, time_ordered_id};
use crate::ops::error::OpError;
use crate::state::AppState;
use crate::store::{ConsentRow, StoreError};
use crate::telemetry::TraceIds;
use crate::timefmt::{api_time, api_time_of_secs, audit_time};

/// Decrypt the stored consents of one subject into policy records.
pub fn open_consents(state: &AppState, rows: Vec<ConsentRow>) -> Result<ConsentBook, OpError> {
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let plain = state
            .kek
            .open(consent_aad(&row.jti).as_bytes(), &row.sealed)
            .map_err(|_| OpError::Internal)?;
        let claims = serde_json::from_slice(&plain).map_err(|_| OpError::Internal)?;
        records.push(ConsentRecord {
            claims,
            revoked: row.revoked_at.is_some(),
        });
    }
    Ok(ConsentBook::new(records))
}

/// Register a consent token presented by `caller` (must be its issuer): verify, check it refers
/// to a covenant the issuer is a party to, store the claims sealed, audit, answer.
pub async fn register(
    state: &AppState,
    caller: Oin,
    token: &str,
    trace: TraceIds,
) -> Result<ConsentRegistered, OpError> {
    let now = Utc::now();
    let claims = state
        .consents
        .verify(token.trim(), now.timestamp())
        .map_err(|e| OpError::InvalidConsentToken(e.to_string()))?;
    // May this consent be registered at all (issuer, covenant and parties, recipients, fields):
    // policy's rule.
    admit_consent(&claims, &caller, &state.covenants()).map_err(|e| match e {
        ConsentInadmissible::IssuerNotCaller => OpError::NotConsentIssuer,
        other => OpError::InvalidConsentToken(other.to_string()),
    })?;

    let pseudonym = state.pseudonymizer.pseudonym(&claims.sub);
    let plaintext = serde_json::to_vec(&claims).map_err(|_| OpError::Internal)?;
    let sealed = state
        .kek
        .seal(consent_aad(claims.jti.as_str()).as_bytes(), &plaintext)
        .map_err(|_| OpError::Internal)?;
    let row = ConsentRow {
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
        Err(StoreError::Duplicate) => return Err(OpError::DuplicateConsent),
        Err(e) => return Err(OpError::from(e)),
    }
    state
        .audit
        .append(AuditEntry {
            id: time_ordered_id("cns"),
            kind: Some(AuditKind::ConsentRegistered),
            time: audit_time(now),
            trace_id: trace.trace_id,
            span_id: trace.span_id,
            requester_oin: Some(caller.to_string()),
            source_oin: Some(caller.to_string()),
            subject_pseudonym: Some(pseudonym),
            purpose: Some(claims.purpose.to_string()),
            consent_id: Some(claims.jti.to_string()),
            fields_released: claims.fields.iter().map(ToString::to_string).collect(),
            decision: Some(Outcome::Permit),
            ..Default::default()
        })
        .await
        .map_err(|_| OpError::AuditUnavailable)?;
    Ok(ConsentRegistered {
        consent_id: claims.jti.to_string(),
        purpose: claims.purpose.to_string(),
        recipients: claims.recipients.iter().map(ToString::to_string).collect(),
        fields: claims.fields.iter().map(ToString::to_string).collect(),
        covenant: claims.covenant.to_string(),
        not_before: api_time_of_secs(claims.nbf),
        expires_at: api_time_of_secs(claims.exp),
    })
}

/// Revoke consent `jti` on behalf of `caller` (its issuer). Irreversible; destroys the handover
/// records held only under it in the same transaction.
pub async fn revoke(
    state: &AppState,
    caller: Oin,
    jti: &str,
    trace: TraceIds,
) -> Result<ConsentRevoked, OpError> {
    let now = Utc::now();
    let row = state
        .store
        .consent(jti)
        .await
        .map_err(OpError::from)?
        .ok_or(OpError::NotFound)?;
    if row.issuer_oin != caller.as_str() {
        return Err(OpError::NotConsentIssuer);
    }
    let destroyed = state
        .store
        .revoke_consent(jti, now.timestamp())
        .await
        .map_err(OpError::from)?
        .ok_or(OpError::AlreadyRevoked)?;
    state
        .audit
        .append(AuditEntry {
            id: time_ordered_id("rvk"),
            kind: Some(AuditKind::ConsentRevoked),
            time: audit_time(now),
            trace_id: trace.trace_id,
            span_id: trace.span_id,
            requester_oin: Some(caller.to_string()),
            source_oin: Some(caller.to_string()),
            subject_pseudonym: Some(row.subject_pseudonym),
            purpose: Some(row.purpose),
            consent_id: Some(row.jti.clone()),
            decision: Some(Outcome::Permit),
            reason: Some(format!("handovers-destroyed:{destroyed}")),
            ..Default::default()
        })
        .await
        .map_err(|_| OpError::AuditUnavailable)?;
    Ok(ConsentRevoked {
        consent_id: row.jti,
        revoked_at: api_time(now),
        handovers_destroyed: destroyed,
    })
}
