//! DEVELOPMENT ONLY. Signing what the gateway verifies, as the other parties' systems do:
//! consent tokens (an issuer's system), bearer tokens for people (an identity provider) and
//! covenant signatures (a party). The gateway verifies these and issues none of them, except
//! covenant signatures (`poortwachter covenant sign`), whose format [`covenant`] must keep:
//! `gateway/tests/devkit.rs` checks that the gateway accepts all three.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use policy::{ConsentClaims, Covenant, Oin};
use serde::Serialize;

/// Why something could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("cannot read key file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {} is not a {alg:?} private key in PEM form", path.display())]
    Key { path: PathBuf, alg: Algorithm },
    #[error("algorithm {0:?} is not used here: use ES256 or EdDSA")]
    Algorithm(Algorithm),
    #[error("signing failed: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("cannot encode the signature header: {0}")]
    Header(#[from] serde_json::Error),
}

/// Load a private signing key (PKCS#8 PEM) for `alg` (ES256 or EdDSA).
pub fn load_key(path: &Path, alg: Algorithm) -> Result<EncodingKey, SignError> {
    let pem = std::fs::read(path).map_err(|source| SignError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        other => return Err(SignError::Algorithm(other)),
    };
    key.map_err(|_| SignError::Key {
        path: path.to_path_buf(),
        alg,
    })
}

/// Sign consent claims as a compact JWS (`typ: consent+jwt`, `kid` naming the issuer's key), as
/// the issuing organisation's system does.
pub fn consent_token(
    claims: &ConsentClaims,
    kid: &str,
    alg: Algorithm,
    key: &EncodingKey,
) -> Result<String, SignError> {
    let mut header = Header::new(alg);
    header.typ = Some("consent+jwt".into());
    header.kid = Some(kid.into());
    Ok(jsonwebtoken::encode(&header, claims, key)?)
}

/// Sign a person's bearer token (claims as given: `iss`, `aud`, `sub`, `org`, `roles`, `exp`, …),
/// as an identity provider does.
pub fn bearer_token(
    claims: &serde_json::Value,
    kid: &str,
    alg: Algorithm,
    key: &EncodingKey,
) -> Result<String, SignError> {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    Ok(jsonwebtoken::encode(&header, claims, key)?)
}

/// Sign an actor assertion (issue 16: `typ: actor+jwt`; claims as given: `iss`, `sub`, `org`,
/// `roles`, `aud`, `iat`, `exp`, `jti`), as a calling organisation's identity provider does.
pub fn actor_assertion(
    claims: &serde_json::Value,
    kid: &str,
    alg: Algorithm,
    key: &EncodingKey,
) -> Result<String, SignError> {
    let mut header = Header::new(alg);
    header.typ = Some("actor+jwt".into());
    header.kid = Some(kid.into());
    Ok(jsonwebtoken::encode(&header, claims, key)?)
}

/// The protected header of a covenant signature, in the gateway's field order.
#[derive(Serialize)]
struct CovenantSignatureHeader<'a> {
    alg: &'static str,
    kid: &'a str,
    typ: &'static str,
    party: &'a Oin,
    covenant: String,
}

/// A party's detached compact JWS (`header..signature`) over the covenant version's canonical
/// hash string `sha256:<hex>`, as `poortwachter covenant sign` makes it.
pub fn covenant(
    covenant: &Covenant,
    party: &Oin,
    kid: &str,
    alg: Algorithm,
    key: &EncodingKey,
) -> Result<String, SignError> {
    let alg_name = match alg {
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        other => return Err(SignError::Algorithm(other)),
    };
    let header = CovenantSignatureHeader {
        alg: alg_name,
        kid,
        typ: "covenant-signature+jws",
        party,
        covenant: format!("{}@{}", covenant.id, covenant.version),
    };
    let header_b64 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
    let payload_b64 = URL_SAFE_NO_PAD.encode(covenant.canonical_hash().to_string());
    let input = format!("{header_b64}.{payload_b64}");
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg)?;
    Ok(format!("{header_b64}..{signature}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../certs-example")
            .join(name)
    }

    fn header_of(token: &str) -> serde_json::Value {
        let b64 = token.split('.').next().expect("a header");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(b64).expect("base64url")).expect("JSON")
    }

    #[test]
    fn bearer_token_names_its_key_and_carries_the_claims_as_given() {
        let key = load_key(&example("jwt-issuer/issuer.key.pem"), Algorithm::ES256).unwrap();
        let claims = serde_json::json!({ "sub": "fg-1", "roles": ["privacy-officer"] });
        let token = bearer_token(&claims, "issuer-1", Algorithm::ES256, &key).unwrap();
        let header = header_of(&token);
        assert_eq!(header["kid"], "issuer-1");
        assert_eq!(header["alg"], "ES256");
        let payload = token.split('.').nth(1).unwrap();
        let decoded: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(decoded, claims);
    }

    #[test]
    fn keys_load_only_for_their_own_algorithm() {
        let es256 = example("consent-keys/uwv-es256.key.pem");
        assert!(load_key(&es256, Algorithm::ES256).is_ok());
        assert!(matches!(
            load_key(&es256, Algorithm::EdDSA),
            Err(SignError::Key { .. })
        ));
        assert!(matches!(
            load_key(&es256, Algorithm::HS256),
            Err(SignError::Algorithm(Algorithm::HS256))
        ));
        assert!(matches!(
            load_key(&example("missing.pem"), Algorithm::ES256),
            Err(SignError::Read { .. })
        ));
    }
}
