//! What the covenant administration endpoints show: covenants with their versions, state,
//! validity, expiry warnings and each party's signature status, built from the loaded versions.
//! Read-only; never changes a covenant.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, Utc};
use policy::{AdminState, Covenant, CovenantId, CovenantSet, CovenantState, Oin, PartyRole};
use serde::{Deserialize, Serialize};

use super::snapshot::{load_versions, LoadedVersion};
use crate::ops::error::OpError;
use crate::state::AppState;
use crate::timefmt::api_time_of_secs;

/// Whether a party has signed a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureStatus {
    /// A stored signature that verifies over this version.
    Signed,
    Missing,
    /// A stored signature that does not verify (e.g. the key was withdrawn); it does not count.
    Invalid,
}

/// One party of a version and its signature.
#[derive(Debug, Clone, Serialize)]
pub struct PartyView {
    pub oin: Oin,
    pub name: String,
    pub role: PartyRole,
    pub signature: SignatureStatus,
    pub signed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// One covenant version.
#[derive(Debug, Clone, Serialize)]
pub struct VersionView {
    pub covenant_id: CovenantId,
    pub version: u32,
    /// `id@version#sha256:…`, what decisions name.
    pub reference: String,
    /// The canonical SHA-256 every party signs.
    pub hash: String,
    pub state: CovenantState,
    pub admin_state: AdminState,
    /// Whether this is the version decisions rely on today.
    pub in_force: bool,
    pub title: String,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    /// Days until `valid_until`, when this version is in force and ends within the warning window.
    pub expires_within_days: Option<i64>,
    pub parties: Vec<PartyView>,
    /// Parties whose valid signature is still missing.
    pub awaiting_signatures: Vec<Oin>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub document: Covenant,
}

/// A covenant with all its versions.
#[derive(Debug, Clone, Serialize)]
pub struct CovenantView {
    pub id: CovenantId,
    pub title: String,
    pub state: CovenantState,
    /// The reference of the version in force, if any.
    pub in_force: Option<String>,
    pub latest_version: u32,
    pub versions: Vec<VersionView>,
}

/// One covenant in the list.
#[derive(Debug, Clone, Serialize)]
pub struct CovenantSummary {
    pub id: CovenantId,
    pub title: String,
    pub region: String,
    pub state: CovenantState,
    pub latest_version: u32,
    pub in_force: Option<String>,
    pub in_force_version: Option<u32>,
    pub valid_until: Option<NaiveDate>,
    /// Days until the version in force ends, when that is within the warning window.
    pub expires_within_days: Option<i64>,
    /// Parties whose signature on the latest version is still missing.
    pub awaiting_signatures: Vec<Oin>,
}

/// `GET /v1/covenants`.
#[derive(Debug, Clone, Serialize)]
pub struct CovenantList {
    pub expiry_warning_days: u32,
    pub covenants: Vec<CovenantSummary>,
}

/// The answer to a signature: the version after it, and whether it replaced an earlier one.
#[derive(Debug, Clone)]
pub struct Signed {
    pub version: VersionView,
    pub replaced: bool,
}

/// The version in force on `today` among the versions of one covenant (highest active).
pub(super) fn in_force_version(versions: &[LoadedVersion], today: NaiveDate) -> Option<u32> {
    versions
        .iter()
        .filter(|v| v.entry.state_on(today) == CovenantState::Active)
        .map(|v| v.entry.covenant.version)
        .max()
}

fn expires_within(valid_until: NaiveDate, today: NaiveDate, window: u32) -> Option<i64> {
    let days = (valid_until - today).num_days();
    (days <= i64::from(window)).then_some(days)
}

fn version_view(v: &LoadedVersion, in_force: bool, today: NaiveDate, window: u32) -> VersionView {
    let c = &v.entry.covenant;
    let parties = c
        .parties
        .iter()
        .map(|p| {
            let stored = v.signatures.iter().find(|s| s.party == p.oin);
            let (signature, signed_at, problem) = match stored {
                Some(s) if s.verified.is_ok() => (
                    SignatureStatus::Signed,
                    Some(api_time_of_secs(s.signed_at)),
                    None,
                ),
                Some(s) => (
                    SignatureStatus::Invalid,
                    Some(api_time_of_secs(s.signed_at)),
                    s.verified.clone().err(),
                ),
                None => (SignatureStatus::Missing, None, None),
            };
            PartyView {
                oin: p.oin.clone(),
                name: p.name.clone(),
                role: p.role,
                signature,
                signed_at,
                problem,
            }
        })
        .collect::<Vec<_>>();
    let awaiting_signatures = parties
        .iter()
        .filter(|p| p.signature != SignatureStatus::Signed)
        .map(|p| p.oin.clone())
        .collect();
    VersionView {
        covenant_id: c.id.clone(),
        version: c.version,
        reference: v.entry.reference.to_string(),
        hash: v.entry.reference.hash.to_string(),
        state: v.entry.state_on(today),
        admin_state: v.entry.admin,
        in_force,
        title: c.title.clone(),
        valid_from: c.valid_from,
        valid_until: c.valid_until,
        expires_within_days: if in_force {
            expires_within(c.valid_until, today, window)
        } else {
            None
        },
        parties,
        awaiting_signatures,
        problem: v.problem.clone(),
        created_at: api_time_of_secs(v.created_at),
        updated_at: api_time_of_secs(v.updated_at),
        document: c.clone(),
    }
}

/// Group loaded versions by covenant id (versions ascending).
fn by_covenant(versions: Vec<LoadedVersion>) -> BTreeMap<CovenantId, Vec<LoadedVersion>> {
    let mut out: BTreeMap<CovenantId, Vec<LoadedVersion>> = BTreeMap::new();
    for v in versions {
        out.entry(v.entry.covenant.id.clone()).or_default().push(v);
    }
    for list in out.values_mut() {
        list.sort_by_key(|v| v.entry.covenant.version);
    }
    out
}

/// The state of a covenant as a whole: that of its version in force, else of its latest.
fn covenant_state(versions: &[LoadedVersion], today: NaiveDate) -> CovenantState {
    if in_force_version(versions, today).is_some() {
        return CovenantState::Active;
    }
    versions
        .last()
        .map(|v| v.entry.state_on(today))
        .unwrap_or(CovenantState::Draft)
}

fn covenant_view(
    versions: &[LoadedVersion],
    today: NaiveDate,
    window: u32,
) -> Option<CovenantView> {
    let latest = versions.last()?;
    let in_force = in_force_version(versions, today);
    Some(CovenantView {
        id: latest.entry.covenant.id.clone(),
        title: latest.entry.covenant.title.clone(),
        state: covenant_state(versions, today),
        in_force: versions
            .iter()
            .find(|v| Some(v.entry.covenant.version) == in_force)
            .map(|v| v.entry.reference.to_string()),
        latest_version: latest.entry.covenant.version,
        versions: versions
            .iter()
            .map(|v| version_view(v, Some(v.entry.covenant.version) == in_force, today, window))
            .collect(),
    })
}

pub(super) fn window(state: &AppState) -> u32 {
    state.config.covenants_admin.expiry_warning_days
}

pub(super) async fn load(
    state: &AppState,
    id: Option<&CovenantId>,
) -> Result<Vec<LoadedVersion>, OpError> {
    let snapshot = state.covenants();
    Ok(load_versions(&state.store, &state.covenant_keys, snapshot.catalogue(), id).await?)
}

/// `GET /v1/covenants`: every covenant with its state and expiry warning.
pub async fn list(state: &AppState) -> Result<CovenantList, OpError> {
    let today = Utc::now().date_naive();
    let window = window(state);
    let grouped = by_covenant(load(state, None).await?);
    let covenants = grouped
        .values()
        .filter_map(|versions| {
            let latest = versions.last()?;
            let in_force = in_force_version(versions, today)
                .and_then(|n| versions.iter().find(|v| v.entry.covenant.version == n));
            let awaiting = if latest.entry.admin == AdminState::Terminated {
                Vec::new()
            } else {
                latest
                    .entry
                    .covenant
                    .parties
                    .iter()
                    .filter(|p| !latest.entry.signed_by.contains(&p.oin))
                    .map(|p| p.oin.clone())
                    .collect()
            };
            Some(CovenantSummary {
                id: latest.entry.covenant.id.clone(),
                title: latest.entry.covenant.title.clone(),
                region: latest.entry.covenant.region.clone(),
                state: covenant_state(versions, today),
                latest_version: latest.entry.covenant.version,
                in_force: in_force.map(|v| v.entry.reference.to_string()),
                in_force_version: in_force.map(|v| v.entry.covenant.version),
                valid_until: in_force.map(|v| v.entry.covenant.valid_until),
                expires_within_days: in_force
                    .and_then(|v| expires_within(v.entry.covenant.valid_until, today, window)),
                awaiting_signatures: awaiting,
            })
        })
        .collect();
    Ok(CovenantList {
        expiry_warning_days: window,
        covenants,
    })
}

pub(super) fn parse_id(id: &str) -> Result<CovenantId, OpError> {
    id.parse().map_err(|_| OpError::NotFound)
}

pub(super) fn parse_version(version: &str) -> Result<u32, OpError> {
    version.parse().map_err(|_| OpError::NotFound)
}

/// `GET /v1/covenants/{id}`: every version with each party's signature status.
pub async fn show(state: &AppState, id: &str) -> Result<CovenantView, OpError> {
    let id = parse_id(id)?;
    let versions = load(state, Some(&id)).await?;
    covenant_view(&versions, Utc::now().date_naive(), window(state)).ok_or(OpError::NotFound)
}

/// `GET /v1/covenants/{id}/versions/{version}`.
pub async fn show_version(
    state: &AppState,
    id: &str,
    version: &str,
) -> Result<VersionView, OpError> {
    let view = show(state, id).await?;
    let version = parse_version(version)?;
    view.versions
        .into_iter()
        .find(|v| v.version == version)
        .ok_or(OpError::NotFound)
}

/// One covenant version in force and the days until it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaysLeft {
    pub covenant: CovenantId,
    pub version: u32,
    pub days: i64,
}

/// Every covenant version in force on `today` in the snapshot, with the days until it ends.
pub fn days_until_expiry(set: &CovenantSet, today: NaiveDate) -> Vec<DaysLeft> {
    set.entries()
        .iter()
        .filter(|e| {
            set.in_force(&e.covenant.id, today)
                .is_some_and(|f| f.covenant.version == e.covenant.version)
        })
        .map(|e| DaysLeft {
            covenant: e.covenant.id.clone(),
            version: e.covenant.version,
            days: (e.covenant.valid_until - today).num_days(),
        })
        .collect()
}

/// The expiry warning window (days) and the covenants whose version in force ends within it.
pub fn expiry_warnings(state: &AppState, today: NaiveDate) -> (u32, Vec<DaysLeft>) {
    let set = state.covenants();
    let window = window(state);
    let ids: BTreeSet<&CovenantId> = set.entries().iter().map(|e| &e.covenant.id).collect();
    let warned = ids
        .iter()
        .filter_map(|id| set.in_force(id, today))
        .filter_map(|e| {
            expires_within(e.covenant.valid_until, today, window).map(|days| DaysLeft {
                covenant: e.covenant.id.clone(),
                version: e.covenant.version,
                days,
            })
        })
        .collect();
    (window, warned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covenant_expiry_warning_only_within_the_window() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let in_30 = NaiveDate::from_ymd_opt(2026, 12, 25).unwrap();
        assert_eq!(expires_within(in_30, today, 60), Some(30));
        assert_eq!(expires_within(in_30, today, 29), None);
        assert_eq!(expires_within(today, today, 0), Some(0));
    }
}
