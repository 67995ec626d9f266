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

use tracing::Instrument;

use crate::audit::record::AuditEntry;
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
