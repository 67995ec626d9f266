//! Consent tokens: verification of the compact JWS (`typ: consent+jwt`, ES256 or EdDSA, key by
//! `kid` of the issuing party, `aud`/`exp`/`nbf`/`iat` with leeway) into `ConsentClaims`.
//! Error messages never contain claim values (a token carries a BSN).

use jsonwebtoken::{decode, decode_header, Algorithm, Validation};
use policy::ConsentClaims;

use crate::keys::KeyRing;

/// Why a consent token is refused. Each maps to `invalid-consent-token` with this detail, except
/// `IssuerNotCaller` (`not-consent-issuer`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentTokenError {
    #[error("the token is not a well-formed compact JWS")]
    Malformed,
    #[error("the token header must have typ `consent+jwt`")]
    WrongType,
    #[error("the token algorithm is not allowed (only ES256 and EdDSA)")]
    AlgorithmNotAllowed,
    #[error("the token header has no kid, or the kid names no configured consent key")]
    UnknownKey,
    #[error("the token signature does not verify with the key its kid names")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not yet valid")]
    NotYetValid,
    #[error("the token was issued in the future")]
    IssuedInFuture,
    #[error("the token audience is not this gateway")]
    WrongAudience,
    #[error("the token claims are incomplete or invalid (every claim of the consent schema is required)")]
    Claims,
    #[error("the token is signed with a key of another organisation than its issuer")]
    KeyNotOfIssuer,
}

/// Verifies consent tokens against the configured consent keys.
#[derive(Debug, Clone)]
pub struct ConsentVerifier {
    keys: KeyRing,
    audience: String,
    leeway_secs: u64,
}

impl ConsentVerifier {
    pub fn new(keys: KeyRing, audience: String, leeway_secs: u64) -> Self {
        ConsentVerifier {
            keys,
            audience,
            leeway_secs,
        }
    }

    /// Verify `token` at `now` (Unix seconds) and return its claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<ConsentClaims, ConsentTokenError> {
        let header = decode_header(token).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
            | jsonwebtoken::errors::ErrorKind::InvalidAlgorithmName => {
                ConsentTokenError::AlgorithmNotAllowed
            }
            _ => ConsentTokenError::Malformed,
        })?;
        if header.typ.as_deref() != Some("consent+jwt") {
            return Err(ConsentTokenError::WrongType);
        }
        if !matches!(header.alg, Algorithm::ES256 | Algorithm::EdDSA) {
            return Err(ConsentTokenError::AlgorithmNotAllowed);
        }
        let kid = header.kid.as_deref().ok_or(ConsentTokenError::UnknownKey)?;
        let key = self.keys.get(kid).ok_or(ConsentTokenError::UnknownKey)?;
        if key.alg != header.alg {
            return Err(ConsentTokenError::AlgorithmNotAllowed);
        }

        // The validation is built from the key's algorithm, never from the token's header.
        let mut validation = Validation::new(key.alg);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "aud", "iss", "sub"]);
        validation.leeway = self.leeway_secs;
        // `exp` and `nbf` are checked below against the caller's `now` (one clock for all).
        validation.validate_exp = false;
        validation.validate_nbf = false;

        let data = decode::<serde_json::Value>(token, &key.key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => ConsentTokenError::BadSignature,
                K::InvalidAudience => ConsentTokenError::WrongAudience,
                K::InvalidAlgorithm => ConsentTokenError::AlgorithmNotAllowed,
                K::MissingRequiredClaim(_) => ConsentTokenError::Claims,
                K::InvalidToken | K::Base64(_) | K::Json(_) | K::Utf8(_) => {
                    ConsentTokenError::Malformed
                }
                _ => ConsentTokenError::BadSignature,
            }
        })?;
        let claims: ConsentClaims =
            serde_json::from_value(data.claims).map_err(|_| ConsentTokenError::Claims)?;

        let leeway = self.leeway_secs as i64;
        if claims.exp + leeway <= now {
            return Err(ConsentTokenError::Expired);
        }
        if claims.nbf - leeway > now {
            return Err(ConsentTokenError::NotYetValid);
        }
        if claims.iat - leeway > now {
            return Err(ConsentTokenError::IssuedInFuture);
        }
        if claims.aud != self.audience {
            return Err(ConsentTokenError::WrongAudience);
        }
        if claims.iss != key.owner {
            return Err(ConsentTokenError::KeyNotOfIssuer);
        }
        Ok(claims)
    }
}
