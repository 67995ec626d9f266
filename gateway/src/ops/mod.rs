//! The use-cases: disclose, hand over, register and revoke consents, covenant acts, retention.
//! Each decides through `policy`, reads and writes through `store`, makes its audit record
//! durable before it answers — a refusal as much as a permit — and returns `error::OpError`;
//! none of them speaks HTTP.

pub mod consent;
pub mod covenants;
pub mod disclose;
pub mod error;
pub mod handover;
pub mod logboek;
pub mod periodic;
pub mod retention;

use policy::{Actor, Oin};
use tracing::Instrument;

use crate::audit::record::{ActorFacts, AuditEntry};
use crate::state::AppState;
use error::OpError;

/// Make `entry` durable (committed to the audit log); without it nothing may be answered but
/// `audit-unavailable`.
pub(crate) async fn append_durable(state: &AppState, entry: AuditEntry) -> Result<(), OpError> {
    state
        .audit
        .append(entry)
        .instrument(tracing::info_span!("audit_append"))
        .await
        .map(|_| ())
        .map_err(|_| OpError::AuditUnavailable)
}

/// Audit the refusal `entry`, then answer `refused`, or `audit-unavailable` when the record could
/// not be made durable (a refusal nobody can find afterwards is not given).
pub(crate) async fn refuse_audited(
    state: &AppState,
    entry: AuditEntry,
    refused: OpError,
) -> OpError {
    match append_durable(state, entry).await {
        Ok(()) => refused,
        Err(unavailable) => unavailable,
    }
}

// --- issue 16: the actor assertion of a system call ---

/// Verify the actor assertion `token` (the `Actor-Token` header, when sent) of a call by
/// `caller` at `now`: `Ok(None)` when none was sent, the verified actor, or the refusal
/// (`invalid-actor-assertion`) with the facts its audit record keeps.
pub(crate) fn check_actor(
    state: &AppState,
    caller: &Oin,
    token: Option<&str>,
    now: i64,
) -> Result<Option<Actor>, Box<(OpError, ActorFacts)>> {
    let Some(token) = token else {
        return Ok(None);
    };
    state
        .actors
        .verify(token.trim(), caller, now)
        .map(Some)
        .map_err(|refusal| {
            let (iss, sub) = refusal.verified.unzip();
            Box::new((
                OpError::InvalidActorAssertion(refusal.error),
                ActorFacts {
                    assertion: "invalid".into(),
                    iss,
                    sub,
                    role: None,
                    defect: Some(refusal.error.as_str().to_owned()),
                },
            ))
        })
}

/// What the audit record of a call keeps of its (verified or absent) actor, and the grant's role
/// it used.
pub(crate) fn actor_facts(actor: Option<&Actor>, role: Option<&str>) -> ActorFacts {
    match actor {
        None => ActorFacts::none(),
        Some(a) => ActorFacts {
            assertion: "verified".into(),
            iss: Some(a.issuer.clone()),
            sub: Some(a.sub.clone()),
            role: role.map(str::to_owned),
            defect: None,
        },
    }
}
