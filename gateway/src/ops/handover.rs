//! A source stores the record it may hand over (`POST /v1/handovers`). Whether it
//! may, and under which consent the record is held, is `policy`'s (`accept_handover`,
//! `HandoverPlan::held_under`); this use-case reads, seals, stores and audits. Never logs values.

use chrono::Utc;
use policy::{accept_handover, Bsn, Oin, Purpose};

use crate::api::{HandoverBody, HandoverStored};
use crate::audit::record::{AuditEntry, AuditKind, Outcome};
use crate::crypto::handover_aad;
use crate::ops::consent::open_consents;
use crate::ops::error::OpError;
use crate::state::AppState;
use crate::store::HandoverRow;
use crate::telemetry::TraceIds;
use crate::timefmt::{api_time, audit_time};

/// Store the handover record `body` (for its purpose and subject) from `source`.
pub async fn put(
    state: &AppState,
    source: Oin,
    body: HandoverBody,
    trace: TraceIds,
) -> Result<HandoverStored, OpError> {
    let bsn: Bsn = body.subject.bsn;
    let purpose: Purpose = body.purpose;
    if body.fields.is_empty() {
        return Err(OpError::Malformed("fields: give at least one field".into()));
    }
    let now = Utc::now();
    let covenants = state.covenants();
    // Source, catalogue, types and grant: decided by policy before anything is read or stored.
    let plan = accept_handover(
        &source,
        &purpose,
        &body.fields,
        &covenants,
        now.date_naive(),
    )
    .map_err(OpError::Handover)?;

    let pseudonym = state.pseudonymizer.pseudonym(&bsn);
    // Where the grant needs consent, the record is held under the subject's current consent (the
    // one a disclosure of it is decided under) and dies with it.
    let consent_jti = if plan.needs_consent() {
        let rows = state
            .store
            .consents_for_subject(&pseudonym)
            .await
            .map_err(OpError::from)?;
        let book = open_consents(state, rows)?;
        plan.held_under(&book, &bsn, now.timestamp())
            .map_err(OpError::Handover)?
            .map(|jti| jti.to_string())
    } else {
        None
    };

    let plaintext = serde_json::to_vec(&body.fields).map_err(|_| OpError::Internal)?;
    let aad = handover_aad(purpose.as_str(), &pseudonym, source.as_str());
    let sealed = state
        .kek
        .seal(aad.as_bytes(), &plaintext)
        .map_err(|_| OpError::Internal)?;
    let expires_at = now + chrono::Duration::days(i64::from(plan.retention_days()));
    let row = HandoverRow {
        purpose: purpose.to_string(),
        subject_pseudonym: pseudonym.clone(),
        source_oin: source.to_string(),
        covenant_id: plan.entry().covenant.id.to_string(),
        consent_jti: consent_jti.clone(),
        stored_at: now.timestamp(),
        expires_at: expires_at.timestamp(),
        sealed,
    };
    state
        .store
        .put_handover(&row)
        .await
        .map_err(OpError::from)?;

    let fields: Vec<String> = body.fields.keys().cloned().collect();
    state
        .audit
        .append(AuditEntry {
            id: crate::crypto::time_ordered_id("hnd"),
            kind: Some(AuditKind::HandoverStored),
            time: audit_time(now),
            trace_id: trace.trace_id,
            span_id: trace.span_id,
            requester_oin: Some(source.to_string()),
            source_oin: Some(source.to_string()),
            subject_pseudonym: Some(pseudonym),
            purpose: Some(purpose.to_string()),
            legal_basis: Some(plan.legal_basis().as_str().to_owned()),
            covenant: Some(plan.covenant().to_string()),
            consent_id: consent_jti.clone(),
            fields_released: fields.clone(),
            decision: Some(Outcome::Permit),
            ..Default::default()
        })
        .await
        .map_err(|_| OpError::AuditUnavailable)?;

    Ok(HandoverStored {
        purpose: purpose.to_string(),
        fields,
        covenant: plan.covenant().to_string(),
        consent: consent_jti,
        expires_at: api_time(expires_at),
    })
}
