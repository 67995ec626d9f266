//! `POST /v1/disclosures`: decide first (covenant, then consent) — nothing about the subject's
//! record is read before a permit — then read and decrypt, keep exactly the decided fields, make
//! the audit record durable, and only then answer. Never logs a BSN or a value.

use std::collections::BTreeMap;

use chrono::Utc;
use policy::{decide, ConsentBook, Decision, DisclosureRequest, Oin, Snapshot};
use tracing::Instrument;

use crate::api::{BasisView, DisclosureRequestBody, DisclosureResponse, RecordStatus};
use crate::audit::record::{AuditEntry, AuditKind, Outcome, WithheldName};
use crate::crypto::{handover_aad, time_ordered_id};
use crate::ops::consent::open_consents;
use crate::ops::error::OpError;
use crate::state::AppState;
use crate::telemetry::TraceIds;
use crate::timefmt::audit_time;

fn withheld_names(d: &Decision) -> Vec<WithheldName> {
    d.withheld()
        .iter()
        .map(|w| WithheldName {
            field: w.field.to_string(),
            reason: w.reason.as_str().to_owned(),
        })
        .collect()
}

/// Handle one disclosure request from `requester`.
pub async fn disclose(
    state: &AppState,
    requester: Oin,
    body: DisclosureRequestBody,
    trace: TraceIds,
) -> Result<DisclosureResponse, OpError> {
    let now = Utc::now();
    let covenants = state.covenants();
    let request = DisclosureRequest {
        requester: requester.clone(),
        subject: body.subject.bsn,
        purpose: body.purpose.clone(),
        fields: body.fields,
    };
    let pseudonym = state.pseudonymizer.pseudonym(&request.subject);

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
    let book = if policy::consults_consents(&request, &covenants, now) {
        let rows = state
            .store
            .consents_for_subject(&pseudonym)
            .instrument(tracing::info_span!(parent: &decision_span, "consent_read"))
            .await
            .map_err(|_| OpError::Unavailable)?;
        open_consents(state, rows)?
    } else {
        ConsentBook::default()
    };
    let decision = decision_span.in_scope(|| {
        decide(
            &request,
            &Snapshot {
                covenants: &covenants,
                consents: &book,
            },
            now,
        )
    });

    decision_span.record(
        "outcome",
        if decision.is_permit() {
            "permit"
        } else {
            "refuse"
        },
    );
    if let Some(r) = decision.refusal_reason() {
        decision_span.record("reason", r.as_str());
    }
    drop(decision_span);
    state.metrics.decision(
        "disclosure",
        request.purpose.as_str(),
        if decision.is_permit() {
            "permit"
        } else {
            "refuse"
        },
        decision.refusal_reason().map(|r| r.as_str()).unwrap_or(""),
    );
    let disclosure_id = time_ordered_id("dsc");
    let basis = decision.basis();
    let mut entry = AuditEntry {
        id: disclosure_id.clone(),
        kind: Some(AuditKind::Disclosure),
        time: audit_time(now),
        trace_id: trace.trace_id,
        span_id: trace.span_id,
        requester_oin: Some(requester.to_string()),
        requester_person: body.on_behalf_of,
        source_oin: basis.map(|b| b.source.to_string()),
        subject_pseudonym: Some(pseudonym.clone()),
        purpose: Some(request.purpose.to_string()),
        legal_basis: basis.map(|b| b.legal_basis.as_str().to_owned()),
        covenant: basis.map(|b| b.covenant.to_string()),
        consent_id: basis.and_then(|b| b.consent.as_ref().map(|c| c.to_string())),
        fields_released: Vec::new(),
        fields_withheld: withheld_names(&decision),
        decision: Some(Outcome::Refuse),
        reason: decision.refusal_reason().map(|r| r.as_str().to_owned()),
    };

    let permit = match decision {
        Decision::Refuse(refusal) => {
            state
                .audit
                .append(entry)
                .instrument(tracing::info_span!("audit_append"))
                .await
                .map_err(|_| OpError::AuditUnavailable)?;
            return Err(OpError::Refused {
                reason: refusal.reason,
                disclosure_id,
                withheld: refusal.withheld,
            });
        }
        Decision::Permit(p) => p,
    };

    // Authorised: now, and only now, read the record.
    let source = permit.basis.source.to_string();
    let row = state
        .store
        .handover(request.purpose.as_str(), &pseudonym, &source)
        .instrument(tracing::info_span!("storage_read"))
        .await
        .map_err(|_| OpError::Unavailable)?;
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

    entry.decision = Some(Outcome::Permit);
    entry.reason = None;
    entry.fields_released = released.keys().cloned().collect();
    state
        .audit
        .append(entry)
        .instrument(tracing::info_span!("audit_append"))
        .await
        .map_err(|_| OpError::AuditUnavailable)?;

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
