//! TLS setup and peer identity: loads certificates and keys, builds the rustls server
//! configuration (ring provider, optional client certificates, CRLs), and reads the calling
//! organisation's OIN from its verified client certificate. Never logs personal data.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use policy::Oin;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use x509_parser::oid_registry::OID_X509_SERIALNUMBER;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Why TLS material could not be loaded or combined. Every message names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: malformed PEM: {source}", path.display())]
    Pem { path: PathBuf, source: pem::Error },
    #[error("{}: no certificate found (expected a PEM `CERTIFICATE` block)", path.display())]
    NoCertificate { path: PathBuf },
    #[error(
        "{}: no private key found (expected a PEM `PRIVATE KEY`, `EC PRIVATE KEY` or \
         `RSA PRIVATE KEY` block)",
        path.display()
    )]
    NoPrivateKey { path: PathBuf },
    #[error("{}: no certificate revocation list found (expected a PEM `X509 CRL` block)", path.display())]
    NoCrl { path: PathBuf },
    #[error("{}: not a usable CA certificate: {reason}", path.display())]
    BadCa { path: PathBuf, reason: String },
    #[error("{}: not a usable certificate revocation list: {reason}", path.display())]
    BadCrl { path: PathBuf, reason: String },
    #[error(
        "certificate {} with key {} is not a usable identity: {source}",
        cert.display(),
        key.display()
    )]
    Identity {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("cannot configure TLS protocol versions: {0}")]
    Protocol(rustls::Error),
}

/// Why a connection carries no usable organisation identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// The client presented no certificate (allowed for human endpoints only).
    #[error("the client presented no certificate")]
    NoCertificate,
    /// The certificate's subject has no single, well-formed 20-digit `serialNumber` (OIN), or the
    /// certificate could not be parsed.
    #[error("the client certificate's subject carries no valid OIN (serialNumber)")]
    NoOin,
}

/// The identity of a peer as read from its verified leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The organisation: subject `serialNumber` (2.5.4.5).
    pub oin: Oin,
    /// The subject common name (an organisation name, not a person), for logs.
    pub common_name: Option<String>,
}

/// Read every certificate in a PEM file, in order. At least one is required.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Read the first private key (PKCS#8, SEC1 or PKCS#1) in a PEM file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            path: path.to_path_buf(),
        },
        source => TlsError::Pem {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// Read every CRL in a PEM file. At least one is required.
pub fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let crls = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.to_path_buf(),
            source,
        })?;
    if crls.is_empty() {
        return Err(TlsError::NoCrl {
            path: path.to_path_buf(),
        });
    }
    Ok(crls)
}

/// Load the trust anchors for peer certificates from a PEM file of CA certificates.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| TlsError::BadCa {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// The crypto provider used everywhere: ring, chosen explicitly rather than process-wide.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The protocol versions we speak: TLS 1.3 and 1.2.
pub const PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Build the gateway's server configuration.
///
/// Client certificates are requested and, when presented, must chain to a CA in `client_ca`
/// (and not be revoked by any CRL in `crls`); a client without a certificate is let through
/// so that human endpoints (bearer JWT) work — system endpoints must refuse such connections
/// themselves ([`PeerError::NoCertificate`]). ALPN offers `h2` and `http/1.1`.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
    crls: &[PathBuf],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = provider();
    let roots = Arc::new(load_roots(client_ca)?);

    let mut all_crls = Vec::new();
    for path in crls {
        let loaded = load_crls(path)?;
        // Check each file on its own so that a bad CRL is reported with its file name.
        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .with_crls(loaded.iter().cloned())
            .build()
            .map_err(|e| TlsError::BadCrl {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        all_crls.extend(loaded);
    }

    let mut verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
        .allow_unauthenticated();
    if !all_crls.is_empty() {
        verifier = verifier.with_crls(all_crls);
    }
    let verifier = verifier.build().map_err(|e| TlsError::BadCa {
        path: client_ca.to_path_buf(),
        reason: e.to_string(),
    })?;

    let chain = load_certs(cert)?;
    let private_key = load_private_key(key)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(TlsError::Protocol)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, private_key)
        .map_err(|source| TlsError::Identity {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            source,
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The OIN of the peer, from the subject `serialNumber` of its leaf certificate. Pass the
/// result of `ServerConnection::peer_certificates()` (already verified by rustls).
pub fn peer_oin(certs: Option<&[CertificateDer<'_>]>) -> Result<Oin, PeerError> {
    peer_identity(certs).map(|id| id.oin)
}

/// Like [`peer_oin`], and also the subject common name for logs.
pub fn peer_identity(certs: Option<&[CertificateDer<'_>]>) -> Result<PeerIdentity, PeerError> {
    let leaf = certs
        .and_then(|c| c.first())
        .ok_or(PeerError::NoCertificate)?;
    let (_, cert) = X509Certificate::from_der(leaf.as_ref()).map_err(|_| PeerError::NoOin)?;
    let subject = cert.subject();

    // X.520 serialNumber (2.5.4.5) carries the OIN.
    let mut serials = subject.iter_by_oid(&OID_X509_SERIALNUMBER);
    let oin_attr = serials.next().ok_or(PeerError::NoOin)?;
    // Two serialNumber attributes would make the identity ambiguous; refuse rather than guess.
    if serials.next().is_some() {
        return Err(PeerError::NoOin);
    }
    let oin = oin_attr
        .as_str()
        .map_err(|_| PeerError::NoOin)?
        .parse::<Oin>()
        .map_err(|_| PeerError::NoOin)?;

    let common_name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    Ok(PeerIdentity { oin, common_name })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::server::danger::ClientCertVerifier;
    use rustls_pki_types::UnixTime;

    // The OINs in the committed example certificates (certs-example/README.md).
    const UWV_OIN: &str = "00000001003214345000";
    const SDD_OIN: &str = "00000001823288444000";
    const UNKNOWN_OIN: &str = "00000009999999999000";

    fn example(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../certs-example")
            .join(name)
    }

    fn leaf(name: &str) -> Vec<CertificateDer<'static>> {
        load_certs(&example(name)).expect("example certificate loads")
    }

    fn verifier(crls: &[&str]) -> Arc<dyn ClientCertVerifier> {
        let roots = Arc::new(load_roots(&example("ca.pem")).expect("CA loads"));
        let mut b = WebPkiClientVerifier::builder_with_provider(roots, provider());
        let crls: Vec<_> = crls
            .iter()
            .flat_map(|c| load_crls(&example(c)).expect("CRL loads"))
            .collect();
        if !crls.is_empty() {
            b = b.with_crls(crls);
        }
        b.build().expect("verifier builds")
    }

    fn verify(v: &dyn ClientCertVerifier, name: &str) -> Result<(), rustls::Error> {
        let chain = leaf(name);
        v.verify_client_cert(&chain[0], &chain[1..], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn peer_oin_reads_uwv_oin_from_its_certificate() {
        let certs = leaf("uwv.pem");
        assert_eq!(peer_oin(Some(&certs)).unwrap().as_str(), UWV_OIN);
        let id = peer_identity(Some(&certs)).unwrap();
        assert_eq!(id.common_name.as_deref(), Some("UWV"));
    }

    #[test]
    fn peer_oin_reads_sdd_and_unknown_org() {
        assert_eq!(peer_oin(Some(&leaf("sdd.pem"))).unwrap().as_str(), SDD_OIN);
        assert_eq!(
            peer_oin(Some(&leaf("unknown-org.pem"))).unwrap().as_str(),
            UNKNOWN_OIN
        );
    }

    #[test]
    fn server_certificate_has_no_oin() {
        assert_eq!(peer_oin(Some(&leaf("server.pem"))), Err(PeerError::NoOin));
    }

    #[test]
    fn missing_certificate_is_no_certificate() {
        assert_eq!(peer_oin(None), Err(PeerError::NoCertificate));
        assert_eq!(peer_oin(Some(&[])), Err(PeerError::NoCertificate));
    }

    #[test]
    fn garbage_certificate_is_no_oin() {
        let junk = [CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00])];
        assert_eq!(peer_oin(Some(&junk)), Err(PeerError::NoOin));
    }

    #[test]
    fn server_config_builds_from_example_files() {
        let config = server_config(
            &example("server.pem"),
            &example("server-key.pem"),
            &example("ca.pem"),
            &[example("crl.pem")],
        )
        .expect("server config builds");
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        server_config(
            &example("server.pem"),
            &example("server-key.pem"),
            &example("ca.pem"),
            &[],
        )
        .expect("server config builds without CRLs");
    }

    #[test]
    fn missing_file_error_names_the_file() {
        let missing = example("does-not-exist.pem");
        let err = server_config(
            &example("server.pem"),
            &example("server-key.pem"),
            &missing,
            &[],
        )
        .unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }));
        assert!(err.to_string().contains("does-not-exist.pem"), "{err}");
    }

    #[test]
    fn wrong_file_kind_error_names_the_file() {
        // A key file where a certificate is expected, and vice versa.
        let err = load_certs(&example("server-key.pem")).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
        assert!(err.to_string().contains("server-key.pem"), "{err}");
        let err = load_private_key(&example("server.pem")).unwrap_err();
        assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err}");
        assert!(err.to_string().contains("server.pem"), "{err}");
        let err = server_config(
            &example("server.pem"),
            &example("server-key.pem"),
            &example("ca.pem"),
            &[example("ca.pem")],
        )
        .unwrap_err();
        assert!(err.to_string().contains("ca.pem"), "{err}");
    }

    #[test]
    fn mismatched_certificate_and_key_are_refused() {
        let err = server_config(
            &example("server.pem"),
            &example("uwv-key.pem"),
            &example("ca.pem"),
            &[],
        )
        .unwrap_err();
        assert!(matches!(err, TlsError::Identity { .. }), "{err}");
        assert!(err.to_string().contains("uwv-key.pem"), "{err}");
    }

    #[test]
    fn organisation_certificates_chain_to_the_dev_ca() {
        let v = verifier(&["crl.pem"]);
        for name in ["uwv.pem", "sdd.pem", "gorinchem.pem", "unknown-org.pem"] {
            verify(v.as_ref(), name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn expired_certificate_is_refused() {
        let err = verify(verifier(&[]).as_ref(), "expired.pem").unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext { .. })
                    | rustls::Error::InvalidCertificate(rustls::CertificateError::Expired)
            ),
            "{err:?}"
        );
    }

    #[test]
    fn certificate_from_a_foreign_ca_is_refused() {
        let err = verify(verifier(&[]).as_ref(), "foreign.pem").unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
            ),
            "{err:?}"
        );
    }

    #[test]
    fn revoked_certificate_is_refused_when_the_crl_is_loaded() {
        verify(verifier(&[]).as_ref(), "revoked.pem").expect("valid without the CRL");
        let err = verify(verifier(&["crl.pem"]).as_ref(), "revoked.pem").unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked)
            ),
            "{err:?}"
        );
    }

    #[test]
    fn server_certificate_is_not_a_client_certificate() {
        // serverAuth only: the client verifier must not accept it as a client identity.
        assert!(verify(verifier(&[]).as_ref(), "server.pem").is_err());
    }
}
