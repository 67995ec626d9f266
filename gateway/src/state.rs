//! `AppState`: everything a request needs (configuration, store, audit log, keys, the current
//! covenant snapshot). Assembled once at start-up by `boot` (the composition root); cheap to
//! clone. Holds no logic beyond swapping the covenant snapshot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use policy::{CovenantSet, Oin};

use crate::actor::ActorVerifier;
use crate::audit::AuditLog;
use crate::auth::HumanVerifier;
use crate::config::Config;
use crate::consent_token::ConsentVerifier;
use crate::crypto::{Kek, Pseudonymizer};
use crate::keys::KeyRing;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::store::Store;

/// Shared state of a running gateway.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

struct Shared {
    parts: Parts,
    covenants: RwLock<Arc<CovenantSet>>,
    /// The database's covenant generation the snapshot was built at (read before building).
    covenant_generation: AtomicI64,
}

/// The parts of the state, each built by `boot`; a request reaches them through `AppState`.
pub struct Parts {
    pub config: Config,
    pub store: Store,
    pub audit: AuditLog,
    pub kek: Kek,
    pub pseudonymizer: Pseudonymizer,
    pub consents: ConsentVerifier,
    /// Issue 16: verifies the actor assertions of system calls (and remembers their `jti`s).
    pub actors: ActorVerifier,
    pub covenant_keys: KeyRing,
    pub humans: HumanVerifier,
    pub metrics: Arc<Metrics>,
    pub rate_limiter: RateLimiter,
    pub organisations: HashMap<Oin, String>,
    pub covenant_admin: AdminLock,
    /// Live disclosure: the sources' own services (issue 18).
    pub sources: crate::upstream::Sources,
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

impl std::ops::Deref for AppState {
    type Target = Parts;
    fn deref(&self) -> &Parts {
        &self.0.parts
    }
}

impl AppState {
    /// Assemble the state from its parts and the first covenant snapshot, built from the
    /// database at covenant `generation`.
    pub fn new(parts: Parts, covenants: CovenantSet, generation: i64) -> Self {
        AppState(Arc::new(Shared {
            parts,
            covenants: RwLock::new(Arc::new(covenants)),
            covenant_generation: AtomicI64::new(generation),
        }))
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
