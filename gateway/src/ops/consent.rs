//! Consent acts of an issuing organisation: register a verified consent token (sealed, audited)
//! and revoke one (destroying the handover records held under it), plus opening the sealed
//! consents of one subject for a decision. A refused registration or revocation is audited too,
//! with only what is safe to keep of the token (`consent_token::TokenFacts`). Never logs a token,
//! a claim value or a BSN.

use chrono::{DateTime, Utc};
use policy::{admit_consent, ConsentBook, ConsentInadmissible, ConsentRecord, Oin};

use crate::api::{ConsentRegistered, ConsentRevoked};
use crate::audit::record::{AuditEntry, AuditKind, ConsentTokenFacts, Outcome};
use crate::consent_token::TokenFacts;
use crate::crypto::{consent_aad, time_ordered_id};
use crate::ops::error::OpError;
use crate::ops::{actor_facts, append_durable, check_actor, refuse_audited};
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

/// The audit record of a refused registration: the caller, the reason, the failed check and what
/// the token showed that is safe to keep; the subject (as pseudonym) and purpose only when the
/// issuer's signature vouches for them.
fn registration_refused(
    state: &AppState,
    caller: &Oin,
    facts: &TokenFacts,
    defect: Option<&str>,
    refused: &OpError,
    now: DateTime<Utc>,
    trace: TraceIds,
) -> AuditEntry {
    let claims = facts.claims.as_ref();
    let purpose = claims.map(|c| c.purpose.to_string());
    state.metrics.decision(
        "consent-registration",
        purpose.as_deref().unwrap_or(""),
        "refuse",
        refused.reason(),
    );
    AuditEntry {
        id: time_ordered_id("cns"),
        kind: Some(AuditKind::ConsentRegistrationRefused),
        time: audit_time(now),
        trace_id: trace.trace_id,
        span_id: trace.span_id,
        foreign_span_id: trace.foreign_span_id,
        requester_oin: Some(caller.to_string()),
        // The consent's issuer, so that its privacy officer sees who presented its consents.
        source_oin: facts.iss.as_ref().map(ToString::to_string),
        subject_pseudonym: claims.map(|c| state.pseudonymizer.pseudonym(&c.sub)),
        purpose,
        consent_token: Some(ConsentTokenFacts {
            alg: facts.alg.map(str::to_owned),
            kid: facts.kid.clone(),
            iss: facts.iss.as_ref().map(ToString::to_string),
            jti: claims.map(|c| c.jti.to_string()),
            signature: if facts.signature_verified {
                "verified"
            } else {
                "not-verified"
            }
            .to_owned(),
            defect: defect.map(str::to_owned),
        }),
        decision: Some(Outcome::Refuse),
        reason: Some(refused.reason().to_owned()),
        ..Default::default()
    }
}

/// The failed check of an inadmissible consent, for the audit record (none where the reason says
/// it all).
pub fn inadmissible_defect(e: &ConsentInadmissible) -> Option<&'static str> {
    match e {
        ConsentInadmissible::IssuerNotCaller => None,
        ConsentInadmissible::UnknownCovenantOrParties => Some("unknown-covenant-or-parties"),
        ConsentInadmissible::NoRecipientOrField => Some("no-recipient-or-field"),
        ConsentInadmissible::FieldNotInCatalogue(_) => Some("field-not-in-catalogue"),
    }
}

/// Register a consent token presented by `caller` (must be its issuer): verify, check it refers
/// to a covenant the issuer is a party to, store the claims sealed, audit, answer. A refusal is
/// audited before it is answered.
pub async fn register(
    state: &AppState,
    caller: Oin,
    token: &str,
    actor_token: Option<&str>,
    trace: TraceIds,
) -> Result<ConsentRegistered, OpError> {
    let now = Utc::now();
    // Issue 16: every record of this call keeps its actor; a sent assertion must be valid.
    let facts_of_actor = match check_actor(state, &caller, actor_token, now.timestamp()) {
        Ok(actor) => actor_facts(actor.as_ref(), None),
        Err(refusal) => {
            let (refused, facts) = *refusal;
            let mut entry = registration_refused(
                state,
                &caller,
                &TokenFacts::default(),
                None,
                &refused,
                now,
                trace,
            );
            entry.consent_token = None;
            entry.actor = Some(facts);
            return Err(refuse_audited(state, entry, refused).await);
        }
    };
    let with_actor = |mut entry: AuditEntry| {
        entry.actor = Some(facts_of_actor.clone());
        entry
    };
    let (verdict, facts) = state
        .consents
        .verify_detailed(token.trim(), now.timestamp());
    let claims = match verdict {
        Ok(claims) => claims,
        Err(e) => {
            let refused = OpError::InvalidConsentToken(e.to_string());
            let entry = with_actor(registration_refused(
                state,
                &caller,
                &facts,
                Some(e.as_str()),
                &refused,
                now,
                trace,
            ));
            return Err(refuse_audited(state, entry, refused).await);
        }
    };
    // May this consent be registered at all (issuer, covenant and parties, recipients, fields):
    // policy's rule.
    if let Err(e) = admit_consent(&claims, &caller, &state.covenants()) {
        let defect = inadmissible_defect(&e);
        let refused = match e {
            ConsentInadmissible::IssuerNotCaller => OpError::NotConsentIssuer,
            other => OpError::InvalidConsentToken(other.to_string()),
        };
        let entry = with_actor(registration_refused(
            state, &caller, &facts, defect, &refused, now, trace,
        ));
        return Err(refuse_audited(state, entry, refused).await);
    }

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
        Err(StoreError::Duplicate) => {
            let refused = OpError::DuplicateConsent;
            let entry = with_actor(registration_refused(
                state, &caller, &facts, None, &refused, now, trace,
            ));
            return Err(refuse_audited(state, entry, refused).await);
        }
        Err(e) => return Err(OpError::from(e)),
    }
    state.metrics.decision(
        "consent-registration",
        claims.purpose.as_str(),
        "permit",
        "",
    );
    append_durable(
        state,
        with_actor(AuditEntry {
            id: time_ordered_id("cns"),
            kind: Some(AuditKind::ConsentRegistered),
            time: audit_time(now),
            trace_id: trace.trace_id,
            span_id: trace.span_id,
            foreign_span_id: trace.foreign_span_id,
            requester_oin: Some(caller.to_string()),
            source_oin: Some(caller.to_string()),
            subject_pseudonym: Some(pseudonym),
            purpose: Some(claims.purpose.to_string()),
            consent_id: Some(claims.jti.to_string()),
            fields_released: claims.fields.iter().map(ToString::to_string).collect(),
            decision: Some(Outcome::Permit),
            ..Default::default()
        }),
    )
    .await?;
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

/// The audit record of a refused revocation of the consent `row`. The subject's pseudonym only
/// when the caller issued the consent: the record is visible to the caller's privacy officer,
/// and a consent of another organisation is none of its business (the issuer's officer finds the
/// consent by `consent_id`).
fn revocation_refused(
    state: &AppState,
    caller: &Oin,
    row: &ConsentRow,
    refused: &OpError,
    now: DateTime<Utc>,
    trace: TraceIds,
) -> AuditEntry {
    state.metrics.decision(
        "consent-revocation",
        &row.purpose,
        "refuse",
        refused.reason(),
    );
    let own = row.issuer_oin == caller.as_str();
    AuditEntry {
        id: time_ordered_id("rvk"),
        kind: Some(AuditKind::ConsentRevocationRefused),
        time: audit_time(now),
        trace_id: trace.trace_id,
        span_id: trace.span_id,
        foreign_span_id: trace.foreign_span_id,
        requester_oin: Some(caller.to_string()),
        source_oin: Some(row.issuer_oin.clone()),
        subject_pseudonym: own.then(|| row.subject_pseudonym.clone()),
        purpose: Some(row.purpose.clone()),
        consent_id: Some(row.jti.clone()),
        decision: Some(Outcome::Refuse),
        reason: Some(refused.reason().to_owned()),
        ..Default::default()
    }
}

/// Revoke consent `jti` on behalf of `caller` (its issuer). Irreversible; destroys the handover
/// records held only under it in the same transaction.
pub async fn revoke(
    state: &AppState,
    caller: Oin,
    jti: &str,
    actor_token: Option<&str>,
    trace: TraceIds,
) -> Result<ConsentRevoked, OpError> {
    let now = Utc::now();
    let row = state
        .store
        .consent(jti)
        .await
        .map_err(OpError::from)?
        .ok_or(OpError::NotFound)?;
    // Issue 16: every record of this call keeps its actor; a sent assertion must be valid.
    let facts_of_actor = match check_actor(state, &caller, actor_token, now.timestamp()) {
        Ok(actor) => actor_facts(actor.as_ref(), None),
        Err(refusal) => {
            let (refused, facts) = *refusal;
            let mut entry = revocation_refused(state, &caller, &row, &refused, now, trace);
            entry.actor = Some(facts);
            return Err(refuse_audited(state, entry, refused).await);
        }
    };
    let with_actor = |mut entry: AuditEntry| {
        entry.actor = Some(facts_of_actor.clone());
        entry
    };
    if row.issuer_oin != caller.as_str() {
        let refused = OpError::NotConsentIssuer;
        let entry = with_actor(revocation_refused(
            state, &caller, &row, &refused, now, trace,
        ));
        return Err(refuse_audited(state, entry, refused).await);
    }
    let Some(destroyed) = state
        .store
        .revoke_consent(jti, now.timestamp())
        .await
        .map_err(OpError::from)?
    else {
        let refused = OpError::AlreadyRevoked;
        let entry = with_actor(revocation_refused(
            state, &caller, &row, &refused, now, trace,
        ));
        return Err(refuse_audited(state, entry, refused).await);
    };
    state
        .metrics
        .decision("consent-revocation", &row.purpose, "permit", "");
    append_durable(
        state,
        with_actor(AuditEntry {
            id: time_ordered_id("rvk"),
            kind: Some(AuditKind::ConsentRevoked),
            time: audit_time(now),
            trace_id: trace.trace_id,
            span_id: trace.span_id,
            foreign_span_id: trace.foreign_span_id,
            requester_oin: Some(caller.to_string()),
            source_oin: Some(caller.to_string()),
            subject_pseudonym: Some(row.subject_pseudonym),
            purpose: Some(row.purpose),
            consent_id: Some(row.jti.clone()),
            decision: Some(Outcome::Permit),
            reason: Some(format!("handovers-destroyed:{destroyed}")),
            ..Default::default()
        }),
    )
    .await?;
    Ok(ConsentRevoked {
        consent_id: row.jti,
        revoked_at: api_time(now),
        handovers_destroyed: destroyed,
    })
}
