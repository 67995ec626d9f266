//! A source stores the record it may hand over (`POST /v1/handovers`). Whether it
//! may, and under which consent the record is held, is `policy`'s (`accept_handover`,
//! `HandoverPlan::held_under`); this use-case reads, seals, stores and audits — a refused record
//! as much as a stored one (`handover-refused`, field names only). Never logs values.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use policy::{accept_handover, Bsn, FieldName, Oin, Purpose};

use crate::api::{HandoverBody, HandoverStored};
use crate::audit::record::{ActorFacts, AuditEntry, AuditKind, Outcome, WithheldName};
use crate::crypto::handover_aad;
use crate::ops::consent::open_consents;
use crate::ops::error::OpError;
use crate::ops::{actor_facts, append_durable, check_actor, refuse_audited};
use crate::state::AppState;
use crate::store::HandoverRow;
use crate::telemetry::TraceIds;
use crate::timefmt::{api_time, audit_time};

/// What is known of a handover attempt at the moment it is refused: only what was parsed or
/// decided by then, so that its audit record holds no more than that.
struct Attempt<'a> {
    source: &'a Oin,
    fields: &'a BTreeMap<String, serde_json::Value>,
    now: DateTime<Utc>,
    trace: TraceIds,
    /// The subject's keyed pseudonym.
    pseudonym: String,
    purpose: Purpose,
    /// Once a grant was found: the covenant reference and the legal basis.
    basis: Option<(String, String)>,
    /// Issue 16: the actor assertion's facts.
    actor: ActorFacts,
}

impl Attempt<'_> {
    /// Audit the refusal, then answer `refused` (or `audit-unavailable`).
    async fn refuse(self, state: &AppState, refused: OpError) -> OpError {
        state.metrics.decision(
            "handover",
            self.purpose.as_str(),
            "refuse",
            refused.reason(),
        );
        let (covenant, legal_basis) = self.basis.unzip();
        let entry = AuditEntry {
            id: crate::crypto::time_ordered_id("hnd"),
            kind: Some(AuditKind::HandoverRefused),
            time: audit_time(self.now),
            trace_id: self.trace.trace_id,
            span_id: self.trace.span_id,
            foreign_span_id: self.trace.foreign_span_id,
            requester_oin: Some(self.source.to_string()),
            source_oin: Some(self.source.to_string()),
            subject_pseudonym: Some(self.pseudonym),
            purpose: Some(self.purpose.to_string()),
            legal_basis,
            covenant,
            fields_withheld: not_stored(&refused, self.fields),
            decision: Some(Outcome::Refuse),
            reason: Some(refused.reason().to_owned()),
            actor: Some(self.actor),
            ..Default::default()
        };
        refuse_audited(state, entry, refused).await
    }
}

/// The fields of a refused record and why each was not stored: for a field refusal the offending
/// fields with their own reason; for a refusal of the whole record (`not-a-source`,
/// `consent-required`, `invalid-bsn`, `malformed-request`) every field, with that reason. Names
/// only, and only names that are well-formed field names: any other key is the caller's free text
/// (it might hold a value) and is left out — the record's reason still says why.
fn not_stored(
    refused: &OpError,
    fields: &BTreeMap<String, serde_json::Value>,
) -> Vec<WithheldName> {
    let named = fields.keys().filter(|k| k.parse::<FieldName>().is_ok());
    match refused {
        OpError::Handover(r) if !r.problems().is_empty() => named
            .filter_map(|k| {
                // A well-formed name is at most 64 characters, so policy echoes it unshortened.
                r.problems()
                    .iter()
                    .find(|p| p.field == *k)
                    .map(|p| WithheldName {
                        field: k.clone(),
                        reason: p.reason.as_str().to_owned(),
                    })
            })
            .collect(),
        _ => named
            .map(|k| WithheldName {
                field: k.clone(),
                reason: refused.reason().to_owned(),
            })
            .collect(),
    }
}

/// Store the handover record `body` (for its purpose and subject) from `source`. A refusal is
/// audited before it is answered.
pub async fn put(
    state: &AppState,
    source: Oin,
    body: HandoverBody,
    actor_token: Option<&str>,
    trace: TraceIds,
) -> Result<HandoverStored, OpError> {
    let now = Utc::now();
    // The subject and purpose were parsed at the edge (`SubjectRef`, `Purpose`): a malformed one
    // never reaches this use-case.
    let bsn: Bsn = body.subject.bsn;
    let purpose: Purpose = body.purpose.clone();
    let pseudonym = state.pseudonymizer.pseudonym(&bsn);
    let mut attempt = Attempt {
        source: &source,
        fields: &body.fields,
        now,
        trace: trace.clone(),
        pseudonym: pseudonym.clone(),
        purpose: purpose.clone(),
        basis: None,
        actor: ActorFacts::none(),
    };
    // Issue 16: a sent actor assertion must be valid (refused and audited first).
    let actor = match check_actor(state, &source, actor_token, now.timestamp()) {
        Ok(actor) => actor,
        Err(refusal) => {
            let (refused, facts) = *refusal;
            attempt.actor = facts;
            return Err(attempt.refuse(state, refused).await);
        }
    };
    attempt.actor = actor_facts(actor.as_ref(), None);
    if body.fields.is_empty() {
        let refused = OpError::Malformed("fields: give at least one field".into());
        return Err(attempt.refuse(state, refused).await);
    }
    let covenants = state.covenants();
    // Source, catalogue, types and grant: decided by policy before anything is read or stored.
    let plan = match accept_handover(
        &source,
        &purpose,
        &body.fields,
        &covenants,
        now.date_naive(),
    ) {
        Ok(plan) => plan,
        Err(refusal) => return Err(attempt.refuse(state, OpError::Handover(refusal)).await),
    };
    attempt.basis = Some((
        plan.covenant().to_string(),
        plan.legal_basis().as_str().to_owned(),
    ));

    // Where the grant needs consent, the record is held under the subject's current consent (the
    // one a disclosure of it is decided under) and dies with it.
    let consent_jti = if plan.needs_consent() {
        let rows = state
            .store
            .consents_for_subject(&pseudonym)
            .await
            .map_err(OpError::from)?;
        let book = open_consents(state, rows)?;
        match plan.held_under(&book, &bsn, now.timestamp()) {
            Ok(jti) => jti.map(|jti| jti.to_string()),
            Err(refusal) => return Err(attempt.refuse(state, OpError::Handover(refusal)).await),
        }
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

    state
        .metrics
        .decision("handover", purpose.as_str(), "permit", "");
    let fields: Vec<String> = body.fields.keys().cloned().collect();
    append_durable(
        state,
        AuditEntry {
            id: crate::crypto::time_ordered_id("hnd"),
            kind: Some(AuditKind::HandoverStored),
            time: audit_time(now),
            trace_id: trace.trace_id,
            span_id: trace.span_id,
            foreign_span_id: trace.foreign_span_id,
            requester_oin: Some(source.to_string()),
            source_oin: Some(source.to_string()),
            subject_pseudonym: Some(pseudonym),
            purpose: Some(purpose.to_string()),
            legal_basis: Some(plan.legal_basis().as_str().to_owned()),
            covenant: Some(plan.covenant().to_string()),
            consent_id: consent_jti.clone(),
            fields_released: fields.clone(),
            decision: Some(Outcome::Permit),
            actor: Some(actor_facts(actor.as_ref(), None)),
            ..Default::default()
        },
    )
    .await?;

    Ok(HandoverStored {
        purpose: purpose.to_string(),
        fields,
        covenant: plan.covenant().to_string(),
        consent: consent_jti,
        expires_at: api_time(expires_at),
    })
}
