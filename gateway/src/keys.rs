//! Public keys of the organisations (consent issuers, covenant signatories, human-token issuers),
//! loaded from PEM files named in the configuration. Only ES256 and EdDSA exist here.

use std::collections::HashMap;
use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use policy::Oin;

use crate::config::KeySection;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("key file {path} is not a valid {alg} key in PEM form")]
    Invalid { path: String, alg: String },
    #[error("algorithm `{0}` is not allowed: use ES256 or EdDSA")]
    Algorithm(String),
    #[error("key id `{0}` is configured twice")]
    DuplicateKid(String),
}

/// Parse `ES256` / `EdDSA`; everything else is refused.
pub fn parse_alg(alg: &str) -> Result<Algorithm, KeyError> {
    match alg {
        "ES256" => Ok(Algorithm::ES256),
        "EdDSA" => Ok(Algorithm::EdDSA),
        other => Err(KeyError::Algorithm(other.to_owned())),
    }
}

/// Load a public key (SPKI PEM) for `alg`.
pub fn load_public(path: &Path, alg: Algorithm) -> Result<DecodingKey, KeyError> {
    let pem = std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let key = match alg {
        Algorithm::ES256 => DecodingKey::from_ec_pem(&pem),
        _ => DecodingKey::from_ed_pem(&pem),
    };
    key.map_err(|_| KeyError::Invalid {
        path: path.display().to_string(),
        alg: format!("{alg:?}"),
    })
}

/// Load a private key (PKCS#8 PEM) for `alg`.
pub fn load_private(path: &Path, alg: Algorithm) -> Result<EncodingKey, KeyError> {
    let pem = std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_ed_pem(&pem),
    };
    key.map_err(|_| KeyError::Invalid {
        path: path.display().to_string(),
        alg: format!("{alg:?}"),
    })
}

/// A verification key and who owns it.
#[derive(Clone)]
pub struct OwnedKey {
    pub owner: Oin,
    pub alg: Algorithm,
    pub key: DecodingKey,
}

/// Keys by `kid`. A kid is unique across organisations so a token can name exactly one key.
#[derive(Clone, Default)]
pub struct KeyRing {
    by_kid: HashMap<String, OwnedKey>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("kids", &self.by_kid.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeyRing {
    pub fn add(&mut self, owner: &Oin, section: &KeySection) -> Result<(), KeyError> {
        let alg = parse_alg(&section.alg)?;
        let key = load_public(&section.file, alg)?;
        if self.by_kid.contains_key(&section.kid) {
            return Err(KeyError::DuplicateKid(section.kid.clone()));
        }
        self.by_kid.insert(
            section.kid.clone(),
            OwnedKey {
                owner: owner.clone(),
                alg,
                key,
            },
        );
        Ok(())
    }

    pub fn get(&self, kid: &str) -> Option<&OwnedKey> {
        self.by_kid.get(kid)
    }

    pub fn is_empty(&self) -> bool {
        self.by_kid.is_empty()
    }

    /// Whether `oin` owns any key of this ring.
    pub fn is_owner(&self, oin: &Oin) -> bool {
        self.by_kid.values().any(|k| k.owner == *oin)
    }
}
