//! `AppState`: everything a request needs (configuration, store, audit log, keys, the current
//! covenant snapshot), built once at start-up from the configuration. Cheap to clone.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use policy::{AdminState, CovenantEntry, CovenantSet, FieldCatalogue, Oin};
use tokio::task::JoinHandle;

use crate::audit::{AuditLog, GroupCommit};
use crate::config::Config;
use crate::consent::ConsentVerifier;
use crate::crypto::{Kek, Pseudonymizer};
use crate::keys::KeyRing;
use crate::store::Store;

/// Shared state of a running gateway.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub audit: AuditLog,
    pub kek: Kek,
    pub pseudonymizer: Pseudonymizer,
    pub consents: ConsentVerifier,
    pub covenant_keys: KeyRing,
    pub humans: crate::auth::HumanVerifier,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub rate_limiter: crate::ratelimit::RateLimiter,
    pub organisations: HashMap<Oin, String>,
    pub covenant_admin: crate::covenant_admin::AdminLock,
    covenants: RwLock<Arc<CovenantSet>>,
    /// The database's covenant generation the snapshot was built at (read before building).
    covenant_generation: AtomicI64,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

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

impl AppState {
    /// Build the state: keys, covenants, secrets, database (migrated) and the audit writer.
    pub async fn build(config: Config) -> Result<(AppState, JoinHandle<()>), StartError> {
        let catalogue = crate::catalogue::load(config.catalogue.as_deref())?;
        let mut consent_keys = KeyRing::default();
        let mut covenant_keys = KeyRing::default();
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
            organisations.insert(org.oin.clone(), org.name.clone());
        }
        let covenants = load_covenants(&config, catalogue, &covenant_keys)?;
        let humans = crate::auth::HumanVerifier::new(&config.human_issuers).map_err(|source| {
            StartError::Covenant {
                path: "human_issuers".into(),
                message: source.to_string(),
            }
        })?;
        let kek = Kek::new(&config.secret("secrets.kek", 32)?)
            .map_err(|e| StartError::Secret(format!("secrets.kek: {e}")))?;
        let pseudonymizer = Pseudonymizer::new(&config.secret("secrets.pseudonym_key", 32)?);
        let checkpointing = crate::audit::Checkpointing::from_config(&config.audit)?;
        let store = Store::open(&config.database.url, config.database.max_connections).await?;
        // Read before the import and the build: a change by another instance in between only
        // causes one more rebuild (crate::covenant_sync), never a missed one.
        let covenant_generation = store.covenant_generation().await?;
        let covenants =
            crate::covenant_admin::import_config(&store, &config, &covenants, &covenant_keys)
                .await?;
        let metrics = Arc::new(crate::metrics::Metrics::new());
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
        let rate_limiter = crate::ratelimit::RateLimiter::new(
            config.limits.rate_per_org_per_sec,
            config.limits.rate_burst,
        );
        let state = AppState(Arc::new(Inner {
            config,
            store,
            audit,
            kek,
            pseudonymizer,
            consents,
            covenant_keys,
            humans,
            metrics,
            rate_limiter,
            organisations,
            covenant_admin: Default::default(),
            covenants: RwLock::new(Arc::new(covenants)),
            covenant_generation: AtomicI64::new(covenant_generation),
        }));
        Ok((state, writer))
    }

    /// The covenant snapshot for one request: taken once, never changes under the request.
    pub fn covenants(&self) -> Arc<CovenantSet> {
        match self.0.covenants.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Swap in a new covenant snapshot, built from the database at covenant `generation`; the
    /// next request sees it.
    pub fn replace_covenants(&self, set: CovenantSet, generation: i64) {
        let new = Arc::new(set);
        match self.0.covenants.write() {
            Ok(mut g) => *g = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
        self.0
            .covenant_generation
            .store(generation, Ordering::SeqCst);
    }

    /// The covenant generation the current snapshot was built at.
    pub fn covenant_generation(&self) -> i64 {
        self.0.covenant_generation.load(Ordering::SeqCst)
    }

    /// Whether `oin` is a configured organisation.
    pub fn knows(&self, oin: &Oin) -> bool {
        self.organisations.contains_key(oin)
    }
}
