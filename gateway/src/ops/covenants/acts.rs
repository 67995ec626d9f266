//! Covenant acts of administrators: draft or amend a version, add a party's detached signature,
//! suspend, resume, terminate. Each is planned without changing anything (a refusal is audited
//! and returned), then audited (durable), then applied, then the snapshot is rebuilt.

use chrono::{DateTime, Utc};
use policy::{
    AdminState, Covenant, CovenantProblem, CovenantRef, DocumentFormat, FieldCatalogue, Oin,
};

use super::snapshot::{inherited_admin, refresh};
use super::views::{
    in_force_version, load, parse_id, parse_version, show, show_version, CovenantView, Signed,
    VersionView,
};
use crate::audit::record::{AuditEntry, AuditKind, Outcome};
use crate::auth::HumanClaims;
use crate::covenant_sig;
use crate::ops::error::OpError;
use crate::state::AppState;
use crate::store::covenants::{CovenantSignatureRow, CovenantVersionRow};
use crate::store::StoreError;
use crate::timefmt::audit_time;

/// The administrator performing an act (from the bearer token).
#[derive(Debug, Clone)]
pub struct Actor {
    pub org: Oin,
    pub sub: String,
}

impl From<&HumanClaims> for Actor {
    fn from(c: &HumanClaims) -> Self {
        Actor {
            org: c.org.clone(),
            sub: c.sub.clone(),
        }
    }
}

async fn record(
    state: &AppState,
    actor: &Actor,
    covenant: Option<&CovenantRef>,
    outcome: Outcome,
    reason: String,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    let entry = AuditEntry {
        id: crate::crypto::time_ordered_id("cov"),
        kind: Some(AuditKind::CovenantAdmin),
        time: audit_time(now),
        requester_oin: Some(actor.org.to_string()),
        requester_person: Some(actor.sub.clone()),
        covenant: covenant.map(ToString::to_string),
        decision: Some(outcome),
        reason: Some(reason),
        ..Default::default()
    };
    state
        .audit
        .append(entry)
        .await
        .map(|_| ())
        .map_err(|_| OpError::AuditUnavailable)
}

/// Audit a refused act, then return the refusal (or `AuditUnavailable` if it cannot be audited).
async fn refuse<T>(
    state: &AppState,
    actor: &Actor,
    act: &str,
    covenant: Option<&CovenantRef>,
    error: OpError,
    now: DateTime<Utc>,
) -> Result<T, OpError> {
    let reason = format!("{act}:{}", error.reason());
    record(state, actor, covenant, Outcome::Refuse, reason, now).await?;
    Err(error)
}

/// Audit what an act will do before anything changes: a planned refusal is recorded and
/// returned as the error, a permit is recorded (durable) so the change may follow.
async fn audit_plan(
    state: &AppState,
    actor: &Actor,
    act: &str,
    covenant: &CovenantRef,
    refusal: Option<OpError>,
    now: DateTime<Utc>,
) -> Result<(), OpError> {
    if let Some(e) = refusal {
        return refuse(state, actor, act, Some(covenant), e, now).await;
    }
    record(
        state,
        actor,
        Some(covenant),
        Outcome::Permit,
        act.into(),
        now,
    )
    .await
}

/// After the permit record is durable: apply, then refresh. A failure to apply is recorded too.
async fn apply<F>(
    state: &AppState,
    actor: &Actor,
    act: &str,
    covenant: &CovenantRef,
    now: DateTime<Utc>,
    change: F,
) -> Result<(), OpError>
where
    F: std::future::Future<Output = Result<(), OpError>>,
{
    if let Err(e) = change.await {
        // The act was recorded as done but did not happen: say so in the log as well.
        let _ = record(
            state,
            actor,
            Some(covenant),
            Outcome::Refuse,
            format!("{act}:{}", e.reason()),
            now,
        )
        .await;
        return Err(e);
    }
    refresh(state).await?;
    Ok(())
}

fn parse_document(body: &[u8], catalogue: &FieldCatalogue) -> Result<Covenant, OpError> {
    let text = std::str::from_utf8(body).map_err(|_| {
        OpError::InvalidCovenant(vec![CovenantProblem {
            path: String::new(),
            message: "the body is not UTF-8 text".into(),
        }])
    })?;
    let covenant = Covenant::parse(text, DocumentFormat::Json).map_err(|e| {
        OpError::InvalidCovenant(vec![CovenantProblem {
            path: String::new(),
            message: e.to_string(),
        }])
    })?;
    let problems = covenant.validate(catalogue);
    if problems.is_empty() {
        Ok(covenant)
    } else {
        Err(OpError::InvalidCovenant(problems))
    }
}

/// `POST /v1/covenants`: store a new draft version (1 for a new covenant, latest + 1 for an
/// amendment). It is active only once every party has signed it.
pub async fn create(state: &AppState, actor: &Actor, body: &[u8]) -> Result<VersionView, OpError> {
    let _serial = state.covenant_admin.lock().await;
    let now = Utc::now();
    let catalogue = state.covenants().catalogue().clone();
    let covenant = match parse_document(body, &catalogue) {
        Ok(c) => c,
        Err(e) => return refuse(state, actor, "create", None, e, now).await,
    };
    let reference = covenant.reference();
    let act = if covenant.version > 1 {
        "amend"
    } else {
        "create"
    };
    let existing = state.store.covenant_versions(Some(&covenant.id)).await?;
    let latest = existing.iter().map(|r| r.version).max();
    let admin = inherited_admin(&existing);
    let refusal = match latest {
        _ if admin == AdminState::Terminated => Some(OpError::Terminated),
        None if covenant.version != 1 => Some(OpError::VersionConflict(format!(
            "covenant {} does not exist yet: its first version must be 1, not {}",
            covenant.id, covenant.version
        ))),
        Some(n) if covenant.version != n + 1 => Some(OpError::VersionConflict(format!(
            "the latest version of {} is {n}: an amendment must be version {}, not {}",
            covenant.id,
            n + 1,
            covenant.version
        ))),
        _ => None,
    };
    audit_plan(state, actor, act, &reference, refusal, now).await?;
    let row = CovenantVersionRow {
        covenant_id: covenant.id.clone(),
        version: covenant.version,
        document: String::from_utf8_lossy(&covenant.canonical_bytes()).into_owned(),
        hash: reference.hash,
        admin,
        created_at: now.timestamp(),
        updated_at: now.timestamp(),
    };
    let change = async {
        match state.store.insert_covenant_version(&row, &[]).await {
            Ok(()) => Ok(()),
            // Another administrator created this version between our check and our insert.
            Err(StoreError::Duplicate) => Err(OpError::VersionConflict(format!(
                "version {} of {} was just created by someone else",
                covenant.version, covenant.id
            ))),
            Err(e) => Err(e.into()),
        }
    };
    apply(state, actor, act, &reference, now, change).await?;
    show_version(state, covenant.id.as_str(), &covenant.version.to_string()).await
}

/// `POST /v1/covenants/{id}/versions/{version}/signatures`: add a party's detached signature
/// over this exact version. Refused when it does not verify, is by a non-party or an
/// unregistered key, or the covenant is terminated.
pub async fn sign(
    state: &AppState,
    actor: &Actor,
    id: &str,
    version: &str,
    jws: &str,
) -> Result<Signed, OpError> {
    let _serial = state.covenant_admin.lock().await;
    let now = Utc::now();
    let (id, version) = match (parse_id(id), parse_version(version)) {
        (Ok(i), Ok(v)) => (i, v),
        (Err(e), _) | (_, Err(e)) => return refuse(state, actor, "sign", None, e, now).await,
    };
    let versions = load(state, Some(&id)).await?;
    let Some(target) = versions
        .iter()
        .find(|v| v.entry.covenant.version == version)
    else {
        return refuse(state, actor, "sign", None, OpError::NotFound, now).await;
    };
    let reference = target.entry.reference.clone();
    if target.entry.admin == AdminState::Terminated {
        return refuse(
            state,
            actor,
            "sign",
            Some(&reference),
            OpError::Terminated,
            now,
        )
        .await;
    }
    if let Some(p) = &target.problem {
        tracing::error!(covenant = %reference, problem = %p, "refusing to sign an unusable version");
        return refuse(
            state,
            actor,
            "sign",
            Some(&reference),
            OpError::Unavailable,
            now,
        )
        .await;
    }
    let party = match covenant_sig::verify(&target.entry.covenant, jws, &state.covenant_keys) {
        Ok(p) => p,
        Err(e) => return refuse(state, actor, "sign", Some(&reference), e.into(), now).await,
    };
    record(
        state,
        actor,
        Some(&reference),
        Outcome::Permit,
        format!("sign:{party}"),
        now,
    )
    .await?;
    let row = CovenantSignatureRow {
        covenant_id: id.clone(),
        version,
        party,
        jws: jws.trim().to_owned(),
        signed_at: now.timestamp(),
    };
    let mut replaced = false;
    let change = async {
        replaced = state.store.put_covenant_signature(&row).await?;
        Ok::<(), OpError>(())
    };
    apply(state, actor, "sign", &reference, now, change).await?;
    let version = show_version(state, id.as_str(), &version.to_string()).await?;
    Ok(Signed { version, replaced })
}

/// A change of administrative state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Every open version stops counting, from the next request on.
    Suspend,
    /// Suspended versions count again (when signed and within validity).
    Resume,
    /// Final: every version stops counting for good; no new versions or signatures.
    Terminate,
}

impl Transition {
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Suspend => "suspend",
            Transition::Resume => "resume",
            Transition::Terminate => "terminate",
        }
    }
}

/// `POST /v1/covenants/{id}/suspend|resume|terminate`: applies to every version of the covenant.
pub async fn transition(
    state: &AppState,
    actor: &Actor,
    id: &str,
    t: Transition,
) -> Result<CovenantView, OpError> {
    let _serial = state.covenant_admin.lock().await;
    let now = Utc::now();
    let today = now.date_naive();
    let act = t.as_str();
    let id = match parse_id(id) {
        Ok(i) => i,
        Err(e) => return refuse(state, actor, act, None, e, now).await,
    };
    let versions = load(state, Some(&id)).await?;
    let Some(latest) = versions.iter().max_by_key(|v| v.entry.covenant.version) else {
        return refuse(state, actor, act, None, OpError::NotFound, now).await;
    };
    // The version the act matters for: the one in force, else the latest.
    let reference = in_force_version(&versions, today)
        .and_then(|n| versions.iter().find(|v| v.entry.covenant.version == n))
        .unwrap_or(latest)
        .entry
        .reference
        .clone();
    let has = |a: AdminState| versions.iter().any(|v| v.entry.admin == a);
    let (from, to): (&[AdminState], AdminState) = match t {
        Transition::Suspend => (&[AdminState::Open], AdminState::Suspended),
        Transition::Resume => (&[AdminState::Suspended], AdminState::Open),
        Transition::Terminate => (
            &[AdminState::Open, AdminState::Suspended],
            AdminState::Terminated,
        ),
    };
    let refusal = if has(AdminState::Terminated) {
        Some(OpError::Terminated)
    } else if t == Transition::Suspend && !has(AdminState::Open) {
        Some(OpError::InvalidTransition(
            "the covenant is already suspended",
        ))
    } else if t == Transition::Resume && !has(AdminState::Suspended) {
        Some(OpError::InvalidTransition("the covenant is not suspended"))
    } else {
        None
    };
    audit_plan(state, actor, act, &reference, refusal, now).await?;
    let change = async {
        state
            .store
            .set_covenant_admin_state(&id, from, to, now.timestamp())
            .await?;
        Ok::<(), OpError>(())
    };
    apply(state, actor, act, &reference, now, change).await?;
    show(state, id.as_str()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::covenant_sig::SignatureError;

    #[test]
    fn covenant_signature_errors_map_to_stable_reasons() {
        let oin: Oin = "00000001001234567000".parse().unwrap();
        assert_eq!(
            OpError::from(SignatureError::NotAParty(oin)).reason(),
            "not-a-party"
        );
        assert_eq!(
            OpError::from(SignatureError::BadSignature).reason(),
            "signature-invalid"
        );
        assert_eq!(
            OpError::from(SignatureError::OtherCovenant("x@2".into())).reason(),
            "signature-invalid"
        );
        assert_eq!(
            OpError::from(SignatureError::UnknownKey("k".into())).reason(),
            "unknown-key"
        );
        assert_eq!(
            OpError::from(SignatureError::Malformed).reason(),
            "signature-malformed"
        );
    }
}
