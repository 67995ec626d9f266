//! Retention. Handover data: a background sweeper destroys records whose retention (from the
//! covenant grant) has passed, logs how many and leaves an audit record with the count.
//! Audit records: kept. `[audit] retention_days` accepts only `"keep"` for now, because deleting
//! old records must keep the chain verifiable (delete whole prefixes up to a signed checkpoint
//! and let verification start there), which is not built yet. Logs counts only, never subjects.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::audit::record::{AuditEntry, AuditKind, Outcome};
use crate::crypto::random_id;
use crate::disclosure::audit_time;
use crate::state::AppState;
use crate::store::StoreError;

/// How often the sweeper runs (and it runs once at start).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// How long audit records are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuditRetention {
    /// Forever (the default).
    #[default]
    Keep,
}

impl<'de> Deserialize<'de> for AuditRetention {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Anything but "keep" (a number of days included) is refused with the reason.
        let value = toml::Value::deserialize(d)?;
        match value.as_str() {
            Some("keep") => Ok(AuditRetention::Keep),
            _ => Err(serde::de::Error::custom(
                "only \"keep\" is supported: deleting audit records by age is not implemented \
                 yet (it must keep the chain verifiable); remove the key or set \"keep\"",
            )),
        }
    }
}

/// Why a sweep failed.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("handover records could not be swept: {0}")]
    Store(#[from] StoreError),
    #[error("{0} expired handover record(s) destroyed, but the audit record could not be written")]
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
            id: random_id("ret"),
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
pub fn spawn(state: AppState, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    let AuditRetention::Keep = state.config.audit.retention_days;
    tracing::info!(
        audit_retention = "keep",
        handover_sweep_interval_secs = SWEEP_INTERVAL.as_secs(),
        "retention: audit records are kept; expired handover records are swept"
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
            if let Err(e) = sweep_once(&state, Utc::now()).await {
                tracing::error!(error = %e, "handover retention sweep failed");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Section {
        #[serde(default)]
        retention_days: AuditRetention,
    }

    #[test]
    fn audit_retention_defaults_to_keep_and_refuses_deletion_by_age() {
        let s: Section = toml::from_str("").unwrap();
        assert_eq!(s.retention_days, AuditRetention::Keep);
        let s: Section = toml::from_str("retention_days = \"keep\"").unwrap();
        assert_eq!(s.retention_days, AuditRetention::Keep);
        for bad in ["retention_days = 365", "retention_days = \"forever\""] {
            let msg = toml::from_str::<Section>(bad).unwrap_err().to_string();
            assert!(msg.contains("only \"keep\""), "{msg}");
        }
    }

    #[tokio::test]
    async fn sweep_destroys_only_expired_handovers_and_records_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let paths = crate::demo::DemoPaths::in_repo(&root, dir.path());
        let config_path = crate::demo::write_config(&paths, "127.0.0.1:0").unwrap();
        let config = crate::config::Config::load(&config_path).unwrap();
        let (state, _writer) = AppState::build(config).await.unwrap();
        let now = Utc::now();
        for (subject, expires_at) in [("old", now.timestamp() - 1), ("new", now.timestamp() + 60)] {
            let sealed = state.kek.seal(b"aad", b"{}").unwrap();
            state
                .store
                .put_handover(&crate::store::HandoverRow {
                    purpose: "job-mediation".into(),
                    subject_pseudonym: subject.into(),
                    source_oin: crate::demo::UWV.into(),
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
        let get = |s: &'static str| state.store.handover("job-mediation", s, crate::demo::UWV);
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
