//! Signed checkpoints over the audit chain head: `{seq, head, time, key_id}` signed with the
//! gateway's Ed25519 checkpoint key, and the public key that anyone can use to check them offline.
//! Never holds or logs anything but hashes, sequence numbers and keys.

use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use policy::Sha256Hash;
use ring::signature::{self, Ed25519KeyPair, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivatePkcs8KeyDer, SubjectPublicKeyInfoDer};
use serde::{Deserialize, Serialize};

/// The domain-separation string inside every signed checkpoint encoding.
pub const CHECKPOINT_CONTEXT: &str = "poortwachter/audit-checkpoint/v1";

/// DER prefix of an Ed25519 `SubjectPublicKeyInfo` (RFC 8410); the raw 32-byte key follows.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{what} is not an Ed25519 {form} in PEM form")]
    InvalidKey { what: String, form: &'static str },
    #[error("checkpoint at seq {seq} is signed with key {key_id}, which is not a trusted checkpoint key")]
    UnknownKey { seq: i64, key_id: String },
    #[error("checkpoint at seq {seq}: the signature does not verify")]
    BadSignature { seq: i64 },
}

/// A signed statement "the audit chain had head `head` at `seq`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Sequence number of the record whose hash is `head`.
    pub seq: i64,
    pub head: Sha256Hash,
    /// RFC 3339 UTC with microseconds, when the checkpoint was signed.
    pub time: String,
    /// RFC 7638 thumbprint of the signing key (see [`CheckpointPublicKey::key_id`]).
    pub key_id: String,
    /// Ed25519 signature over [`Checkpoint::signed_bytes`], standard base64.
    pub signature: String,
}

#[derive(Serialize)]
struct Signed<'a> {
    context: &'static str,
    head: &'a Sha256Hash,
    key_id: &'a str,
    seq: i64,
    time: &'a str,
}

impl Checkpoint {
    /// What is signed: the canonical JSON (`policy::canonical_json`: sorted keys, no whitespace)
    /// of `{context: "poortwachter/audit-checkpoint/v1", head, key_id, seq, time}`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        signed_bytes(self.seq, &self.head, &self.time, &self.key_id)
    }
}

fn signed_bytes(seq: i64, head: &Sha256Hash, time: &str, key_id: &str) -> Vec<u8> {
    policy::canonical_json(&Signed {
        context: CHECKPOINT_CONTEXT,
        head,
        key_id,
        seq,
        time,
    })
}

/// An Ed25519 checkpoint verification key.
#[derive(Clone, PartialEq, Eq)]
pub struct CheckpointPublicKey {
    raw: [u8; 32],
    key_id: String,
}

impl std::fmt::Debug for CheckpointPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckpointPublicKey({})", self.key_id)
    }
}

impl CheckpointPublicKey {
    /// From the raw 32-byte Ed25519 public key.
    pub fn from_raw(raw: [u8; 32]) -> Self {
        // RFC 7638: SHA-256 over the required JWK members in lexicographic order, no whitespace.
        let jwk = format!(
            "{{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"{}\"}}",
            URL_SAFE_NO_PAD.encode(raw)
        );
        let key_id = URL_SAFE_NO_PAD.encode(Sha256Hash::of(jwk.as_bytes()).0);
        CheckpointPublicKey { raw, key_id }
    }

    /// From a `-----BEGIN PUBLIC KEY-----` (SPKI) PEM; `what` names the source in errors.
    pub fn from_spki_pem(pem: &[u8], what: &str) -> Result<Self, CheckpointError> {
        let invalid = || CheckpointError::InvalidKey {
            what: what.to_owned(),
            form: "public key (SPKI)",
        };
        let der = SubjectPublicKeyInfoDer::from_pem_slice(pem).map_err(|_| invalid())?;
        let raw = der
            .as_ref()
            .strip_prefix(&ED25519_SPKI_PREFIX[..])
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(invalid)?;
        Ok(Self::from_raw(raw))
    }

    /// Read an SPKI PEM file.
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let pem = std::fs::read(path).map_err(|source| CheckpointError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_spki_pem(&pem, &path.display().to_string())
    }

    /// The RFC 7638 JWK thumbprint (base64url, no padding) that checkpoints name.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The raw 32-byte key.
    pub fn raw(&self) -> &[u8; 32] {
        &self.raw
    }

    /// The key as an SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn to_pem(&self) -> String {
        let mut der = ED25519_SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.raw);
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(der)
        )
    }

    /// Check the signature of `cp` (which must name this key).
    pub fn verify(&self, cp: &Checkpoint) -> Result<(), CheckpointError> {
        if cp.key_id != self.key_id {
            return Err(CheckpointError::UnknownKey {
                seq: cp.seq,
                key_id: cp.key_id.clone(),
            });
        }
        let sig = STANDARD
            .decode(cp.signature.as_bytes())
            .map_err(|_| CheckpointError::BadSignature { seq: cp.seq })?;
        signature::UnparsedPublicKey::new(&signature::ED25519, &self.raw)
            .verify(&cp.signed_bytes(), &sig)
            .map_err(|_| CheckpointError::BadSignature { seq: cp.seq })
    }
}

/// The keys a verifier trusts for checkpoints (the current one, and earlier ones after a key
/// rotation).
#[derive(Debug, Clone, Default)]
pub struct CheckpointKeys(Vec<CheckpointPublicKey>);

impl CheckpointKeys {
    pub fn new(keys: impl IntoIterator<Item = CheckpointPublicKey>) -> Self {
        CheckpointKeys(keys.into_iter().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn keys(&self) -> &[CheckpointPublicKey] {
        &self.0
    }

    /// Check `cp` with the key it names.
    pub fn verify(&self, cp: &Checkpoint) -> Result<(), CheckpointError> {
        match self.0.iter().find(|k| k.key_id == cp.key_id) {
            Some(k) => k.verify(cp),
            None => Err(CheckpointError::UnknownKey {
                seq: cp.seq,
                key_id: cp.key_id.clone(),
            }),
        }
    }
}

/// The gateway's checkpoint signing key.
pub struct CheckpointSigner {
    pair: Ed25519KeyPair,
    public: CheckpointPublicKey,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckpointSigner({})", self.public.key_id)
    }
}

impl CheckpointSigner {
    /// From a PKCS#8 `-----BEGIN PRIVATE KEY-----` PEM; `what` names the source in errors.
    pub fn from_pkcs8_pem(pem: &[u8], what: &str) -> Result<Self, CheckpointError> {
        let invalid = || CheckpointError::InvalidKey {
            what: what.to_owned(),
            form: "private key (PKCS#8)",
        };
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem).map_err(|_| invalid())?;
        Self::from_pkcs8_der(der.secret_pkcs8_der()).map_err(|_| invalid())
    }

    /// From PKCS#8 DER (as ring and rcgen write it).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, ring::error::KeyRejected> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)?;
        let mut raw = [0u8; 32];
        raw.copy_from_slice(pair.public_key().as_ref());
        Ok(CheckpointSigner {
            pair,
            public: CheckpointPublicKey::from_raw(raw),
        })
    }

    /// Read a PKCS#8 PEM file.
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let pem = std::fs::read(path).map_err(|source| CheckpointError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_pkcs8_pem(&pem, &path.display().to_string())
    }

    /// A fresh random key (tests and tools).
    pub fn generate() -> Result<Self, ring::error::Unspecified> {
        let rng = ring::rand::SystemRandom::new();
        let der = Ed25519KeyPair::generate_pkcs8(&rng)?;
        Self::from_pkcs8_der(der.as_ref()).map_err(|_| ring::error::Unspecified)
    }

    pub fn public_key(&self) -> &CheckpointPublicKey {
        &self.public
    }

    /// Sign "the head at `seq` is `head`" at `time` (RFC 3339).
    pub fn sign(&self, seq: i64, head: Sha256Hash, time: String) -> Checkpoint {
        let key_id = self.public.key_id.clone();
        let sig = self.pair.sign(&signed_bytes(seq, &head, &time, &key_id));
        Checkpoint {
            seq,
            head,
            time,
            key_id,
            signature: STANDARD.encode(sig.as_ref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_file(rel: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
    }

    #[test]
    fn example_key_pair_signs_and_the_published_key_verifies() {
        let signer =
            CheckpointSigner::load(&repo_file("certs-example/audit/checkpoint-ed25519.key.pem"))
                .expect("example private key loads");
        let public =
            CheckpointPublicKey::load(&repo_file("certs-example/audit/checkpoint-ed25519.pub.pem"))
                .expect("example public key loads");
        assert_eq!(signer.public_key(), &public);
        let cp = signer.sign(42, Sha256Hash::of(b"head"), "2026-01-01T00:00:00Z".into());
        public.verify(&cp).expect("verifies");
        let again = CheckpointPublicKey::from_spki_pem(public.to_pem().as_bytes(), "pem")
            .expect("own PEM parses");
        assert_eq!(again, public);
    }

    #[test]
    fn any_change_to_a_checkpoint_breaks_its_signature() {
        let signer = CheckpointSigner::generate().unwrap();
        let keys = CheckpointKeys::new([signer.public_key().clone()]);
        let cp = signer.sign(7, Sha256Hash::of(b"h"), "2026-01-01T00:00:00Z".into());
        keys.verify(&cp).unwrap();
        let mut m = cp.clone();
        m.seq = 8;
        assert!(matches!(
            keys.verify(&m),
            Err(CheckpointError::BadSignature { .. })
        ));
        let mut m = cp.clone();
        m.head = Sha256Hash::of(b"other");
        assert!(keys.verify(&m).is_err());
        let mut m = cp.clone();
        m.time = "2026-01-01T00:00:01Z".into();
        assert!(keys.verify(&m).is_err());
        let mut m = cp.clone();
        m.signature = "not base64!".into();
        assert!(keys.verify(&m).is_err());
        let other = CheckpointSigner::generate().unwrap();
        let mut m = other.sign(7, cp.head, cp.time.clone());
        assert!(matches!(
            keys.verify(&m),
            Err(CheckpointError::UnknownKey { .. })
        ));
        // Claiming the trusted key id does not help a different key.
        m.key_id = cp.key_id.clone();
        assert!(keys.verify(&m).is_err());
    }

    #[test]
    fn key_id_is_the_rfc7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        let key = CheckpointPublicKey::from_raw(x.try_into().unwrap());
        assert_eq!(key.key_id(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn a_non_ed25519_key_is_refused_with_its_name() {
        let e = CheckpointPublicKey::load(&repo_file("certs-example/jwt-issuer/issuer.pub.pem"))
            .unwrap_err();
        assert!(e.to_string().contains("issuer.pub.pem"), "{e}");
        assert!(
            CheckpointSigner::load(&repo_file("certs-example/jwt-issuer/issuer.key.pem")).is_err()
        );
    }
}
