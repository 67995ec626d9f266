//! DEVELOPMENT ONLY. The TLS client configuration of the development clients (the test client and
//! the load generator): trust the CA certificates in one PEM file, optionally present an
//! organisation certificate; ring, TLS 1.3 and 1.2, ALPN `http/1.1`. The gateway's own TLS (server
//! side, peer identity) is `gateway::tls`, which this crate must not depend on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a client configuration could not be made. Every message names the file involved.
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
    #[error("{}: not a usable CA certificate: {reason}", path.display())]
    BadCa { path: PathBuf, reason: String },
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

/// Build a rustls client configuration (ring provider, TLS 1.3 and 1.2, ALPN `http/1.1`) that
/// trusts the CA certificates in `ca_pem` and, when given, presents `identity` = (certificate
/// chain PEM, private key PEM).
pub fn client_config(
    ca_pem: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca_pem)? {
        roots.add(cert).map_err(|e| TlsError::BadCa {
            path: ca_pem.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Protocol)?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_private_key(key)?)
            .map_err(|source| TlsError::Identity {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                source,
            })?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Every certificate in a PEM file, in order; at least one.
fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
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

/// The first private key (PKCS#8, SEC1 or PKCS#1) in a PEM file.
fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
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

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../certs-example")
            .join(name)
    }

    #[test]
    fn example_ca_and_identity_make_a_client_config_offering_http1() {
        let config = client_config(
            &example("ca.pem"),
            Some((&example("sdd.pem"), &example("sdd-key.pem"))),
        )
        .expect("client config");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(config.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn a_key_file_as_certificate_or_a_certificate_as_key_is_named_in_the_error() {
        let err = client_config(&example("ca-key.pem"), None).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
        assert!(err.to_string().contains("ca-key.pem"), "{err}");
        let err = client_config(
            &example("ca.pem"),
            Some((&example("sdd.pem"), &example("sdd.pem"))),
        )
        .unwrap_err();
        assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err}");
        let err = client_config(&example("missing.pem"), None).unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }), "{err}");
    }
}
