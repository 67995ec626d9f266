//! Consent tokens: verification of the compact JWS (`typ: consent+jwt`, ES256 or EdDSA, key by
//! `kid` of the issuing party, `aud`/`exp`/`nbf`/`iat` with leeway) into `ConsentClaims`, and,
//! for a refused token, the few facts about it that are safe to audit ([`TokenFacts`]).
//! Error messages never contain claim values (a token carries a BSN).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{decode, decode_header, Algorithm, Validation};
use policy::{ConsentClaims, Oin};

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

impl ConsentTokenError {
    /// A stable name of the failed check, for the audit record of the refusal.
    pub fn as_str(&self) -> &'static str {
        match self {
            ConsentTokenError::Malformed => "malformed",
            ConsentTokenError::WrongType => "wrong-type",
            ConsentTokenError::AlgorithmNotAllowed => "algorithm-not-allowed",
            ConsentTokenError::UnknownKey => "unknown-key",
            ConsentTokenError::BadSignature => "bad-signature",
            ConsentTokenError::Expired => "expired",
            ConsentTokenError::NotYetValid => "not-yet-valid",
            ConsentTokenError::IssuedInFuture => "issued-in-future",
            ConsentTokenError::WrongAudience => "wrong-audience",
            ConsentTokenError::Claims => "claims",
            ConsentTokenError::KeyNotOfIssuer => "key-not-of-issuer",
        }
    }
}

/// The registered JWS algorithm names (RFC 7518 §3.1, RFC 8037, RFC 8812). A header `alg` from
/// this list is recorded as it is, refused ones (`none`, `HS256`) included; any other text is not.
const JWS_ALGORITHMS: [&str; 15] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256",
    "PS384", "PS512", "none", "EdDSA", "ES256K",
];

/// The longest header or payload segment read for [`TokenFacts`] (a consent token is far
/// smaller; the request body limit bounds it anyway).
const MAX_SEGMENT: usize = 16 * 1024;

/// What a presented token showed that is safe to audit, also when it was refused. Every value is
/// either one the gateway's configuration already holds (an algorithm name from a fixed list, a
/// configured `kid`, a configured issuer's OIN) or vouched for by a configured issuer's verified
/// signature (`jti`, the claims). A forged token therefore leaves nothing of its own choosing in
/// the audit log: no text, no BSN, no pseudonym.
#[derive(Debug, Clone, Default)]
pub struct TokenFacts {
    /// The header's `alg`, when it is a registered JWS algorithm name.
    pub alg: Option<&'static str>,
    /// The header's `kid`, when it names a configured consent key.
    pub kid: Option<String>,
    /// `iss`: from the verified claims, or, unverified, only when it is the owner of a configured
    /// consent key.
    pub iss: Option<Oin>,
    /// Whether the signature verified with the key the `kid` names.
    pub signature_verified: bool,
    /// The claims, when the signature verified and they parsed (`jti`, `sub`, `purpose` are then
    /// the issuer's word).
    pub claims: Option<ConsentClaims>,
}

impl TokenFacts {
    /// Read the header (and, for `iss`, the payload) without trusting either.
    fn read(token: &str, keys: &KeyRing) -> TokenFacts {
        #[derive(serde::Deserialize)]
        struct Header {
            alg: Option<serde_json::Value>,
            kid: Option<serde_json::Value>,
        }
        #[derive(serde::Deserialize)]
        struct Payload {
            iss: Option<serde_json::Value>,
        }
        let mut parts = token.split('.');
        let header: Option<Header> = parts.next().and_then(segment);
        let payload: Option<Payload> = parts.next().and_then(segment);
        let text = |v: Option<serde_json::Value>| match v {
            Some(serde_json::Value::String(s)) => Some(s),
            _ => None,
        };
        let (alg, kid) = header.map_or((None, None), |h| (text(h.alg), text(h.kid)));
        TokenFacts {
            alg: alg.and_then(|a| JWS_ALGORITHMS.iter().copied().find(|&known| known == a)),
            kid: kid.filter(|k| keys.get(k).is_some()),
            iss: payload
                .and_then(|p| text(p.iss))
                .and_then(|iss| iss.parse::<Oin>().ok())
                .filter(|oin| keys.is_owner(oin)),
            signature_verified: false,
            claims: None,
        }
    }
}

/// A base64url JSON segment of a compact JWS, or `None`.
fn segment<T: serde::de::DeserializeOwned>(text: &str) -> Option<T> {
    if text.len() > MAX_SEGMENT {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
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
        self.verify_detailed(token, now).0
    }

    /// [`verify`](Self::verify), and what the token showed that is safe to audit (also, and
    /// above all, when it is refused).
    pub fn verify_detailed(
        &self,
        token: &str,
        now: i64,
    ) -> (Result<ConsentClaims, ConsentTokenError>, TokenFacts) {
        let mut facts = TokenFacts::read(token, &self.keys);
        let verdict = self.check(token, now, &mut facts);
        (verdict, facts)
    }

    /// The checks, in order; `facts` learns whether the signature verified and the claims.
    fn check(
        &self,
        token: &str,
        now: i64,
        facts: &mut TokenFacts,
    ) -> Result<ConsentClaims, ConsentTokenError> {
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
            // These are found after the signature verified (jsonwebtoken verifies first).
            facts.signature_verified =
                matches!(e.kind(), K::InvalidAudience | K::MissingRequiredClaim(_));
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
        facts.signature_verified = true;
        let claims: ConsentClaims =
            serde_json::from_value(data.claims).map_err(|_| ConsentTokenError::Claims)?;
        facts.iss = Some(claims.iss.clone());
        facts.claims = Some(claims.clone());

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
