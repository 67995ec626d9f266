//! Party signatures over a covenant version: a detached compact JWS (RFC 7515 appendix F) whose
//! payload is the canonical hash string `sha256:<hex>` of that version. Any change to the document
//! changes the hash and so invalidates every signature on it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use policy::{Covenant, Oin};
use serde::{Deserialize, Serialize};

use crate::keys::KeyRing;

/// The protected header of a covenant signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureHeader {
    pub alg: String,
    pub kid: String,
    pub typ: String,
    /// The signing party's OIN.
    pub party: Oin,
    /// `id@version` of the covenant signed (the hash is the payload).
    pub covenant: String,
}

const TYP: &str = "covenant-signature+jws";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("not a detached compact JWS (header..signature)")]
    Malformed,
    #[error("the signature is for {0}, not for this covenant version")]
    OtherCovenant(String),
    #[error("party {0} is not a party to this covenant")]
    NotAParty(Oin),
    #[error("key `{0}` is not a registered covenant key of the signing party")]
    UnknownKey(String),
    #[error("the signature does not verify over this covenant version's canonical hash")]
    BadSignature,
    #[error("signing failed: {0}")]
    Signing(String),
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "ES256",
        _ => "EdDSA",
    }
}

fn signing_input(header_b64: &str, covenant: &Covenant) -> String {
    let payload = covenant.canonical_hash().to_string();
    format!(
        "{header_b64}.{}",
        URL_SAFE_NO_PAD.encode(payload.as_bytes())
    )
}

/// Sign `covenant` as `party` with `key` (`kid` names it in the header).
pub fn sign(
    covenant: &Covenant,
    party: &Oin,
    kid: &str,
    alg: Algorithm,
    key: &EncodingKey,
) -> Result<String, SignatureError> {
    let header = SignatureHeader {
        alg: alg_name(alg).to_owned(),
        kid: kid.to_owned(),
        typ: TYP.to_owned(),
        party: party.clone(),
        covenant: format!("{}@{}", covenant.id, covenant.version),
    };
    let header_json =
        serde_json::to_vec(&header).map_err(|e| SignatureError::Signing(e.to_string()))?;
    let header_b64 = URL_SAFE_NO_PAD.encode(header_json);
    let input = signing_input(&header_b64, covenant);
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg)
        .map_err(|e| SignatureError::Signing(e.to_string()))?;
    Ok(format!("{header_b64}..{sig}"))
}

/// Verify a detached signature over `covenant` against the covenant keys in `keys`. Returns the
/// signing party.
pub fn verify(covenant: &Covenant, jws: &str, keys: &KeyRing) -> Result<Oin, SignatureError> {
    let mut parts = jws.trim().split('.');
    let (Some(header_b64), Some(""), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SignatureError::Malformed);
    };
    let header: SignatureHeader = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or(SignatureError::Malformed)?;
    if header.typ != TYP {
        return Err(SignatureError::Malformed);
    }
    let expected = format!("{}@{}", covenant.id, covenant.version);
    if header.covenant != expected {
        return Err(SignatureError::OtherCovenant(header.covenant));
    }
    if !covenant.is_party(&header.party) {
        return Err(SignatureError::NotAParty(header.party));
    }
    let key = keys
        .get(&header.kid)
        .filter(|k| k.owner == header.party && alg_name(k.alg) == header.alg)
        .ok_or_else(|| SignatureError::UnknownKey(header.kid.clone()))?;
    let input = signing_input(header_b64, covenant);
    match jsonwebtoken::crypto::verify(sig, input.as_bytes(), &key.key, key.alg) {
        Ok(true) => Ok(header.party),
        _ => Err(SignatureError::BadSignature),
    }
}
