//! `POST /v1/disclosures`: refuse a request that names no field (`fields-required`), decide first (covenant, then consent) — nothing about the subject's
//! record is read before a permit — then read and decrypt, keep exactly the decided fields, make
//! the audit record durable, and only then answer. Never logs a BSN or a value.

use std::collections::BTreeMap;

use chrono::Utc;
use policy::{
    Basis, ConsentBook, Decision, Delivery, DisclosureRequest, Oin, Permit, Purpose, RefusalReason,
    Withheld,
};
use tracing::Instrument;

use crate::api::{BasisView, DisclosureRequestBody, DisclosureResponse, RecordStatus};
use crate::audit::record::{ActorFacts, AuditEntry, AuditKind, LiveFacts, Outcome, WithheldName};
use crate::crypto::{handover_aad, time_ordered_id};
use crate::ops::consent::open_consents;
use crate::ops::error::OpError;
use crate::ops::{actor_facts, append_durable, check_actor, refuse_audited};
use crate::state::AppState;
use crate::telemetry::TraceIds;
use crate::timefmt::audit_time;
use crate::upstream::{Query, SourceFault};

fn withheld_names(withheld: &[Withheld]) -> Vec<WithheldName> {
    withheld
        .iter()
        .map(|w| WithheldName {
            field: w.field.to_string(),
            reason: w.reason.as_str().to_owned(),
        })
        .collect()
}

/// What one disclosure's audit record says, apart from its outcome.
struct Recorded<'a> {
    id: &'a str,
    time: String,
    trace: TraceIds,
    requester: &'a Oin,
    pseudonym: String,
    purpose: &'a Purpose,
    /// Issue 16: the actor assertion's facts (none, verified with the role used, or invalid).
    actor: ActorFacts,
}

impl Recorded<'_> {
    /// The audit entry of this disclosure, decided on `basis` (absent for refusals before a
    /// grant was found).
    fn entry(
        self,
        basis: Option<&Basis>,
        withheld: &[Withheld],
        decision: Outcome,
        reason: Option<RefusalReason>,
        released: Vec<String>,
    ) -> AuditEntry {
        AuditEntry {
            id: self.id.to_owned(),
            kind: Some(AuditKind::Disclosure),
            time: self.time,
            trace_id: self.trace.trace_id,
            span_id: self.trace.span_id,
            requester_oin: Some(self.requester.to_string()),
            requester_person: None,
            source_oin: basis.map(|b| b.source.to_string()),
            subject_pseudonym: Some(self.pseudonym),
            purpose: Some(self.purpose.to_string()),
            legal_basis: basis.map(|b| b.legal_basis.as_str().to_owned()),
            covenant: basis.map(|b| b.covenant.to_string()),
            consent_id: basis.and_then(|b| b.consent.as_ref().map(|c| c.to_string())),
            consent_token: None,
            fields_released: released,
            fields_withheld: withheld_names(withheld),
            decision: Some(decision),
            reason: reason.map(|r| r.as_str().to_owned()),
            processing_activity: basis.and_then(|b| b.processing_activity.clone()),
            foreign_span_id: self.trace.foreign_span_id,
            actor: Some(self.actor),
            live: None,
        }
    }
}

/// Handle one disclosure request from `requester`, with the actor assertion `actor_token` (the
/// `Actor-Token` header) when one was sent.
pub async fn disclose(
    state: &AppState,
    requester: Oin,
    body: DisclosureRequestBody,
    actor_token: Option<&str>,
    trace: TraceIds,
) -> Result<DisclosureResponse, OpError> {
    // Minimisation by default: the caller names what it needs. Refused before anything is
    // decided or read (the request does not depend on who the subject is).
    if body.fields.is_empty() {
        return Err(OpError::FieldsRequired);
    }
    let now = Utc::now();
    let pseudonym = state.pseudonymizer.pseudonym(&body.subject.bsn);
    // Issue 16: a sent actor assertion must be valid; refused (and audited) before anything is
    // decided or read.
    let actor = match check_actor(state, &requester, actor_token, now.timestamp()) {
        Ok(actor) => actor,
        Err(refusal) => {
            let (refused, facts) = *refusal;
            state.metrics.decision(
                "disclosure",
                body.purpose.as_str(),
                "refuse",
                refused.reason(),
            );
            let disclosure_id = time_ordered_id("dsc");
            let mut entry = Recorded {
                id: &disclosure_id,
                time: audit_time(now),
                trace,
                requester: &requester,
                pseudonym,
                purpose: &body.purpose,
                actor: facts,
            }
            .entry(None, &[], Outcome::Refuse, None, Vec::new());
            entry.reason = Some(refused.reason().to_owned());
            return Err(refuse_audited(state, entry, refused).await);
        }
    };
    let covenants = state.covenants();
    let request = DisclosureRequest {
        requester,
        subject: body.subject.bsn,
        purpose: body.purpose.clone(),
        fields: body.fields,
        actor,
    };

    // The subject's consents are read only when the decision depends on them: after the covenant
    // and grant checks pass, and only for a grant that needs consent or a special-category field.
    // A refusal at the covenant step, or a legal-obligation request, reads nothing about the
    // subject.
    let decision_span = tracing::info_span!(
        "decision",
        purpose = %request.purpose,
        outcome = tracing::field::Empty,
        reason = tracing::field::Empty
    );
    // One look at the covenants: the plan finds the grant once and says whether the decision
    // depends on the subject's consents.
    let plan = policy::plan(&request, &covenants, now);
    let book = if plan.needs_consents() {
        let rows = state
            .store
            .consents_for_subject(&pseudonym)
            .instrument(tracing::info_span!(parent: &decision_span, "consent_read"))
            .await
            .map_err(OpError::from)?;
        open_consents(state, rows)?
    } else {
        ConsentBook::default()
    };
    let decision = decision_span.in_scope(|| plan.decide(&book));
    let actor = actor_facts(request.actor.as_ref(), plan.role_used());

    let outcome = if decision.is_permit() {
        "permit"
    } else {
        "refuse"
    };
    decision_span.record("outcome", outcome);
    if let Some(r) = decision.refusal_reason() {
        decision_span.record("reason", r.as_str());
    }
    drop(decision_span);
    state.metrics.decision(
        "disclosure",
        request.purpose.as_str(),
        outcome,
        decision.refusal_reason().map(|r| r.as_str()).unwrap_or(""),
    );
    let disclosure_id = time_ordered_id("dsc");
    let recorded = Recorded {
        id: &disclosure_id,
        time: audit_time(now),
        trace,
        requester: &request.requester,
        pseudonym: pseudonym.clone(),
        purpose: &request.purpose,
        actor,
    };

    let permit = match decision {
        Decision::Refuse(refusal) => {
            let entry = recorded.entry(
                refusal.basis.as_ref(),
                &refusal.withheld,
                Outcome::Refuse,
                Some(refusal.reason),
                Vec::new(),
            );
            append_durable(state, entry).await?;
            return Err(OpError::Refused {
                reason: refusal.reason,
                disclosure_id,
                withheld: refusal.withheld,
            });
        }
        Decision::Permit(p) => p,
    };

    // Authorised: now, and only now, read the record: live from the source's own service under
    // a live grant (issue 18), else from the handover store.
    if permit.basis.delivery == Delivery::Live {
        let id = disclosure_id.clone();
        return disclose_live(state, &request, permit, recorded, id, now).await;
    }
    let source = permit.basis.source.to_string();
    let row = state
        .store
        .handover(request.purpose.as_str(), &pseudonym, &source)
        .instrument(tracing::info_span!("storage_read"))
        .await
        .map_err(OpError::from)?;
    let mut released = BTreeMap::new();
    let record = match row {
        Some(row) if row.expires_at > now.timestamp() => {
            let aad = handover_aad(request.purpose.as_str(), &pseudonym, &source);
            let plain = state
                .kek
                .open(aad.as_bytes(), &row.sealed)
                .map_err(|_| OpError::Internal)?;
            let mut fields: BTreeMap<String, serde_json::Value> =
                serde_json::from_slice(&plain).map_err(|_| OpError::Internal)?;
            for name in &permit.released {
                if let Some(v) = fields.remove(name.as_str()) {
                    released.insert(name.to_string(), v);
                }
            }
            RecordStatus::Found
        }
        _ => RecordStatus::NoRecord,
    };

    let entry = recorded.entry(
        Some(&permit.basis),
        &permit.withheld,
        Outcome::Permit,
        None,
        released.keys().cloned().collect(),
    );
    append_durable(state, entry).await?;

    Ok(DisclosureResponse {
        disclosure_id,
        decision: "permit".into(),
        purpose: request.purpose.to_string(),
        record,
        released,
        withheld: permit.withheld,
        basis: BasisView::from(&permit.basis),
    })
}

// --- live disclosure (issue 18) ---------------------------------------------------------------

/// After a permit under a live grant: ask the source for exactly the fields the permit needs
/// (`policy::live::source_fields`), check its answer and compute derived attributes
/// (`policy::live::assemble`), audit, then answer. A source fault refuses the whole request
/// (audited, nothing released). Nothing from the answer is stored; inputs of derived attributes
/// are dropped here with the rest of the answer.
async fn disclose_live(
    state: &AppState,
    request: &DisclosureRequest,
    permit: Permit,
    recorded: Recorded<'_>,
    disclosure_id: String,
    now: chrono::DateTime<Utc>,
) -> Result<DisclosureResponse, OpError> {
    let covenants = state.covenants();
    let catalogue = covenants.catalogue();
    let fetch = policy::live::source_fields(&permit.released, catalogue);
    let traceparent = match (&recorded.trace.trace_id, &recorded.trace.span_id) {
        (Some(t), Some(s)) => Some(format!("00-{t}-{s}-01")),
        _ => None,
    };
    let answer = state
        .sources
        .query(
            &permit.basis.source,
            Query {
                subject: &request.subject,
                fields: &fetch,
                purpose: &request.purpose,
                requester: &request.requester,
                covenant: &permit.basis.covenant,
                disclosure_id: &disclosure_id,
                traceparent,
            },
        )
        .instrument(tracing::info_span!("source_query", source = %permit.basis.source))
        .await;
    let assembled = answer.and_then(|a| {
        let found = a.found;
        policy::live::assemble(
            &request.subject,
            a,
            &permit.released,
            catalogue,
            now.date_naive(),
            &permit.basis.norms,
        )
        .map(|out| (found, out))
        .map_err(|_| SourceFault::InvalidAnswer)
    });
    let (found, assembled) = match assembled {
        Ok(ok) => ok,
        Err(fault) => {
            tracing::warn!(source = %permit.basis.source, reason = fault.reason(), "live disclosure refused: the source gave no usable answer");
            let mut entry = recorded.entry(
                Some(&permit.basis),
                &permit.withheld,
                Outcome::Refuse,
                None,
                Vec::new(),
            );
            entry.reason = Some(fault.reason().to_owned());
            entry.live = Some(LiveFacts::default());
            append_durable(state, entry).await?;
            return Err(OpError::Source {
                fault,
                disclosure_id,
            });
        }
    };
    if !assembled.over_delivered.is_empty() {
        tracing::warn!(
            source = %permit.basis.source,
            fields = ?assembled.over_delivered,
            "the source sent fields it was not asked for; dropped"
        );
    }
    let mut entry = recorded.entry(
        Some(&permit.basis),
        &permit.withheld,
        Outcome::Permit,
        None,
        assembled.released.keys().cloned().collect(),
    );
    entry.live = Some(LiveFacts {
        over_delivered: assembled.over_delivered,
    });
    append_durable(state, entry).await?;
    Ok(DisclosureResponse {
        disclosure_id,
        decision: "permit".into(),
        purpose: request.purpose.to_string(),
        record: if found {
            RecordStatus::Found
        } else {
            RecordStatus::NoRecord
        },
        released: assembled.released,
        withheld: permit.withheld,
        basis: BasisView::from(&permit.basis),
    })
}
