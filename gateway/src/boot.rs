//! The composition root: from a validated configuration, build every part of the running
//! gateway (keys, covenants with their signatures checked, secrets, the migrated database, the
//! audit writer) and assemble the `AppState`. Nothing else constructs the state.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use policy::{AdminState, CovenantEntry, CovenantSet, FieldCatalogue, Oin};
use tokio::task::JoinHandle;

use crate::actor::ActorVerifier;
use crate::audit::{AuditLog, GroupCommit};
use crate::auth::HumanVerifier;
use crate::config::Config;
use crate::consent_token::ConsentVerifier;
use crate::crypto::{Kek, Pseudonymizer};
use crate::keys::KeyRing;
use crate::metrics::Metrics;
use crate::ops::covenants::snapshot::{import_config, ImportError};
use crate::ratelimit::RateLimiter;
use crate::state::{AdminLock, AppState, Parts};
use crate::store::Store;

/// Why the gateway cannot start. Messages name the file or key.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Catalogue(#[from] crate::catalogue::CatalogueLoadError),
    #[error("organisations[{index}] ({oin}): {source}")]
    Key {
        index: usize,
        oin: Oin,
        source: crate::keys::KeyError,
    },
    #[error("covenant {path}: {message}")]
    Covenant { path: String, message: String },
    #[error("secrets: {0}")]
    Secret(String),
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("audit: {0}")]
    Audit(#[from] crate::audit::CheckpointConfigError),
    #[error("{key}: {message}")]
    Source { key: String, message: String },
}

impl From<ImportError> for StartError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Covenant { path, message } => StartError::Covenant { path, message },
            ImportError::Store(e) => StartError::Store(e),
        }
    }
}

/// Parse, validate and check the signatures of every configured covenant.
pub fn load_covenants(
    config: &Config,
    catalogue: FieldCatalogue,
    keys: &KeyRing,
) -> Result<CovenantSet, StartError> {
    let mut entries = Vec::new();
    for section in &config.covenants {
        let path = section.file.display().to_string();
        let err = |message: String| StartError::Covenant {
            path: path.clone(),
            message,
        };
        let text = std::fs::read_to_string(&section.file).map_err(|e| err(e.to_string()))?;
        let covenant =
            policy::Covenant::parse(&text, policy::DocumentFormat::from_file_name(&path))
                .map_err(|e| err(e.to_string()))?;
        let problems = covenant.validate(&catalogue);
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            return Err(err(list.join("; ")));
        }
        let mut signed_by = BTreeSet::new();
        for sig_path in &section.signatures {
            let jws = std::fs::read_to_string(sig_path)
                .map_err(|e| err(format!("signature {}: {e}", sig_path.display())))?;
            let party = crate::covenant_sig::verify(&covenant, &jws, keys)
                .map_err(|e| err(format!("signature {}: {e}", sig_path.display())))?;
            signed_by.insert(party);
        }
        entries.push(CovenantEntry::new(covenant, AdminState::Open, signed_by));
    }
    Ok(CovenantSet::new(catalogue, entries))
}

/// Build the state: keys, covenants, secrets, database (migrated) and the audit writer.
pub async fn build(config: Config) -> Result<(AppState, JoinHandle<()>), StartError> {
    crate::console::check(&config).map_err(|message| StartError::Covenant {
        path: "console".into(),
        message,
    })?;
    let catalogue = crate::catalogue::load(config.catalogue.as_deref())?;
    let mut consent_keys = KeyRing::default();
    let mut covenant_keys = KeyRing::default();
    // Issue 16: actor-assertion keys and the `iss` of each organisation's identity provider.
    let mut actor_keys = KeyRing::default();
    let mut actor_issuers = HashMap::new();
    let mut organisations = HashMap::new();
    for (index, org) in config.organisations.iter().enumerate() {
        let wrap = |source| StartError::Key {
            index,
            oin: org.oin.clone(),
            source,
        };
        for k in &org.consent_keys {
            consent_keys.add(&org.oin, k).map_err(wrap)?;
        }
        for k in &org.covenant_keys {
            covenant_keys.add(&org.oin, k).map_err(wrap)?;
        }
        for k in &org.actor_keys {
            actor_keys.add(&org.oin, k).map_err(wrap)?;
        }
        if let Some(iss) = &org.actor_issuer {
            actor_issuers.insert(org.oin.clone(), iss.clone());
        }
        organisations.insert(org.oin.clone(), org.name.clone());
    }
    let covenants = load_covenants(&config, catalogue, &covenant_keys)?;
    let humans =
        HumanVerifier::new(&config.human_issuers).map_err(|source| StartError::Covenant {
            path: "human_issuers".into(),
            message: source.to_string(),
        })?;
    let kek = Kek::new(&config.secret("secrets.kek", 32)?)
        .map_err(|e| StartError::Secret(format!("secrets.kek: {e}")))?;
    let pseudonymizer = Pseudonymizer::new(&config.secret("secrets.pseudonym_key", 32)?);
    let checkpointing = crate::audit::Checkpointing::from_config(&config.audit)?;
    let store = Store::open(&config.database).await?;
    // Read before the import and the build: a change by another instance in between only
    // causes one more rebuild (ops::covenants::sync), never a missed one.
    let covenant_generation = store.covenant_generation().await?;
    let covenants = import_config(&store, &config, &covenants, &covenant_keys).await?;
    let metrics = Arc::new(Metrics::new());
    let (audit, writer) = AuditLog::start(
        store.clone(),
        GroupCommit {
            max_records: config.audit.group_commit_max_records,
            max_wait: Duration::from_micros(config.audit.group_commit_max_wait_us),
        },
        checkpointing,
        metrics.clone(),
    )
    .await?;
    let consents = ConsentVerifier::new(
        consent_keys,
        config.gateway.id.clone(),
        config.limits.token_leeway_secs,
    );
    let actors = ActorVerifier::new(
        actor_keys,
        actor_issuers,
        config.gateway.id.clone(),
        config.limits.token_leeway_secs,
        config.limits.actor_max_lifetime_secs,
    );
    let rate_limiter =
        RateLimiter::new(config.limits.rate_per_org_per_sec, config.limits.rate_burst);
    // Live disclosure (issue 18): the sources' own services.
    let sources =
        crate::upstream::Sources::from_config(&config.sources, config.source_client.as_ref())
            .map_err(|(key, message)| StartError::Source { key, message })?;
    let parts = Parts {
        config,
        store,
        audit,
        kek,
        pseudonymizer,
        consents,
        actors,
        covenant_keys,
        humans,
        metrics,
        rate_limiter,
        organisations,
        covenant_admin: AdminLock::default(),
        sources,
    };
    Ok((AppState::new(parts, covenants, covenant_generation), writer))
}
