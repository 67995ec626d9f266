//! Cryptography at rest and for pseudonyms: envelope encryption (AES-256-GCM, a fresh data key per
//! record wrapped by the key-encryption key), subject pseudonyms (HMAC-SHA256) and random ids.
//! Never logs keys, plaintexts or BSNs.

use policy::Bsn;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("the key-encryption key must be exactly 32 bytes")]
    KekLength,
    #[error("the random number generator failed")]
    Random,
    #[error("ciphertext could not be authenticated (wrong key, or tampered)")]
    Open,
}

/// A sealed record: the data key wrapped by the KEK, and the payload sealed by the data key.
/// Both carry their nonce in front of the ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub wrapped_key: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// The key-encryption key. Data keys are never stored unwrapped.
pub struct Kek {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

fn seal_with(
    key: &LessSafeKey,
    rng: &SystemRandom,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| CryptoError::Random)?;
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut buf,
    )
    .map_err(|_| CryptoError::Random)?;
    let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf);
    Ok(out)
}

fn open_with(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
        return Err(CryptoError::Open);
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
    let mut buf = rest.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .map_err(|_| CryptoError::Open)?;
    Ok(plain.to_vec())
}

impl Kek {
    pub fn new(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != 32 {
            return Err(CryptoError::KekLength);
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| CryptoError::KekLength)?;
        Ok(Kek {
            key: LessSafeKey::new(key),
            rng: SystemRandom::new(),
        })
    }

    /// Seal `plaintext` under a fresh data key; `aad` binds it to its row (purpose, subject,
    /// source) so a ciphertext cannot be moved to another row.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Sealed, CryptoError> {
        let mut dek = [0u8; 32];
        self.rng.fill(&mut dek).map_err(|_| CryptoError::Random)?;
        let data_key =
            LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &dek).map_err(|_| CryptoError::Random)?);
        let ciphertext = seal_with(&data_key, &self.rng, aad, plaintext)?;
        let wrapped_key = seal_with(&self.key, &self.rng, aad, &dek)?;
        dek.fill(0);
        Ok(Sealed {
            wrapped_key,
            ciphertext,
        })
    }

    pub fn open(&self, aad: &[u8], sealed: &Sealed) -> Result<Vec<u8>, CryptoError> {
        let mut dek = open_with(&self.key, aad, &sealed.wrapped_key)?;
        let data_key =
            LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &dek).map_err(|_| CryptoError::Open)?);
        dek.fill(0);
        open_with(&data_key, aad, &sealed.ciphertext)
    }
}

/// Turns a BSN into a stable pseudonym (HMAC-SHA256 with a gateway secret), so that audit
/// records and storage keys never hold the BSN itself.
#[derive(Clone)]
pub struct Pseudonymizer {
    key: hmac::Key,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(..)")
    }
}

impl Pseudonymizer {
    pub fn new(secret: &[u8]) -> Self {
        Pseudonymizer {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// Lowercase hex of HMAC-SHA256(secret, "bsn:" + BSN).
    pub fn pseudonym(&self, bsn: &Bsn) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"bsn:");
        ctx.update(bsn.expose().as_bytes());
        lower_hex(ctx.sign().as_ref())
    }
}

/// Lowercase hex of `bytes`, encoded in one pass (`hex::encode` goes character by character;
/// pseudonyms and ids are made on every request).
fn lower_hex(bytes: &[u8]) -> String {
    let mut digits = vec![0u8; bytes.len() * 2];
    // The buffer is exactly twice the input, so encoding cannot fail; hex digits are ASCII.
    let _ = hex::encode_to_slice(bytes, &mut digits);
    String::from_utf8(digits).unwrap_or_default()
}

/// Additional authenticated data binding sealed consent claims to their row.
pub fn consent_aad(jti: &str) -> String {
    format!("consent\0{jti}")
}

/// Additional authenticated data binding a sealed handover record to its row.
pub fn handover_aad(purpose: &str, pseudonym: &str, source: &str) -> String {
    format!("handover\0{purpose}\0{pseudonym}\0{source}")
}

/// A random id with a readable prefix, e.g. `dsc_3f9a…` (128 bits of randomness).
pub fn random_id(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    // SystemRandom only fails when the OS has no entropy source; ids then fall back to a
    // time-based value, which is still unique per process because of the counter.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let t = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64;
        bytes[..8].copy_from_slice(&t.to_be_bytes());
        bytes[8..].copy_from_slice(&n.to_be_bytes());
    }
    format!("{prefix}_{}", lower_hex(&bytes))
}

/// An id for an audit record (and the disclosure, handover or consent it answers for), e.g.
/// `dsc_019ab8…`: the same 32 hex digits as `random_id`, but the first 48 bits are the
/// millisecond it was made and only the other 80 are random. Ids made later sort later, so the
/// unique index on `audit_log.id` grows at its end instead of touching a random page per record
/// (fewer pages written per audit commit; BENCHMARKS.md). The id reveals when it was made, which
/// the record it names states anyway; 80 random bits keep it unguessable.
pub fn time_ordered_id(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    let millis = chrono::Utc::now().timestamp_millis().max(0) as u64;
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    if SystemRandom::new().fill(&mut bytes[6..]).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        bytes[8..].copy_from_slice(&n.to_be_bytes());
    }
    format!("{prefix}_{}", lower_hex(&bytes))
}

/// Fresh random bytes.
pub fn random_bytes(len: usize) -> Result<Vec<u8>, CryptoError> {
    let mut out = vec![0u8; len];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| CryptoError::Random)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_ordered_ids_sort_by_time_are_unique_and_keep_the_random_id_shape() {
        let first = super::time_ordered_id("dsc");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let many: Vec<String> = (0..1000).map(|_| super::time_ordered_id("dsc")).collect();
        let unique: std::collections::BTreeSet<&String> = many.iter().collect();
        assert_eq!(unique.len(), many.len());
        for id in &many {
            assert!(id > &first, "{id} sorts before the earlier {first}");
            let hex = id.strip_prefix("dsc_").unwrap();
            assert_eq!(hex.len(), 32);
            assert!(hex
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        }
        assert_eq!(super::random_id("dsc").len(), first.len());
    }

    use super::*;

    #[test]
    fn seal_open_round_trips_and_binds_to_aad() {
        let kek = Kek::new(&[7u8; 32]).unwrap();
        let sealed = kek.seal(b"row-1", b"{\"own_transport\":true}").unwrap();
        assert_eq!(
            kek.open(b"row-1", &sealed).unwrap(),
            b"{\"own_transport\":true}"
        );
        assert_eq!(kek.open(b"row-2", &sealed), Err(CryptoError::Open));
        let other = Kek::new(&[8u8; 32]).unwrap();
        assert_eq!(other.open(b"row-1", &sealed), Err(CryptoError::Open));
        let mut tampered = sealed.clone();
        let last = tampered.ciphertext.len() - 1;
        tampered.ciphertext[last] ^= 1;
        assert_eq!(kek.open(b"row-1", &tampered), Err(CryptoError::Open));
    }

    #[test]
    fn every_record_gets_a_fresh_data_key() {
        let kek = Kek::new(&[7u8; 32]).unwrap();
        let a = kek.seal(b"r", b"same").unwrap();
        let b = kek.seal(b"r", b"same").unwrap();
        assert_ne!(a.wrapped_key, b.wrapped_key);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert!(!a.ciphertext.windows(4).any(|w| w == b"same"));
    }

    #[test]
    fn pseudonyms_are_stable_keyed_and_hide_the_bsn() {
        let bsn: Bsn = "111222333".parse().unwrap();
        let p = Pseudonymizer::new(b"secret-one-that-is-long-enough!!");
        let q = Pseudonymizer::new(b"secret-two-that-is-long-enough!!");
        assert_eq!(p.pseudonym(&bsn), p.pseudonym(&bsn));
        assert_ne!(p.pseudonym(&bsn), q.pseudonym(&bsn));
        assert!(!p.pseudonym(&bsn).contains("111222333"));
        assert_eq!(p.pseudonym(&bsn).len(), 64);
        // Pinned: stored consents, records and audit entries are found by this exact value, so
        // it may never change (computed independently with Python's hmac module).
        assert_eq!(
            p.pseudonym(&bsn),
            "433b5a7f7b8405d5a0d7773ca0181604aa6c73de1d9bb795ac04bc03f0ba79c3"
        );
    }

    #[test]
    fn kek_must_be_32_bytes() {
        assert_eq!(Kek::new(&[0u8; 16]).unwrap_err(), CryptoError::KekLength);
    }
}
