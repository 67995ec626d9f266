//! DEVELOPMENT ONLY key material (`poortwachter dev certs`): a throw-away CA, server and
//! organisation certificates, bad certificates for attack tests, and the signing keys for
//! consents, covenants, officer JWTs and audit checkpoints. Nothing here may ever be used in
//! production.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{Datelike, NaiveDate, Utc};
use rcgen::string::PrintableString;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertificateRevocationListParams,
    DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod,
    KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
    SignatureAlgorithm, PKCS_ECDSA_P256_SHA256, PKCS_ED25519,
};
use ring::rand::{SecureRandom, SystemRandom};

/// UWV: the source organisation in the development setup.
pub const UWV_OIN: &str = "00000001003214345000";
/// Sociale Dienst Drechtsteden: the recipient organisation in the development setup.
pub const SDD_OIN: &str = "00000001823288444000";
/// Gemeente Gorinchem: a real-looking municipality that is outside the covenant.
pub const GORINCHEM_OIN: &str = "00000001001234567000";
/// An OIN that no configuration or covenant mentions.
pub const UNKNOWN_OIN: &str = "00000009999999999000";
/// The gateway itself, as a client of the sources' own services (live disclosure): the
/// reference source accepts only this certificate (`gateway-client.pem`).
pub const GATEWAY_OIN: &str = "00000001555555555000";

/// DNS names and addresses the development server certificate is valid for.
pub const SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

const DEV_CA_NAME: &str = "poortwachter development CA - DEVELOPMENT ONLY";
const FOREIGN_CA_NAME: &str = "foreign development CA - NOT TRUSTED by poortwachter";

/// Write the complete development key set into `dir` (created if missing; existing files are
/// overwritten) and return every file written, in order.
pub fn generate(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Out::new(dir)?;
    let rng = SystemRandom::new();
    let validity = Validity::from_today(Utc::now().date_naive())?;

    // The development CA, trusted by the gateway for client certificates.
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let dev_ca_params = ca_params(DEV_CA_NAME, &validity, &rng)?;
    let ca_cert = dev_ca_params.self_signed(&ca_key)?;
    out.cert("ca.pem", &ca_cert.pem())?;
    out.key("ca-key.pem", &ca_key)?;
    let ca = Issuer::new(dev_ca_params, ca_key);

    // The gateway's server certificate.
    let server_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut server = leaf_params(&validity, &rng)?;
    server.subject_alt_names = CertificateParams::new(
        SERVER_NAMES
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    )?
    .subject_alt_names;
    server.distinguished_name = DistinguishedName::new();
    server
        .distinguished_name
        .push(DnType::CommonName, "poortwachter development server");
    server
        .distinguished_name
        .push(DnType::OrganizationName, "poortwachter DEVELOPMENT ONLY");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    out.cert("server.pem", &server.signed_by(&server_key, &ca)?.pem())?;
    out.key("server-key.pem", &server_key)?;

    // Organisation (client) certificates signed by the development CA.
    let orgs = [
        ("uwv", "UWV", UWV_OIN),
        ("sdd", "Sociale Dienst Drechtsteden", SDD_OIN),
        ("gorinchem", "Gemeente Gorinchem", GORINCHEM_OIN),
        ("unknown-org", "Onbekende Organisatie (test)", UNKNOWN_OIN),
        (
            "gateway-client",
            "poortwachter Drechtsteden (gateway)",
            GATEWAY_OIN,
        ),
    ];
    for (file, name, oin) in orgs {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let params = org_params(name, oin, validity.not_before, validity.not_after, &rng)?;
        out.cert(&format!("{file}.pem"), &params.signed_by(&key, &ca)?.pem())?;
        out.key(&format!("{file}-key.pem"), &key)?;
    }

    // SDD's OIN, signed by the development CA, but its validity lies entirely in the past.
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let params = org_params(
        "Sociale Dienst Drechtsteden",
        SDD_OIN,
        validity.expired_from,
        validity.expired_until,
        &rng,
    )?;
    out.cert("expired.pem", &params.signed_by(&key, &ca)?.pem())?;
    out.key("expired-key.pem", &key)?;

    // SDD's OIN, signed by the development CA, listed as revoked in crl.pem.
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let params = org_params(
        "Sociale Dienst Drechtsteden",
        SDD_OIN,
        validity.not_before,
        validity.not_after,
        &rng,
    )?;
    let revoked_serial = params
        .serial_number
        .clone()
        .context("revoked certificate has no serial number")?;
    out.cert("revoked.pem", &params.signed_by(&key, &ca)?.pem())?;
    out.key("revoked-key.pem", &key)?;
    let (nb, na) = (validity.not_before, validity.not_after);
    let crl = CertificateRevocationListParams {
        this_update: date_time_ymd(nb.0, nb.1, nb.2),
        next_update: date_time_ymd(na.0, na.1, na.2),
        crl_number: random_serial(&rng)?,
        issuing_distribution_point: None,
        revoked_certs: vec![RevokedCertParams {
            serial_number: revoked_serial,
            revocation_time: date_time_ymd(nb.0, nb.1, nb.2),
            reason_code: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca)?;
    out.write("crl.pem", &crl.pem()?, false)?;

    // UWV's OIN, signed by a CA the gateway does not trust.
    let foreign_ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let foreign_ca_params = ca_params(FOREIGN_CA_NAME, &validity, &rng)?;
    out.cert(
        "foreign-ca.pem",
        &foreign_ca_params.self_signed(&foreign_ca_key)?.pem(),
    )?;
    out.key("foreign-ca-key.pem", &foreign_ca_key)?;
    let foreign_ca = Issuer::new(foreign_ca_params, foreign_ca_key);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let params = org_params(
        "UWV",
        UWV_OIN,
        validity.not_before,
        validity.not_after,
        &rng,
    )?;
    out.cert("foreign.pem", &params.signed_by(&key, &foreign_ca)?.pem())?;
    out.key("foreign-key.pem", &key)?;

    // Signing keys (PKCS#8 private, SPKI public).
    let keys: [(&str, &'static SignatureAlgorithm); 10] = [
        ("consent-keys/uwv-es256", &PKCS_ECDSA_P256_SHA256),
        ("consent-keys/sdd-ed25519", &PKCS_ED25519),
        ("consent-keys/gorinchem-es256", &PKCS_ECDSA_P256_SHA256),
        ("covenant-keys/uwv", &PKCS_ECDSA_P256_SHA256),
        ("covenant-keys/sdd", &PKCS_ED25519),
        ("covenant-keys/gorinchem", &PKCS_ECDSA_P256_SHA256),
        ("jwt-issuer/issuer", &PKCS_ECDSA_P256_SHA256),
        ("audit/checkpoint-ed25519", &PKCS_ED25519),
        // Issue 16: the identity providers that sign actor assertions (the employee behind a
        // call).
        ("actor-keys/sdd-idp-es256", &PKCS_ECDSA_P256_SHA256),
        ("actor-keys/gorinchem-idp-ed25519", &PKCS_ED25519),
    ];
    for (stem, alg) in keys {
        let key = KeyPair::generate_for(alg)?;
        out.key(&format!("{stem}.key.pem"), &key)?;
        out.write(&format!("{stem}.pub.pem"), &key.public_key_pem(), false)?;
    }

    out.write("README.md", README, false)?;
    Ok(out.written)
}

/// A calendar date (UTC midnight) in the form rcgen takes; kept as plain numbers so this crate
/// needs no direct dependency on `time`.
#[derive(Clone, Copy)]
struct Ymd(i32, u8, u8);

/// The validity windows used for one generation run.
struct Validity {
    not_before: Ymd,
    not_after: Ymd,
    expired_from: Ymd,
    expired_until: Ymd,
}

impl Validity {
    fn from_today(today: NaiveDate) -> anyhow::Result<Self> {
        // Start yesterday so that a clock slightly behind ours still accepts the certificates.
        let start = today.pred_opt().context("date out of range")?;
        let month = u8::try_from(start.month()).context("month out of range")?;
        // Day 28 exists in every month of every year.
        let day = u8::try_from(start.day().min(28)).context("day out of range")?;
        let year = start.year();
        Ok(Validity {
            not_before: Ymd(year, month, day),
            not_after: Ymd(year + 10, month, day),
            expired_from: Ymd(year - 3, month, day),
            expired_until: Ymd(year - 2, month, day),
        })
    }
}

/// Set a certificate's validity window.
fn set_window(params: &mut CertificateParams, from: Ymd, until: Ymd) {
    params.not_before = date_time_ymd(from.0, from.1, from.2);
    params.not_after = date_time_ymd(until.0, until.1, until.2);
}

fn ca_params(
    name: &str,
    validity: &Validity,
    rng: &SystemRandom,
) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::default();
    set_window(&mut params, validity.not_before, validity.not_after);
    params.serial_number = Some(random_serial(rng)?);
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "poortwachter DEVELOPMENT ONLY");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn leaf_params(validity: &Validity, rng: &SystemRandom) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::default();
    set_window(&mut params, validity.not_before, validity.not_after);
    params.serial_number = Some(random_serial(rng)?);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// An organisation's client certificate: O and CN are the organisation name, serialNumber
/// (2.5.4.5, a PrintableString as X.520 requires) is its OIN.
fn org_params(
    name: &str,
    oin: &str,
    not_before: Ymd,
    not_after: Ymd,
    rng: &SystemRandom,
) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::default();
    set_window(&mut params, not_before, not_after);
    params.serial_number = Some(random_serial(rng)?);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CountryName,
        DnValue::PrintableString("NL".try_into()?),
    );
    params
        .distinguished_name
        .push(DnType::OrganizationName, name);
    params.distinguished_name.push(DnType::CommonName, name);
    let oin: PrintableString = oin.try_into()?;
    params.distinguished_name.push(
        DnType::CustomDnType(vec![2, 5, 4, 5]),
        DnValue::PrintableString(oin),
    );
    Ok(params)
}

/// Add the gateway's client certificate (`gateway-client.pem`, OIN [`GATEWAY_OIN`]), signed by
/// the existing development CA in `dir`, when a key set made before live disclosure lacks it.
/// Returns whether it wrote one.
pub fn ensure_gateway_client(dir: &Path) -> anyhow::Result<bool> {
    if dir.join("gateway-client.pem").exists() {
        return Ok(false);
    }
    let rng = SystemRandom::new();
    let validity = Validity::from_today(Utc::now().date_naive())?;
    let ca_pem = fs::read_to_string(dir.join("ca.pem")).context("cannot read ca.pem")?;
    let ca_key_pem =
        fs::read_to_string(dir.join("ca-key.pem")).context("cannot read ca-key.pem")?;
    let ca_key = KeyPair::from_pem(&ca_key_pem)?;
    let ca = Issuer::from_ca_cert_pem(&ca_pem, ca_key)?;
    let mut out = Out::new(dir)?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let params = org_params(
        "poortwachter Drechtsteden (gateway)",
        GATEWAY_OIN,
        validity.not_before,
        validity.not_after,
        &rng,
    )?;
    out.cert("gateway-client.pem", &params.signed_by(&key, &ca)?.pem())?;
    out.key("gateway-client-key.pem", &key)?;
    Ok(true)
}

/// A random positive 16-byte certificate serial number.
fn random_serial(rng: &SystemRandom) -> anyhow::Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    // Positive and without a leading zero byte, so the DER integer is exactly 16 bytes.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

/// Collects the files written so the caller can list them.
struct Out {
    dir: PathBuf,
    written: Vec<PathBuf>,
}

impl Out {
    fn new(dir: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Out {
            dir: dir.to_path_buf(),
            written: Vec::new(),
        })
    }

    fn cert(&mut self, rel: &str, pem: &str) -> anyhow::Result<()> {
        self.write(rel, pem, false)
    }

    fn key(&mut self, rel: &str, key: &KeyPair) -> anyhow::Result<()> {
        self.write(rel, &key.serialize_pem(), true)
    }

    fn write(&mut self, rel: &str, contents: &str, private: bool) -> anyhow::Result<()> {
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot restrict permissions of {}", path.display()))?;
        }
        #[cfg(not(unix))]
        let _ = private;
        self.written.push(path);
        Ok(())
    }
}

const README: &str = r#"# certs-example: DEVELOPMENT ONLY

**Never use anything in this directory in production.** Every private key here is public: it is
committed to a public repository. These files exist so that the demo, the end-to-end tests and
local development have a complete, working mutual-TLS setup without any real PKI.

Regenerate the whole set (new keys, new certificates, validity starting today) with:

    poortwachter dev certs certs-example

or, from a checkout: `cargo run --bin poortwachter -- dev certs certs-example`.
After regenerating, anything that pins a key (configuration, signed covenants, consent tokens
in test fixtures) must be remade too.

All certificates use ECDSA P-256; signing keys are ES256 (P-256) or EdDSA (Ed25519) as the
tables below say.
Private keys are PKCS#8 PEM (`PRIVATE KEY`), public keys are SPKI PEM (`PUBLIC KEY`).

## Certificate authority and server

| file | what |
|---|---|
| `ca.pem`, `ca-key.pem` | "poortwachter development CA": the CA the gateway trusts for client certificates, and the CA that signed the server certificate. Valid ~10 years. |
| `crl.pem` | a CRL from the development CA that revokes `revoked.pem` |
| `server.pem`, `server-key.pem` | the gateway's server certificate for `localhost`, `127.0.0.1` and `::1` (serverAuth) |

## Organisation (client) certificates

Signed by the development CA, clientAuth, subject `C=NL, O=<name>, CN=<name>,
serialNumber=<OIN>` (OID 2.5.4.5 carries the OIN, as in PKIoverheid certificates). Valid ~10
years.

| file | organisation | OIN | role |
|---|---|---|---|
| `uwv.pem`, `uwv-key.pem` | UWV | 00000001003214345000 | source |
| `sdd.pem`, `sdd-key.pem` | Sociale Dienst Drechtsteden | 00000001823288444000 | recipient |
| `gorinchem.pem`, `gorinchem-key.pem` | Gemeente Gorinchem | 00000001001234567000 | a municipality outside the covenant |

## Certificates for attack tests (the gateway must refuse these)

| file | what is wrong with it |
|---|---|
| `expired.pem`, `expired-key.pem` | SDD's OIN, signed by the development CA, but valid only from 3 to 2 years ago |
| `revoked.pem`, `revoked-key.pem` | SDD's OIN, signed by the development CA, revoked in `crl.pem` |
| `foreign-ca.pem`, `foreign-ca-key.pem` | a different CA that the gateway does not trust |
| `foreign.pem`, `foreign-key.pem` | UWV's OIN, but signed by the foreign CA |
| `unknown-org.pem`, `unknown-org-key.pem` | signed by the development CA, OIN 00000009999999999000, which no configuration or covenant knows |

## Signing keys

| file | what |
|---|---|
| `consent-keys/uwv-es256.key.pem`, `.pub.pem` | UWV's consent-token signing key (ES256) |
| `consent-keys/sdd-ed25519.key.pem`, `.pub.pem` | SDD's consent-token signing key (EdDSA, Ed25519) |
| `consent-keys/gorinchem-es256.key.pem`, `.pub.pem` | Gorinchem's consent-token signing key (ES256) |
| `covenant-keys/uwv.key.pem`, `.pub.pem` | UWV's covenant signing key (ES256) |
| `covenant-keys/sdd.key.pem`, `.pub.pem` | SDD's covenant signing key (EdDSA, Ed25519) |
| `covenant-keys/gorinchem.key.pem`, `.pub.pem` | Gorinchem's covenant signing key (ES256) |
| `jwt-issuer/issuer.key.pem`, `.pub.pem` | the issuer of bearer JWTs for privacy officers, covenant administrators and operators (ES256) |
| `audit/checkpoint-ed25519.key.pem`, `.pub.pem` | the gateway's audit checkpoint signing key (Ed25519) |
| `actor-keys/sdd-idp-es256.key.pem`, `.pub.pem` | SDD's identity provider: signs actor assertions for SDD's employees (ES256) |
| `actor-keys/gorinchem-idp-ed25519.key.pem`, `.pub.pem` | Gorinchem's identity provider: signs actor assertions for Gorinchem's employees (EdDSA, Ed25519) |
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let dir = std::env::temp_dir()
                .join(format!("poortwachter-{tag}-{}-{nanos}", std::process::id()));
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn sign_and_verify(dir: &Path, stem: &str, alg: Algorithm) {
        let private = fs::read(dir.join(format!("{stem}.key.pem"))).unwrap();
        let public = fs::read(dir.join(format!("{stem}.pub.pem"))).unwrap();
        let (enc, dec) = match alg {
            Algorithm::ES256 => (
                EncodingKey::from_ec_pem(&private).unwrap(),
                DecodingKey::from_ec_pem(&public).unwrap(),
            ),
            Algorithm::EdDSA => (
                EncodingKey::from_ed_pem(&private).unwrap(),
                DecodingKey::from_ed_pem(&public).unwrap(),
            ),
            other => panic!("unexpected algorithm {other:?}"),
        };
        let claims = serde_json::json!({ "sub": "test", "exp": 4_000_000_000u64 });
        let token = jsonwebtoken::encode(&Header::new(alg), &claims, &enc)
            .unwrap_or_else(|e| panic!("{stem}: cannot sign: {e}"));
        jsonwebtoken::decode::<serde_json::Value>(&token, &dec, &Validation::new(alg))
            .unwrap_or_else(|e| panic!("{stem}: cannot verify: {e}"));
    }

    #[test]
    fn generate_writes_every_file_it_lists() {
        let tmp = TempDir::new("devcerts");
        let written = generate(&tmp.0).expect("generate");
        for path in &written {
            assert!(path.is_file(), "{} listed but missing", path.display());
        }
        for name in [
            "ca.pem",
            "server-key.pem",
            "uwv.pem",
            "sdd.pem",
            "gorinchem.pem",
            "expired.pem",
            "foreign.pem",
            "unknown-org.pem",
            "crl.pem",
            "consent-keys/sdd-ed25519.pub.pem",
            "audit/checkpoint-ed25519.key.pem",
            "README.md",
        ] {
            assert!(written.contains(&tmp.0.join(name)), "{name} not written");
        }
    }

    #[test]
    fn generated_signing_keys_sign_and_verify_with_jsonwebtoken() {
        let tmp = TempDir::new("devkeys");
        generate(&tmp.0).expect("generate");
        sign_and_verify(&tmp.0, "consent-keys/uwv-es256", Algorithm::ES256);
        sign_and_verify(&tmp.0, "consent-keys/sdd-ed25519", Algorithm::EdDSA);
        sign_and_verify(&tmp.0, "consent-keys/gorinchem-es256", Algorithm::ES256);
        sign_and_verify(&tmp.0, "covenant-keys/uwv", Algorithm::ES256);
        sign_and_verify(&tmp.0, "covenant-keys/sdd", Algorithm::EdDSA);
        sign_and_verify(&tmp.0, "jwt-issuer/issuer", Algorithm::ES256);
    }

    #[test]
    fn checkpoint_key_loads_as_ring_ed25519_pkcs8() {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::PrivatePkcs8KeyDer;
        let tmp = TempDir::new("devckpt");
        generate(&tmp.0).expect("generate");
        let der = PrivatePkcs8KeyDer::from_pem_file(tmp.0.join("audit/checkpoint-ed25519.key.pem"))
            .expect("PKCS#8 PEM");
        ring::signature::Ed25519KeyPair::from_pkcs8(der.secret_pkcs8_der())
            .expect("ring accepts the checkpoint key");
    }
}
