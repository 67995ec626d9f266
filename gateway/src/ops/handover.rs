//! `PUT /v1/handovers/{purpose}/{bsn}`: a source stores the record it may hand over. Every field
//! must be catalogued, of the catalogued type and granted to this source for this purpose, else
//! nothing is stored. Stored sealed under a fresh data key; never logs values.

use chrono::Utc;
use policy::{Bsn, FieldName, Oin, Purpose};

use crate::api::{HandoverBody, HandoverStored};
use crate::audit::record::{AuditEntry, AuditKind, Outcome};
use crate::crypto::handover_aad;
use crate::ops::consent::open_consents;
use crate::ops::error::{FieldProblem, OpError};
use crate::state::AppState;
use crate::store::HandoverRow;
use crate::telemetry::TraceIds;
use crate::timefmt::{api_time, audit_time};

/// Store a handover record for (`purpose`, `bsn`) from `source`.
pub async fn put(
    state: &AppState,
    source: Oin,
    purpose: &str,
    bsn: &str,
    body: HandoverBody,
    trace: TraceIds,
) -> Result<HandoverStored, OpError> {
    let bsn: Bsn = bsn.parse().map_err(|_| OpError::InvalidBsn)?;
    let purpose: Purpose = purpose
        .parse()
        .map_err(|e: policy::IdError| OpError::Malformed(format!("purpose: {e}")))?;
    if body.fields.is_empty() {
        return Err(OpError::Malformed("fields: give at least one field".into()));
    }
    let now = Utc::now();
    let covenants = state.covenants();
    let Some((entry, grant)) = covenants
        .grants_from_source(&source, &purpose, now.date_naive())
        .next()
    else {
        return Err(OpError::HandoverRefused {
            reason: "not-a-source",
            detail: format!(
                "no covenant in force lets this organisation hand over data for purpose `{purpose}`"
            ),
        });
    };

    // Check every field; report all problems at once, store nothing if any.
    let catalogue = covenants.catalogue();
    let mut problems = Vec::new();
    let mut worst = "field-not-granted";
    for (name, value) in &body.fields {
        let problem = match name.parse::<FieldName>() {
            Err(_) => Some(("field-not-in-catalogue", "is not a valid field name")),
            Ok(field) => match catalogue.get(&field) {
                None => Some(("field-not-in-catalogue", "is not in the field catalogue")),
                Some(spec) if !spec.field_type.accepts(value) => Some((
                    "field-type-mismatch",
                    "does not have the type the catalogue gives it",
                )),
                Some(_) if !grant.fields.contains(&field) => Some((
                    "field-not-granted",
                    "is not granted to this source for this purpose",
                )),
                Some(_) => None,
            },
        };
        if let Some((reason, text)) = problem {
            if reason != "field-not-granted" && worst == "field-not-granted" {
                worst = reason;
            }
            problems.push(FieldProblem {
                field: name.chars().take(64).collect(),
                problem: text.to_owned(),
            });
        }
    }
    if !problems.is_empty() {
        return Err(OpError::HandoverFields {
            reason: worst,
            fields: problems,
        });
    }

    let pseudonym = state.pseudonymizer.pseudonym(&bsn);
    // Where the grant needs consent, the record is held under a valid consent and dies with it.
    let consent_jti = if grant.consent_required {
        let rows = state
            .store
            .consents_for_subject(&pseudonym)
            .await
            .map_err(|_| OpError::Unavailable)?;
        let book = open_consents(state, rows)?;
        let held_under = book
            .for_subject(&bsn)
            .iter()
            .filter(|c| {
                !c.revoked
                    && c.claims.in_validity(now.timestamp())
                    && c.claims.purpose == purpose
                    && c.claims.covenant == entry.covenant.id
                    && entry.covenant.is_party(&c.claims.iss)
            })
            .max_by(|a, b| (a.claims.iat, &a.claims.jti).cmp(&(b.claims.iat, &b.claims.jti)))
            .map(|c| c.claims.jti.to_string());
        match held_under {
            Some(jti) => Some(jti),
            None => {
                return Err(OpError::HandoverRefused {
                    reason: "consent-required",
                    detail: format!(
                        "purpose `{purpose}` needs the client's consent: register it before storing data"
                    ),
                })
            }
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
    let expires_at = now + chrono::Duration::days(i64::from(grant.retention_days));
    let row = HandoverRow {
        purpose: purpose.to_string(),
        subject_pseudonym: pseudonym.clone(),
        source_oin: source.to_string(),
        covenant_id: entry.covenant.id.to_string(),
        consent_jti: consent_jti.clone(),
        stored_at: now.timestamp(),
        expires_at: expires_at.timestamp(),
        sealed,
    };
    state
        .store
        .put_handover(&row)
        .await
        .map_err(|_| OpError::Unavailable)?;

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
            legal_basis: Some(grant.legal_basis.as_str().to_owned()),
            covenant: Some(entry.reference.to_string()),
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
        covenant: entry.reference.to_string(),
        consent: consent_jti,
        expires_at: api_time(expires_at),
    })
}
