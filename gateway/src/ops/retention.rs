//! Retention. Handover data: a background sweeper destroys records whose retention (from the
//! covenant grant) has passed, logs how many and leaves an audit record with the count.
//! Audit records: kept by default (`[audit] retention_days = "keep"`); with a number of days, the
//! sweeper deletes records older than that, but only whole prefixes up to a signed checkpoint, so
//! the remaining log still verifies from there (`audit verify --allow-pruned`) and the deletion
//! itself is an audit record. Logs counts only, never subjects.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::audit::record::{AuditEntry, AuditKind, Outcome};
use crate::config::AuditRetention;
use crate::crypto::time_ordered_id;
use crate::ops::periodic::every;
use crate::state::AppState;
use crate::store::StoreError;
use crate::timefmt::audit_time;

/// How often the sweeper runs (and it runs once at start).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Delete audit records older than the retention period, up to the latest checkpoint before the
/// cut (the record at the checkpoint stays, so a signed checkpoint vouches for where the log now
/// starts). Returns how many records were deleted.
pub async fn prune_audit_once(state: &AppState, now: DateTime<Utc>) -> Result<u64, SweepError> {
    let AuditRetention::Days(days) = state.config.audit.retention_days else {
        return Ok(0);
    };
    let cutoff = audit_time(now - chrono::Duration::days(i64::from(days)));
    let Some(anchor) = state.store.audit_prune_anchor(&cutoff).await? else {
        return Ok(0);
    };
    let deleted = state.store.prune_audit_before(anchor).await?;
    if deleted == 0 {
        return Ok(0);
    }
    tracing::info!(
        deleted,
        anchor,
        days,
        "audit retention: old records deleted up to a checkpoint"
    );
    state
        .audit
        .append(AuditEntry {
            id: time_ordered_id("prn"),
            kind: Some(AuditKind::AuditPruned),
            time: audit_time(now),
            requester_person: Some("gateway:retention".into()),
            decision: Some(Outcome::Permit),
            reason: Some(format!(
                "retention-days:{days};deleted:{deleted};starts-at:{anchor}"
            )),
            ..Default::default()
        })
        .await
        .map_err(|_| SweepError::Unaudited(deleted))?;
    Ok(deleted)
}

/// Why a sweep failed.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("handover records could not be swept: {0}")]
    Store(#[from] StoreError),
    #[error("{0} expired record(s) destroyed, but the audit record of it could not be written")]
    Unaudited(u64),
}

/// Destroy the handover records whose retention passed at `now`; returns how many.
pub async fn sweep_once(state: &AppState, now: DateTime<Utc>) -> Result<u64, SweepError> {
    let destroyed = state.store.sweep_handovers(now.timestamp()).await?;
    if destroyed == 0 {
        return Ok(0);
    }
    tracing::info!(destroyed, "handover retention: expired records destroyed");
    state
        .audit
        .append(AuditEntry {
            id: time_ordered_id("ret"),
            kind: Some(AuditKind::HandoverDestroyed),
            time: audit_time(now),
            requester_person: Some("gateway:retention".into()),
            decision: Some(Outcome::Permit),
            reason: Some(format!("retention-expired:{destroyed}")),
            ..Default::default()
        })
        .await
        .map_err(|_| SweepError::Unaudited(destroyed))?;
    Ok(destroyed)
}

/// Start the sweeper; it stops when `shutdown` turns `true` (so the audit writer can finish).
pub fn spawn(state: AppState, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    match state.config.audit.retention_days {
        AuditRetention::Keep => tracing::info!(
            audit_retention = "keep",
            sweep_interval_secs = SWEEP_INTERVAL.as_secs(),
            "retention: audit records are kept; expired handover records are swept"
        ),
        AuditRetention::Days(days) => tracing::info!(
            audit_retention_days = days,
            sweep_interval_secs = SWEEP_INTERVAL.as_secs(),
            "retention: audit records older than the period are deleted up to a checkpoint; expired handover records are swept"
        ),
    }
    every(SWEEP_INTERVAL, shutdown, move || {
        let state = state.clone();
        async move {
            if let Err(e) = sweep_once(&state, Utc::now()).await {
                tracing::error!(error = %e, "handover retention sweep failed");
            }
            if let Err(e) = prune_audit_once(&state, Utc::now()).await {
                tracing::error!(error = %e, "audit retention sweep failed");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// UWV's OIN, as the source of a handover row.
    const UWV: &str = "00000001003214345000";

    /// The state of a gateway on a fresh SQLite database in `dir`, with the committed example
    /// certificates and checkpoint key and no organisations or covenants (retention needs none);
    /// `audit` is added to the `[audit]` section.
    async fn state_in(dir: &std::path::Path, audit: &str) -> (AppState, JoinHandle<()>) {
        use base64::Engine;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let c = root.join("certs-example").canonicalize().unwrap();
        let c = c.display();
        let d = dir.display();
        for name in ["kek.b64", "pseudonym-key.b64"] {
            let key = crate::crypto::random_bytes(32).unwrap();
            let text = base64::engine::general_purpose::STANDARD.encode(key);
            std::fs::write(dir.join(name), text).unwrap();
        }
        let config = format!(
            r#"
[gateway]
id = "retention-test"
listen = "127.0.0.1:0"
[tls]
cert = "{c}/server.pem"
key = "{c}/server-key.pem"
client_ca = "{c}/ca.pem"
[database]
url = "sqlite://{d}/poortwachter.db"
[secrets]
kek = {{ file = "{d}/kek.b64" }}
pseudonym_key = {{ file = "{d}/pseudonym-key.b64" }}
[audit]
checkpoint_key = "{c}/audit/checkpoint-ed25519.key.pem"
{audit}
"#
        );
        let config_path = dir.join("poortwachter.toml");
        std::fs::write(&config_path, config).unwrap();
        let config = crate::config::Config::load(&config_path).unwrap();
        crate::boot::build(config).await.unwrap()
    }

    #[derive(Debug, Deserialize)]
    struct Section {
        #[serde(default)]
        retention_days: AuditRetention,
    }

    #[test]
    fn audit_retention_is_keep_by_default_or_a_number_of_days() {
        let s: Section = toml::from_str("").unwrap();
        assert_eq!(s.retention_days, AuditRetention::Keep);
        let s: Section = toml::from_str("retention_days = \"keep\"").unwrap();
        assert_eq!(s.retention_days, AuditRetention::Keep);
        let s: Section = toml::from_str("retention_days = 365").unwrap();
        assert_eq!(s.retention_days, AuditRetention::Days(365));
        for bad in [
            "retention_days = 0",
            "retention_days = -1",
            "retention_days = \"forever\"",
        ] {
            let msg = toml::from_str::<Section>(bad).unwrap_err().to_string();
            assert!(msg.contains("number of days"), "{msg}");
        }
    }

    #[tokio::test]
    async fn audit_retention_deletes_old_records_up_to_a_checkpoint_and_the_log_still_verifies() {
        use crate::audit::verify::VerifyOptions;
        let dir = tempfile::tempdir().unwrap();
        let (state, _writer) = state_in(
            dir.path(),
            "retention_days = 30\ncheckpoint_every_records = 5",
        )
        .await;
        assert_eq!(state.config.audit.retention_days, AuditRetention::Days(30));
        let now = Utc::now();
        // 12 records 40 days old, then 8 from today: checkpoints land every 5 records.
        for i in 0..20 {
            let age = if i < 12 { 40 } else { 0 };
            state
                .audit
                .append(AuditEntry {
                    id: format!("r{i}"),
                    kind: Some(AuditKind::Disclosure),
                    time: audit_time(now - chrono::Duration::days(age)),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        let deleted = prune_audit_once(&state, now).await.unwrap();
        assert_eq!(
            deleted, 9,
            "records 1..=9 go; 10 is the last checkpoint before the cut"
        );
        assert_eq!(
            prune_audit_once(&state, now).await.unwrap(),
            0,
            "nothing more to delete"
        );
        let left = state.store.audit_records(0, 100).await.unwrap();
        assert_eq!(left.first().map(|r| r.seq), Some(10));
        let pruned = left.last().unwrap();
        assert_eq!(pruned.entry.kind, Some(AuditKind::AuditPruned));

        let strict = state
            .audit
            .verify(&state.store, VerifyOptions::default())
            .await
            .unwrap();
        assert!(
            !strict.ok,
            "without --allow-pruned a missing start is reported"
        );
        let report = state
            .audit
            .verify(
                &state.store,
                VerifyOptions {
                    allow_pruned_prefix: true,
                    ..VerifyOptions::default()
                },
            )
            .await
            .unwrap();
        assert!(report.ok, "{report:?}");
    }

    #[tokio::test]
    async fn sweep_destroys_only_expired_handovers_and_records_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let (state, _writer) = state_in(dir.path(), "").await;
        let now = Utc::now();
        for (subject, expires_at) in [("old", now.timestamp() - 1), ("new", now.timestamp() + 60)] {
            let sealed = state.kek.seal(b"aad", b"{}").unwrap();
            state
                .store
                .put_handover(&crate::store::HandoverRow {
                    purpose: "job-mediation".into(),
                    subject_pseudonym: subject.into(),
                    source_oin: UWV.into(),
                    covenant_id: "c".into(),
                    consent_jti: None,
                    stored_at: now.timestamp() - 10,
                    expires_at,
                    sealed,
                })
                .await
                .unwrap();
        }
        assert_eq!(sweep_once(&state, now).await.unwrap(), 1);
        assert_eq!(sweep_once(&state, now).await.unwrap(), 0);
        let get = |s: &'static str| state.store.handover("job-mediation", s, UWV);
        assert!(get("old").await.unwrap().is_none());
        assert!(get("new").await.unwrap().is_some());
        let records = state.store.audit_records(0, 10).await.unwrap();
        assert_eq!(
            records.len(),
            1,
            "one audit record, for the sweep that destroyed something"
        );
        assert_eq!(records[0].entry.kind, Some(AuditKind::HandoverDestroyed));
        assert_eq!(
            records[0].entry.reason.as_deref(),
            Some("retention-expired:1")
        );
    }
}
