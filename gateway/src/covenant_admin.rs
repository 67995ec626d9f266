//! The covenant lifecycle for covenant administrators: draft and amend versions, collect party
//! signatures, suspend, resume and terminate — each act audited before it takes effect — and the
//! covenant snapshot rebuilt from the database (every stored signature re-verified) after each.
//! Only a signature that verifies over a version's own document counts; nothing else activates.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use policy::{
    AdminState, Covenant, CovenantEntry, CovenantId, CovenantProblem, CovenantRef, CovenantSet,
    CovenantState, DocumentFormat, FieldCatalogue, Oin, PartyRole,
};
use serde::{Deserialize, Serialize};

use crate::audit::record::{AuditEntry, AuditKind, Outcome};
use crate::auth::HumanClaims;
use crate::config::Config;
use crate::covenant_sig::{self, SignatureError};
use crate::disclosure::audit_time;
use crate::http::problem::ApiError;
use crate::keys::KeyRing;
use crate::state::{AppState, StartError};
use crate::store::covenants::{CovenantSignatureRow, CovenantVersionRow};
use crate::store::{Store, StoreError};

/// The expiry warning window when the configuration names none.
pub const DEFAULT_EXPIRY_WARNING_DAYS: u32 = 60;

fn default_expiry_warning_days() -> u32 {
    DEFAULT_EXPIRY_WARNING_DAYS
}

/// How often an instance checks the database for covenant changes made elsewhere, when the
/// configuration names no interval.
pub const DEFAULT_REFRESH_INTERVAL_MS: u64 = 1000;

fn default_refresh_interval_ms() -> u64 {
    DEFAULT_REFRESH_INTERVAL_MS
}

/// `[covenants_admin]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Warn (list endpoint, `/metrics`) about covenants in force that end within this many days.
    #[serde(default = "default_expiry_warning_days")]
    pub expiry_warning_days: u32,
    /// Check the database this often (milliseconds) for covenant changes made through another
    /// instance or tool, and rebuild the snapshot when there are any (`crate::covenant_sync`):
    /// such a change takes effect here within this interval plus one rebuild. 0 turns the check
    /// off (one instance only, and no other writer).
    #[serde(default = "default_refresh_interval_ms")]
    pub refresh_interval_ms: u64,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            expiry_warning_days: DEFAULT_EXPIRY_WARNING_DAYS,
            refresh_interval_ms: DEFAULT_REFRESH_INTERVAL_MS,
        }
    }
}

/// Serialises administrative acts, so that snapshots rebuilt after each are swapped in in order
/// (a slower rebuild can never overwrite a newer one).
#[derive(Debug, Default)]
pub struct AdminLock(tokio::sync::Mutex<()>);

impl AdminLock {
    /// Wait for the other acts (and snapshot rebuilds) of this instance to finish.
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.0.lock().await
    }
}

/// Why an administrative act was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("the covenant document is not valid: {}", summary(.0))]
    InvalidCovenant(Vec<CovenantProblem>),
    #[error("{0}")]
    VersionConflict(String),
    #[error("no such covenant or covenant version")]
    NotFound,
    #[error("the covenant is terminated; termination is final")]
    Terminated,
    #[error("{0}")]
    InvalidTransition(&'static str),
    #[error(
        "the signature is not a detached compact JWS (header..signature) of a covenant signature"
    )]
    SignatureMalformed,
    #[error("{0}")]
    SignatureInvalid(String),
    #[error("{0} is not a party to this covenant version")]
    NotAParty(Oin),
    #[error("key `{0}` is not a registered covenant key of the signing party")]
    UnknownKey(String),
    #[error("the audit log cannot be written; nothing was changed")]
    AuditUnavailable,
    #[error("the covenant store is unavailable")]
    Unavailable,
}

fn summary(problems: &[CovenantProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl AdminError {
    /// The stable `reason` string (also written to the audit record of a refused act).
    pub fn reason(&self) -> &'static str {
        match self {
            AdminError::Api(e) => e.reason(),
            AdminError::InvalidCovenant(_) => "invalid-covenant",
            AdminError::VersionConflict(_) => "version-conflict",
            AdminError::NotFound => "not-found",
            AdminError::Terminated => "covenant-terminated",
            AdminError::InvalidTransition(_) => "invalid-transition",
            AdminError::SignatureMalformed => "signature-malformed",
            AdminError::SignatureInvalid(_) => "signature-invalid",
            AdminError::NotAParty(_) => "not-a-party",
            AdminError::UnknownKey(_) => "unknown-key",
            AdminError::AuditUnavailable => "audit-unavailable",
            AdminError::Unavailable => "unavailable",
        }
    }
}

impl From<SignatureError> for AdminError {
    fn from(e: SignatureError) -> Self {
        match e {
            SignatureError::Malformed => AdminError::SignatureMalformed,
            SignatureError::OtherCovenant(other) => AdminError::SignatureInvalid(format!(
                "the signature is for {other}, not for this covenant version"
            )),
            SignatureError::NotAParty(oin) => AdminError::NotAParty(oin),
            SignatureError::UnknownKey(kid) => AdminError::UnknownKey(kid),
            SignatureError::BadSignature | SignatureError::Signing(_) => {
                AdminError::SignatureInvalid(
                    "the signature does not verify over this covenant version's canonical hash"
                        .into(),
                )
            }
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "covenant store");
        AdminError::Unavailable
    }
}

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

// ---------------------------------------------------------------------------------------------
// Loading: the database is the source of truth; signatures count only once re-verified.

/// A party's stored signature and whether it verifies now.
#[derive(Debug, Clone)]
pub struct StoredSignature {
    pub party: Oin,
    pub signed_at: i64,
    /// `Err` says why the stored signature does not count.
    pub verified: Result<(), String>,
}

/// A stored covenant version as the gateway understands it now.
#[derive(Debug, Clone)]
pub struct LoadedVersion {
    /// With `signed_by` = the parties whose stored signature verifies.
    pub entry: CovenantEntry,
    pub created_at: i64,
    pub updated_at: i64,
    pub signatures: Vec<StoredSignature>,
    /// Why this version can never be active (a document that no longer matches its hash or the
    /// field catalogue); its signatures then do not count.
    pub problem: Option<String>,
}

/// Load stored versions (of one covenant, or all) and re-verify every stored signature against
/// the registered covenant keys.
pub async fn load_versions(
    store: &Store,
    keys: &KeyRing,
    catalogue: &FieldCatalogue,
    id: Option<&CovenantId>,
) -> Result<Vec<LoadedVersion>, StoreError> {
    let rows = store.covenant_versions(id).await?;
    let mut sigs: HashMap<(CovenantId, u32), Vec<CovenantSignatureRow>> = HashMap::new();
    for s in store.covenant_signatures(id).await? {
        sigs.entry((s.covenant_id.clone(), s.version))
            .or_default()
            .push(s);
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let covenant = match Covenant::parse(&row.document, DocumentFormat::Json) {
            Ok(c) if c.id == row.covenant_id && c.version == row.version => c,
            Ok(_) => {
                tracing::error!(covenant = %row.covenant_id, version = row.version, "stored covenant document names another id or version; ignored");
                continue;
            }
            Err(e) => {
                tracing::error!(covenant = %row.covenant_id, version = row.version, error = %e, "stored covenant document does not parse; ignored");
                continue;
            }
        };
        let problem = if covenant.canonical_hash() != row.hash {
            Some("the stored document does not match its recorded hash".to_owned())
        } else {
            let problems = covenant.validate(catalogue);
            (!problems.is_empty()).then(|| {
                format!(
                    "not valid against the field catalogue: {}",
                    summary(&problems)
                )
            })
        };
        if let Some(p) = &problem {
            tracing::error!(covenant = %covenant.reference(), problem = %p, "covenant version can never be active");
        }
        let mut signed_by = BTreeSet::new();
        let mut signatures = Vec::new();
        for s in sigs
            .remove(&(row.covenant_id.clone(), row.version))
            .unwrap_or_default()
        {
            let verified = match (&problem, covenant_sig::verify(&covenant, &s.jws, keys)) {
                (Some(p), _) => Err(p.clone()),
                (None, Ok(party)) if party == s.party => Ok(()),
                (None, Ok(party)) => Err(format!("the signature is by {party}")),
                (None, Err(e)) => Err(e.to_string()),
            };
            if verified.is_ok() {
                signed_by.insert(s.party.clone());
            }
            signatures.push(StoredSignature {
                party: s.party,
                signed_at: s.signed_at,
                verified,
            });
        }
        out.push(LoadedVersion {
            entry: CovenantEntry::new(covenant, row.admin, signed_by),
            created_at: row.created_at,
            updated_at: row.updated_at,
            signatures,
            problem,
        });
    }
    Ok(out)
}

/// Build the covenant snapshot from the database.
pub async fn build_set(
    store: &Store,
    keys: &KeyRing,
    catalogue: FieldCatalogue,
) -> Result<CovenantSet, StoreError> {
    let versions = load_versions(store, keys, &catalogue, None).await?;
    Ok(CovenantSet::new(
        catalogue,
        versions.into_iter().map(|v| v.entry).collect(),
    ))
}

/// Rebuild the snapshot from the database and swap it in: the next request sees it. Callers
/// hold the [`AdminLock`]. The covenant generation is read before the tables, so a change that
/// lands during the rebuild is picked up by the next check of `crate::covenant_sync`.
pub async fn refresh(state: &AppState) -> Result<(), StoreError> {
    let generation = state.store.covenant_generation().await?;
    let catalogue = state.covenants().catalogue().clone();
    let set = build_set(&state.store, &state.covenant_keys, catalogue).await?;
    state.replace_covenants(set, generation);
    Ok(())
}

/// The administrative state a new version of a covenant starts in: a suspended covenant stays
/// suspended (a new version must not bypass a suspension), a terminated one stays terminated.
fn inherited_admin(existing: &[CovenantVersionRow]) -> AdminState {
    if existing.iter().any(|r| r.admin == AdminState::Terminated) {
        AdminState::Terminated
    } else if existing.iter().any(|r| r.admin == AdminState::Suspended) {
        AdminState::Suspended
    } else {
        AdminState::Open
    }
}

/// At start-up: import the covenants of the configuration (with their signature files) into the
/// database where absent, then build the snapshot from the database. `configured` is the set
/// [`crate::state::load_covenants`] already parsed, validated and signature-checked.
pub async fn import_config(
    store: &Store,
    config: &Config,
    configured: &CovenantSet,
    keys: &KeyRing,
) -> Result<CovenantSet, StartError> {
    let now = Utc::now().timestamp();
    for section in &config.covenants {
        let path = section.file.display().to_string();
        let err = |message: String| StartError::Covenant {
            path: path.clone(),
            message,
        };
        let text = std::fs::read_to_string(&section.file).map_err(|e| err(e.to_string()))?;
        let covenant = Covenant::parse(&text, DocumentFormat::from_file_name(&path))
            .map_err(|e| err(e.to_string()))?;
        let hash = covenant.canonical_hash();
        let mut signatures = Vec::new();
        for sig_path in &section.signatures {
            let jws = std::fs::read_to_string(sig_path)
                .map_err(|e| err(format!("signature {}: {e}", sig_path.display())))?;
            let party = covenant_sig::verify(&covenant, &jws, keys)
                .map_err(|e| err(format!("signature {}: {e}", sig_path.display())))?;
            signatures.push(CovenantSignatureRow {
                covenant_id: covenant.id.clone(),
                version: covenant.version,
                party,
                jws: jws.trim().to_owned(),
                signed_at: now,
            });
        }
        let existing = store.covenant_versions(Some(&covenant.id)).await?;
        match existing.iter().find(|r| r.version == covenant.version) {
            None => {
                let admin = inherited_admin(&existing);
                let row = CovenantVersionRow {
                    covenant_id: covenant.id.clone(),
                    version: covenant.version,
                    document: String::from_utf8_lossy(&covenant.canonical_bytes()).into_owned(),
                    hash,
                    admin,
                    created_at: now,
                    updated_at: now,
                };
                store.insert_covenant_version(&row, &signatures).await?;
                tracing::info!(covenant = %covenant.reference(), admin = ?admin, "covenant imported from the configuration");
            }
            Some(row) if row.hash == hash => {
                for s in &signatures {
                    store.add_covenant_signature_if_absent(s).await?;
                }
            }
            Some(row) => {
                return Err(err(format!(
                "the database already holds {}@{} with hash {}, but this file hashes to {hash}; \
                     a changed covenant must be a new version",
                covenant.id, covenant.version, row.hash
            )))
            }
        }
    }
    Ok(build_set(store, keys, configured.catalogue().clone()).await?)
}

// ---------------------------------------------------------------------------------------------
// Views (wire types of the covenant administration endpoints).

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

fn rfc3339(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The version in force on `today` among the versions of one covenant (highest active).
fn in_force_version(versions: &[LoadedVersion], today: NaiveDate) -> Option<u32> {
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
                Some(s) if s.verified.is_ok() => {
                    (SignatureStatus::Signed, Some(rfc3339(s.signed_at)), None)
                }
                Some(s) => (
                    SignatureStatus::Invalid,
                    Some(rfc3339(s.signed_at)),
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
        created_at: rfc3339(v.created_at),
        updated_at: rfc3339(v.updated_at),
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

fn window(state: &AppState) -> u32 {
    state.config.covenants_admin.expiry_warning_days
}

async fn load(state: &AppState, id: Option<&CovenantId>) -> Result<Vec<LoadedVersion>, AdminError> {
    let snapshot = state.covenants();
    Ok(load_versions(&state.store, &state.covenant_keys, snapshot.catalogue(), id).await?)
}

/// `GET /v1/covenants`: every covenant with its state and expiry warning.
pub async fn list(state: &AppState) -> Result<CovenantList, AdminError> {
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

fn parse_id(id: &str) -> Result<CovenantId, AdminError> {
    id.parse().map_err(|_| AdminError::NotFound)
}

fn parse_version(version: &str) -> Result<u32, AdminError> {
    version.parse().map_err(|_| AdminError::NotFound)
}

/// `GET /v1/covenants/{id}`: every version with each party's signature status.
pub async fn show(state: &AppState, id: &str) -> Result<CovenantView, AdminError> {
    let id = parse_id(id)?;
    let versions = load(state, Some(&id)).await?;
    covenant_view(&versions, Utc::now().date_naive(), window(state)).ok_or(AdminError::NotFound)
}

/// `GET /v1/covenants/{id}/versions/{version}`.
pub async fn show_version(
    state: &AppState,
    id: &str,
    version: &str,
) -> Result<VersionView, AdminError> {
    let view = show(state, id).await?;
    let version = parse_version(version)?;
    view.versions
        .into_iter()
        .find(|v| v.version == version)
        .ok_or(AdminError::NotFound)
}

// ---------------------------------------------------------------------------------------------
// Acts: plan (refusals decided without changing anything) → audit (durable) → apply → refresh.

async fn record(
    state: &AppState,
    actor: &Actor,
    covenant: Option<&CovenantRef>,
    outcome: Outcome,
    reason: String,
    now: DateTime<Utc>,
) -> Result<(), AdminError> {
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
        .map_err(|_| AdminError::AuditUnavailable)
}

/// Audit a refused act, then return the refusal (or `AuditUnavailable` if it cannot be audited).
async fn refuse<T>(
    state: &AppState,
    actor: &Actor,
    act: &str,
    covenant: Option<&CovenantRef>,
    error: AdminError,
    now: DateTime<Utc>,
) -> Result<T, AdminError> {
    let reason = format!("{act}:{}", error.reason());
    record(state, actor, covenant, Outcome::Refuse, reason, now).await?;
    Err(error)
}

/// After the permit record is durable: apply, then refresh. A failure to apply is recorded too.
async fn apply<F>(
    state: &AppState,
    actor: &Actor,
    act: &str,
    covenant: &CovenantRef,
    now: DateTime<Utc>,
    change: F,
) -> Result<(), AdminError>
where
    F: std::future::Future<Output = Result<(), AdminError>>,
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

fn parse_document(body: &[u8], catalogue: &FieldCatalogue) -> Result<Covenant, AdminError> {
    let text = std::str::from_utf8(body).map_err(|_| {
        AdminError::InvalidCovenant(vec![CovenantProblem {
            path: String::new(),
            message: "the body is not UTF-8 text".into(),
        }])
    })?;
    let covenant = Covenant::parse(text, DocumentFormat::Json).map_err(|e| {
        AdminError::InvalidCovenant(vec![CovenantProblem {
            path: String::new(),
            message: e.to_string(),
        }])
    })?;
    let problems = covenant.validate(catalogue);
    if problems.is_empty() {
        Ok(covenant)
    } else {
        Err(AdminError::InvalidCovenant(problems))
    }
}

/// `POST /v1/covenants`: store a new draft version (1 for a new covenant, latest + 1 for an
/// amendment). It is active only once every party has signed it.
pub async fn create(
    state: &AppState,
    actor: &Actor,
    body: &[u8],
) -> Result<VersionView, AdminError> {
    let _serial = state.covenant_admin.0.lock().await;
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
        _ if admin == AdminState::Terminated => Some(AdminError::Terminated),
        None if covenant.version != 1 => Some(AdminError::VersionConflict(format!(
            "covenant {} does not exist yet: its first version must be 1, not {}",
            covenant.id, covenant.version
        ))),
        Some(n) if covenant.version != n + 1 => Some(AdminError::VersionConflict(format!(
            "the latest version of {} is {n}: an amendment must be version {}, not {}",
            covenant.id,
            n + 1,
            covenant.version
        ))),
        _ => None,
    };
    if let Some(e) = refusal {
        return refuse(state, actor, act, Some(&reference), e, now).await;
    }
    record(
        state,
        actor,
        Some(&reference),
        Outcome::Permit,
        act.into(),
        now,
    )
    .await?;
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
            Err(StoreError::Duplicate) => Err(AdminError::VersionConflict(format!(
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
) -> Result<Signed, AdminError> {
    let _serial = state.covenant_admin.0.lock().await;
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
        return refuse(state, actor, "sign", None, AdminError::NotFound, now).await;
    };
    let reference = target.entry.reference.clone();
    if target.entry.admin == AdminState::Terminated {
        return refuse(
            state,
            actor,
            "sign",
            Some(&reference),
            AdminError::Terminated,
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
            AdminError::Unavailable,
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
        Ok::<(), AdminError>(())
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
) -> Result<CovenantView, AdminError> {
    let _serial = state.covenant_admin.0.lock().await;
    let now = Utc::now();
    let today = now.date_naive();
    let act = t.as_str();
    let id = match parse_id(id) {
        Ok(i) => i,
        Err(e) => return refuse(state, actor, act, None, e, now).await,
    };
    let versions = load(state, Some(&id)).await?;
    let Some(latest) = versions.iter().max_by_key(|v| v.entry.covenant.version) else {
        return refuse(state, actor, act, None, AdminError::NotFound, now).await;
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
        Some(AdminError::Terminated)
    } else if t == Transition::Suspend && !has(AdminState::Open) {
        Some(AdminError::InvalidTransition(
            "the covenant is already suspended",
        ))
    } else if t == Transition::Resume && !has(AdminState::Suspended) {
        Some(AdminError::InvalidTransition(
            "the covenant is not suspended",
        ))
    } else {
        None
    };
    if let Some(e) = refusal {
        return refuse(state, actor, act, Some(&reference), e, now).await;
    }
    record(
        state,
        actor,
        Some(&reference),
        Outcome::Permit,
        act.into(),
        now,
    )
    .await?;
    let change = async {
        state
            .store
            .set_covenant_admin_state(&id, from, to, now.timestamp())
            .await?;
        Ok::<(), AdminError>(())
    };
    apply(state, actor, act, &reference, now, change).await?;
    show(state, id.as_str()).await
}

// ---------------------------------------------------------------------------------------------
// Metrics.

fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Prometheus text for covenant expiry warnings, from the current snapshot: the warning window
/// and, per covenant whose version in force ends within it, the days left. Appended to
/// `/metrics` (which already shows days until expiry for every version in force).
pub fn metrics_text(state: &AppState, now: DateTime<Utc>) -> String {
    use std::fmt::Write as _;
    let set = state.covenants();
    let today = now.date_naive();
    let window = window(state);
    let ids: BTreeSet<&CovenantId> = set.entries().iter().map(|e| &e.covenant.id).collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP poortwachter_covenant_expiry_warning_days Covenants in force that end within this many days are warned about.\n\
         # TYPE poortwachter_covenant_expiry_warning_days gauge\n\
         poortwachter_covenant_expiry_warning_days {window}\n\
         # HELP poortwachter_covenant_expiring Days until the version in force of a covenant ends, for covenants ending within the warning window.\n\
         # TYPE poortwachter_covenant_expiring gauge"
    );
    for e in ids.iter().filter_map(|id| set.in_force(id, today)) {
        if let Some(days) = expires_within(e.covenant.valid_until, today, window) {
            let _ = writeln!(
                out,
                "poortwachter_covenant_expiring{{covenant=\"{}\",version=\"{}\"}} {days}",
                label(e.covenant.id.as_str()),
                e.covenant.version,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(version: u32, admin: AdminState) -> CovenantVersionRow {
        CovenantVersionRow {
            covenant_id: "c".parse().unwrap(),
            version,
            document: String::new(),
            hash: policy::Sha256Hash::of(b""),
            admin,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn covenant_new_version_cannot_escape_suspension_or_termination() {
        assert_eq!(inherited_admin(&[]), AdminState::Open);
        assert_eq!(
            inherited_admin(&[row(1, AdminState::Open)]),
            AdminState::Open
        );
        assert_eq!(
            inherited_admin(&[row(1, AdminState::Open), row(2, AdminState::Suspended)]),
            AdminState::Suspended
        );
        assert_eq!(
            inherited_admin(&[
                row(1, AdminState::Suspended),
                row(2, AdminState::Terminated)
            ]),
            AdminState::Terminated
        );
    }

    #[test]
    fn covenant_expiry_warning_only_within_the_window() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let in_30 = NaiveDate::from_ymd_opt(2026, 12, 25).unwrap();
        assert_eq!(expires_within(in_30, today, 60), Some(30));
        assert_eq!(expires_within(in_30, today, 29), None);
        assert_eq!(expires_within(today, today, 0), Some(0));
    }

    #[test]
    fn covenant_signature_errors_map_to_stable_reasons() {
        let oin: Oin = "00000001001234567000".parse().unwrap();
        assert_eq!(
            AdminError::from(SignatureError::NotAParty(oin)).reason(),
            "not-a-party"
        );
        assert_eq!(
            AdminError::from(SignatureError::BadSignature).reason(),
            "signature-invalid"
        );
        assert_eq!(
            AdminError::from(SignatureError::OtherCovenant("x@2".into())).reason(),
            "signature-invalid"
        );
        assert_eq!(
            AdminError::from(SignatureError::UnknownKey("k".into())).reason(),
            "unknown-key"
        );
        assert_eq!(
            AdminError::from(SignatureError::Malformed).reason(),
            "signature-malformed"
        );
    }

    #[test]
    fn covenant_metric_labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
