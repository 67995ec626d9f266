//! The console's server-side sessions and pending logins: random identifiers (the cookie carries
//! only the identifier), idle and absolute timeouts, one CSRF token per session, and the
//! one-time state of a login in progress (OIDC `state`, nonce, PKCE verifier).
//!
//! Kept in this process's memory: a restart logs everyone out, and with several instances behind
//! a load balancer a person must be routed to the instance that holds the session (sticky
//! sessions), or is asked to log in again. Nothing personal is stored here but the person's
//! identity and roles.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

use crate::auth::HumanClaims;

/// How long a started login may take at the provider.
pub const LOGIN_TTL: Duration = Duration::from_secs(600);
/// At most this many logins in progress (older ones are dropped first).
const MAX_PENDING: usize = 10_000;
/// At most this many sessions.
const MAX_SESSIONS: usize = 100_000;

/// 32 random bytes, base64url: a session id, CSRF token, login binding.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    SystemRandom::new()
        .fill(&mut b)
        .expect("the system random generator works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Compare two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A logged-in person.
#[derive(Debug, Clone)]
pub struct Session {
    /// Identity and roles, in the form the API's use-cases take (`sub`, `org`, `roles`).
    pub claims: HumanClaims,
    /// The name shown on the pages.
    pub name: String,
    /// Whether this session came from the development login (never in production).
    pub development: bool,
    /// The token every form must carry.
    pub csrf: String,
    created: Instant,
    last_seen: Instant,
}

/// A login sent to the provider and not yet come back.
#[derive(Debug, Clone)]
pub struct PendingLogin {
    /// Which provider (index in the configuration).
    pub provider: usize,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Bound to the browser that started the login (a cookie), against login CSRF.
    pub binding: String,
    created: Instant,
}

/// The timeouts of sessions.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub idle: Duration,
    pub absolute: Duration,
}

/// Sessions and pending logins of this instance.
#[derive(Debug)]
pub struct Sessions {
    timeouts: Timeouts,
    sessions: Mutex<HashMap<String, Session>>,
    pending: Mutex<HashMap<String, PendingLogin>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Sessions {
    pub fn new(timeouts: Timeouts) -> Self {
        Sessions {
            timeouts,
            sessions: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Start a session for `claims`; returns its id (for the cookie).
    pub fn create(&self, claims: HumanClaims, name: String, development: bool) -> String {
        self.create_at(claims, name, development, Instant::now())
    }

    fn create_at(
        &self,
        claims: HumanClaims,
        name: String,
        development: bool,
        now: Instant,
    ) -> String {
        let id = random_token();
        let mut map = lock(&self.sessions);
        let t = self.timeouts;
        map.retain(|_, s| alive(s, t, now));
        if map.len() >= MAX_SESSIONS {
            // Full: drop the least recently used.
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            id.clone(),
            Session {
                claims,
                name,
                development,
                csrf: random_token(),
                created: now,
                last_seen: now,
            },
        );
        id
    }

    /// The live session with this id, touched (its idle time starts again); an expired one is
    /// removed and `None`.
    pub fn get(&self, id: &str) -> Option<Session> {
        self.get_at(id, Instant::now())
    }

    fn get_at(&self, id: &str, now: Instant) -> Option<Session> {
        let mut map = lock(&self.sessions);
        let s = map.get_mut(id)?;
        if !alive(s, self.timeouts, now) {
            map.remove(id);
            return None;
        }
        s.last_seen = now;
        Some(s.clone())
    }

    /// End a session (logout).
    pub fn remove(&self, id: &str) {
        lock(&self.sessions).remove(id);
    }

    /// Remember a login in progress under its `state`.
    pub fn begin_login(&self, state: String, login: PendingLoginParts) {
        let now = Instant::now();
        let mut map = lock(&self.pending);
        map.retain(|_, p| now.duration_since(p.created) < LOGIN_TTL);
        if map.len() >= MAX_PENDING {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, p)| p.created)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            state,
            PendingLogin {
                provider: login.provider,
                nonce: login.nonce,
                pkce_verifier: login.pkce_verifier,
                binding: login.binding,
                created: now,
            },
        );
    }

    /// Take (once) the login with this `state`, if it is recent and bound to `binding`.
    pub fn finish_login(&self, state: &str, binding: Option<&str>) -> Option<PendingLogin> {
        let login = lock(&self.pending).remove(state)?;
        let fresh = login.created.elapsed() < LOGIN_TTL;
        let bound = binding.is_some_and(|b| same_secret(b, &login.binding));
        (fresh && bound).then_some(login)
    }
}

/// What `begin_login` keeps.
#[derive(Debug, Clone)]
pub struct PendingLoginParts {
    pub provider: usize,
    pub nonce: String,
    pub pkce_verifier: String,
    pub binding: String,
}

fn alive(s: &Session, t: Timeouts, now: Instant) -> bool {
    now.saturating_duration_since(s.last_seen) < t.idle
        && now.saturating_duration_since(s.created) < t.absolute
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn claims() -> HumanClaims {
        HumanClaims {
            sub: "fg-1".into(),
            org: "00000001823288444000".parse().unwrap(),
            roles: vec![Role::PrivacyOfficer],
            iss: "https://idp".into(),
            exp: 0,
        }
    }

    fn store() -> Sessions {
        Sessions::new(Timeouts {
            idle: Duration::from_secs(60),
            absolute: Duration::from_secs(300),
        })
    }

    #[test]
    fn ids_and_csrf_tokens_are_random_and_long() {
        let s = store();
        let a = s.create(claims(), "A".into(), false);
        let b = s.create(claims(), "B".into(), false);
        assert_ne!(a, b);
        assert!(a.len() >= 43, "256 bits");
        assert_ne!(s.get(&a).unwrap().csrf, s.get(&b).unwrap().csrf);
        assert!(s.get("guessed").is_none());
    }

    #[test]
    fn idle_timeout_ends_a_session_and_activity_keeps_it() {
        let s = store();
        let t0 = Instant::now();
        let id = s.create_at(claims(), "A".into(), false, t0);
        assert!(s.get_at(&id, t0 + Duration::from_secs(50)).is_some());
        // Touched at 50 s: alive at 100 s, gone 60 s after the last request.
        assert!(s.get_at(&id, t0 + Duration::from_secs(100)).is_some());
        assert!(s.get_at(&id, t0 + Duration::from_secs(161)).is_none());
        // Removed, not only hidden.
        assert!(s.get_at(&id, t0 + Duration::from_secs(100)).is_none());
    }

    #[test]
    fn absolute_timeout_ends_an_active_session() {
        let s = store();
        let t0 = Instant::now();
        let id = s.create_at(claims(), "A".into(), false, t0);
        for i in 1..10 {
            assert!(s.get_at(&id, t0 + Duration::from_secs(i * 30)).is_some());
        }
        assert!(s.get_at(&id, t0 + Duration::from_secs(300)).is_none());
    }

    #[test]
    fn logout_removes_the_session() {
        let s = store();
        let id = s.create(claims(), "A".into(), false);
        s.remove(&id);
        assert!(s.get(&id).is_none());
    }

    #[test]
    fn a_login_is_taken_once_and_only_by_its_browser() {
        let s = store();
        let parts = |b: &str| PendingLoginParts {
            provider: 0,
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            binding: b.into(),
        };
        s.begin_login("st".into(), parts("bind"));
        assert!(s.finish_login("st", Some("other")).is_none());
        // A failed attempt consumed it: a replay finds nothing either.
        assert!(s.finish_login("st", Some("bind")).is_none());
        s.begin_login("st2".into(), parts("bind"));
        assert!(s.finish_login("st2", None).is_none());
        s.begin_login("st3".into(), parts("bind"));
        assert_eq!(s.finish_login("st3", Some("bind")).unwrap().nonce, "n");
        assert!(s.finish_login("st3", Some("bind")).is_none());
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }
}
