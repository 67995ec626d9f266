//! Bearer JWTs for people (privacy officers, covenant administrators, operators): verified against
//! the configured issuers' keys (ES256/EdDSA only), claims `sub`, `org` (OIN) and `roles`.

use std::collections::HashMap;

use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use policy::Oin;
use serde::{Deserialize, Serialize};

use crate::config::HumanIssuerSection;
use crate::keys::{load_public, parse_alg, KeyError};

/// Why a person's call is not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No bearer token, or one that does not verify.
    #[error("a bearer token is required")]
    Unauthorized,
    /// A verified person without the role the act needs.
    #[error("this role may not do this")]
    Forbidden,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    PrivacyOfficer,
    CovenantAdmin,
    Operator,
}

/// The verified claims of a person's bearer token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HumanClaims {
    pub sub: String,
    pub org: Oin,
    pub roles: Vec<Role>,
    pub iss: String,
    pub exp: i64,
}

impl HumanClaims {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Require `role`, else `forbidden`.
    pub fn require(&self, role: Role) -> Result<(), AuthError> {
        if self.has(role) {
            Ok(())
        } else {
            Err(AuthError::Forbidden)
        }
    }
}

struct IssuerKey {
    issuer: String,
    audience: String,
    alg: Algorithm,
    key: DecodingKey,
}

/// Verifies bearer tokens of people.
#[derive(Default)]
pub struct HumanVerifier {
    by_kid: HashMap<String, IssuerKey>,
}

impl std::fmt::Debug for HumanVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HumanVerifier")
    }
}

impl HumanVerifier {
    pub fn new(issuers: &[HumanIssuerSection]) -> Result<Self, KeyError> {
        let mut by_kid = HashMap::new();
        for issuer in issuers {
            for k in &issuer.keys {
                let alg = parse_alg(&k.alg)?;
                let key = load_public(&k.file, alg)?;
                if by_kid.contains_key(&k.kid) {
                    return Err(KeyError::DuplicateKid(k.kid.clone()));
                }
                by_kid.insert(
                    k.kid.clone(),
                    IssuerKey {
                        issuer: issuer.issuer.clone(),
                        audience: issuer.audience.clone(),
                        alg,
                        key,
                    },
                );
            }
        }
        Ok(HumanVerifier { by_kid })
    }

    pub fn verify(&self, token: &str) -> Result<HumanClaims, AuthError> {
        let header = decode_header(token).map_err(|_| AuthError::Unauthorized)?;
        let kid = header.kid.as_deref().ok_or(AuthError::Unauthorized)?;
        let key = self.by_kid.get(kid).ok_or(AuthError::Unauthorized)?;
        let mut validation = Validation::new(key.alg);
        validation.set_issuer(&[&key.issuer]);
        validation.set_audience(&[&key.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        decode::<HumanClaims>(token, &key.key, &validation)
            .map(|d| d.claims)
            .map_err(|_| AuthError::Unauthorized)
    }
}
