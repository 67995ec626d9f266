//! Actor assertions (issue 16): the employee behind a system call, vouched for by the calling
//! organisation's own identity provider in a short-lived JWS sent in the `Actor-Token` header.
//! Verifies signature (ES256/EdDSA, algorithm from the configured key, never from the token),
//! type, audience, issuer, organisation (= the caller's certificate), lifetime and replay; never
//! logs or returns a claim of a refused assertion.
//!
//! The claims follow the actor of OAuth 2.0 Token Exchange (RFC 8693 §4.1): the assertion is
//! about the party *acting* (`sub`, `iss`) for the calling system, which the certificate already
//! identifies; `org`, `roles` and `jti` are ours.

use std::collections::HashMap;
use std::sync::Mutex;

use jsonwebtoken::{decode, decode_header, Algorithm, Validation};
use policy::{Actor, Bsn, Oin};

use crate::keys::KeyRing;

/// The request header that carries the assertion (a compact JWS, nothing else).
pub const ACTOR_HEADER: &str = "actor-token";
/// The JOSE `typ` an actor assertion must carry, so that no other token of the same issuer
/// (an ID token, a consent token) can be passed off as one.
pub const ACTOR_TYP: &str = "actor+jwt";
/// The longest assertion read (a real one is well under 2 KiB).
const MAX_TOKEN: usize = 8 * 1024;
/// The most roles one assertion may carry.
const MAX_ROLES: usize = 32;

/// Why an actor assertion is refused: every variant answers `invalid-actor-assertion`, with
/// [`ActorError::as_str`] as the audited defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ActorError {
    #[error("the actor assertion is not a well-formed compact JWS")]
    Malformed,
    #[error("the actor assertion header must have typ `actor+jwt`")]
    WrongType,
    #[error(
        "the actor assertion algorithm is not allowed (only ES256 and EdDSA, as its key says)"
    )]
    AlgorithmNotAllowed,
    #[error("the actor assertion has no kid, or the kid names no configured actor key")]
    UnknownKey,
    #[error("the actor assertion is signed with a key of another organisation than the caller")]
    OtherOrganisation,
    #[error("the actor assertion signature does not verify with the key its kid names")]
    BadSignature,
    #[error("the actor assertion audience is not this gateway")]
    WrongAudience,
    #[error("the actor assertion issuer is not the caller's configured actor issuer")]
    WrongIssuer,
    #[error("the actor assertion claims are incomplete or invalid (iss, sub, org, roles, aud, iat, exp and jti are required; sub is a pseudonymous id, never a BSN)")]
    Claims,
    #[error("the actor assertion has expired")]
    Expired,
    #[error("the actor assertion was issued in the future")]
    IssuedInFuture,
    #[error("the actor assertion lives longer than this gateway accepts")]
    TooLongLived,
    #[error("the actor assertion has been used before (its jti was seen)")]
    Replayed,
}

impl ActorError {
    /// A stable name of the failed check, for the audit record.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorError::Malformed => "malformed",
            ActorError::WrongType => "wrong-type",
            ActorError::AlgorithmNotAllowed => "algorithm-not-allowed",
            ActorError::UnknownKey => "unknown-key",
            ActorError::OtherOrganisation => "other-organisation",
            ActorError::BadSignature => "bad-signature",
            ActorError::WrongAudience => "wrong-audience",
            ActorError::WrongIssuer => "wrong-issuer",
            ActorError::Claims => "claims",
            ActorError::Expired => "expired",
            ActorError::IssuedInFuture => "issued-in-future",
            ActorError::TooLongLived => "too-long-lived",
            ActorError::Replayed => "replayed",
        }
    }
}

/// A refused assertion, with what is safe to audit about it: the issuer and employee only when
/// the signature verified (then they are the issuer's word).
#[derive(Debug, Clone)]
pub struct ActorRefusal {
    pub error: ActorError,
    pub verified: Option<(String, String)>,
}

/// The claims of an actor assertion (all required).
#[derive(Debug, serde::Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    org: Oin,
    roles: Vec<String>,
    iat: i64,
    exp: i64,
    jti: String,
}

/// Verifies actor assertions against the configured actor keys of the organisations.
#[derive(Debug)]
pub struct ActorVerifier {
    keys: KeyRing,
    /// The `iss` each organisation's assertions must carry.
    issuers: HashMap<Oin, String>,
    audience: String,
    leeway_secs: i64,
    max_lifetime_secs: i64,
    seen: Mutex<SeenSet>,
}

impl ActorVerifier {
    pub fn new(
        keys: KeyRing,
        issuers: HashMap<Oin, String>,
        audience: String,
        leeway_secs: u64,
        max_lifetime_secs: u64,
    ) -> Self {
        ActorVerifier {
            keys,
            issuers,
            audience,
            leeway_secs: i64::try_from(leeway_secs).unwrap_or(i64::MAX / 4),
            max_lifetime_secs: i64::try_from(max_lifetime_secs).unwrap_or(3600),
            seen: Mutex::new(SeenSet::default()),
        }
    }

    /// Verify `token`, sent by `caller` (the OIN of its certificate), at `now` (Unix seconds).
    /// A valid assertion's `jti` is remembered until it expires: the same assertion is refused
    /// `replayed` the next time (on this instance; see SECURITY.md).
    pub fn verify(&self, token: &str, caller: &Oin, now: i64) -> Result<Actor, ActorRefusal> {
        let mut verified = None;
        self.check(token, caller, now, &mut verified)
            .map_err(|error| ActorRefusal { error, verified })
    }

    fn check(
        &self,
        token: &str,
        caller: &Oin,
        now: i64,
        verified: &mut Option<(String, String)>,
    ) -> Result<Actor, ActorError> {
        if token.len() > MAX_TOKEN {
            return Err(ActorError::Malformed);
        }
        // `none`, `HS256` and friends are named as what they are, not as a parse failure.
        if let Some(alg) = header_alg(token) {
            if alg != "ES256" && alg != "EdDSA" {
                return Err(ActorError::AlgorithmNotAllowed);
            }
        }
        let header = decode_header(token).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
            | jsonwebtoken::errors::ErrorKind::InvalidAlgorithmName => {
                ActorError::AlgorithmNotAllowed
            }
            _ => ActorError::Malformed,
        })?;
        if header.typ.as_deref() != Some(ACTOR_TYP) {
            return Err(ActorError::WrongType);
        }
        if !matches!(header.alg, Algorithm::ES256 | Algorithm::EdDSA) {
            return Err(ActorError::AlgorithmNotAllowed);
        }
        let kid = header.kid.as_deref().ok_or(ActorError::UnknownKey)?;
        let key = self.keys.get(kid).ok_or(ActorError::UnknownKey)?;
        if &key.owner != caller {
            // Another organisation's identity provider cannot vouch for this caller's employees.
            return Err(ActorError::OtherOrganisation);
        }
        if key.alg != header.alg {
            return Err(ActorError::AlgorithmNotAllowed);
        }
        // Built from the key's algorithm, never from the token's header.
        let mut validation = Validation::new(key.alg);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub", "jti"]);
        // Times are checked below against the caller's `now` (one clock for all).
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let data = decode::<serde_json::Value>(token, &key.key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidAudience => ActorError::WrongAudience,
                K::InvalidAlgorithm => ActorError::AlgorithmNotAllowed,
                K::MissingRequiredClaim(_) => ActorError::Claims,
                K::InvalidToken | K::Base64(_) | K::Json(_) | K::Utf8(_) => ActorError::Malformed,
                _ => ActorError::BadSignature,
            }
        })?;
        let claims: Claims = serde_json::from_value(data.claims).map_err(|_| ActorError::Claims)?;
        *verified = Some((claims.iss.clone(), claims.sub.clone()));
        if &claims.org != caller {
            return Err(ActorError::OtherOrganisation);
        }
        let issuer = self
            .issuers
            .get(caller)
            .cloned()
            .unwrap_or_else(|| caller.to_string());
        if claims.iss != issuer {
            return Err(ActorError::WrongIssuer);
        }
        if !valid_sub(&claims.sub)
            || claims.roles.len() > MAX_ROLES
            || !claims.roles.iter().all(|r| policy::covenant::valid_role(r))
            || claims.jti.is_empty()
            || claims.jti.len() > 128
        {
            return Err(ActorError::Claims);
        }
        let leeway = self.leeway_secs;
        if claims.exp <= claims.iat || claims.exp - claims.iat > self.max_lifetime_secs {
            return Err(ActorError::TooLongLived);
        }
        if claims.exp.saturating_add(leeway) <= now {
            return Err(ActorError::Expired);
        }
        if claims.iat.saturating_sub(leeway) > now {
            return Err(ActorError::IssuedInFuture);
        }
        let remember_until = claims.exp.saturating_add(leeway);
        let fresh = match self.seen.lock() {
            Ok(mut seen) => seen.insert(&issuer, &claims.jti, remember_until, now),
            Err(poisoned) => {
                poisoned
                    .into_inner()
                    .insert(&issuer, &claims.jti, remember_until, now)
            }
        };
        if !fresh {
            return Err(ActorError::Replayed);
        }
        Ok(Actor {
            issuer: claims.iss,
            sub: claims.sub,
            roles: claims.roles,
        })
    }
}

/// The header's `alg`, when the first segment is base64url JSON with a string `alg`.
fn header_alg(token: &str) -> Option<String> {
    use base64::Engine;
    let first = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(first)
        .ok()?;
    let header: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    header.get("alg")?.as_str().map(str::to_owned)
}

/// A pseudonymous employee id: 1 to 128 printable ASCII characters without spaces, and not a
/// BSN (the gateway refuses to record a citizen number as an employee id).
fn valid_sub(sub: &str) -> bool {
    (1..=128).contains(&sub.len())
        && sub.bytes().all(|b| b.is_ascii_graphic())
        && sub.parse::<Bsn>().is_err()
}

/// The `(issuer, jti)` pairs of accepted assertions, each until its expiry (plus leeway), after
/// which the lifetime check refuses the assertion anyway. Bounded by the request rate times the
/// maximum lifetime; expired pairs are dropped as the set grows.
#[derive(Debug, Default)]
struct SeenSet {
    until: HashMap<(String, String), i64>,
    /// The size after the last sweep: the next sweep runs when the set has doubled.
    swept_at: usize,
}

impl SeenSet {
    /// Remember the pair; `false` when it is already remembered (a replay).
    fn insert(&mut self, issuer: &str, jti: &str, until: i64, now: i64) -> bool {
        if self.until.len() >= (2 * self.swept_at).max(1024) {
            self.until.retain(|_, &mut t| t > now);
            self.swept_at = self.until.len();
        }
        let key = (issuer.to_owned(), jti.to_owned());
        match self.until.get(&key) {
            Some(&t) if t > now => false,
            _ => {
                self.until.insert(key, until);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_refused_while_remembered_and_forgotten_after_expiry() {
        let mut seen = SeenSet::default();
        assert!(seen.insert("iss", "a", 100, 0));
        assert!(!seen.insert("iss", "a", 100, 50));
        assert!(seen.insert("other", "a", 100, 50));
        assert!(seen.insert("iss", "a", 300, 100));
    }

    #[test]
    fn the_seen_set_sweeps_expired_pairs_as_it_grows() {
        let mut seen = SeenSet::default();
        for i in 0..5000 {
            assert!(seen.insert("iss", &i.to_string(), i, i));
        }
        assert!(seen.until.len() < 3000, "{}", seen.until.len());
    }

    #[test]
    fn an_employee_id_is_never_a_bsn() {
        assert!(valid_sub("emp-0815"));
        assert!(!valid_sub("111222333"));
        assert!(!valid_sub("has space"));
        assert!(!valid_sub(""));
    }
}
