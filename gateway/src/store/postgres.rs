//! The PostgreSQL backend, for scale-out: several gateway instances on one database. Opens the
//! pool the shared statements run on (migrations at start; sqlx serialises concurrent starts with
//! an advisory lock) over TLS (`verify-full` against the configured CA; plaintext only to a server
//! on loopback); its own SQL is the chain lock in `postgres_chain`. No decisions here.

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnectionMetadata;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{Connection, PgConnection, PgPool};

use super::error::StoreError;
use crate::config::{DatabaseSection, SslMode};

#[derive(Debug, Clone)]
pub struct PgStore {
    pub(super) pool: PgPool,
}

/// A pooled connection idle for longer than this is pinged before it is handed out. A server
/// that restarted (or a network path that broke) leaves the idle connections dead; without the
/// ping the first request on each would be refused after the server is back. Under load
/// connections are never idle this long, so the disclosure path pays no extra round trip.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// Connection options from the section: the URL (naming the application in
/// `pg_stat_activity`) with the TLS the configuration demands, whatever the URL or the `PG*`
/// environment variables say. Refuses plaintext to a server that is not on loopback.
pub(super) fn connect_options(database: &DatabaseSection) -> Result<PgConnectOptions, StoreError> {
    database
        .check_tls()
        .map_err(|(key, message)| StoreError::Tls(format!("{key}: {message}")))?;
    let options = PgConnectOptions::from_str(&database.url)?.application_name("poortwachter");
    match database.sslmode {
        SslMode::VerifyFull => {
            let ca = database.sslrootcert.as_ref().ok_or_else(|| {
                StoreError::Tls("database.sslrootcert: required for verify-full".into())
            })?;
            if !ca.is_file() {
                return Err(StoreError::Tls(format!(
                    "database.sslrootcert: {} is not a readable file",
                    ca.display()
                )));
            }
            Ok(options.ssl_mode(PgSslMode::VerifyFull).ssl_root_cert(ca))
        }
        SslMode::Disable => {
            if !is_local(&options) {
                return Err(StoreError::Tls(format!(
                    "database.sslmode: \"disable\" is only allowed for a PostgreSQL server on \
                     loopback (127.0.0.0/8, ::1, localhost) or a Unix socket, not {}: use \
                     sslmode = \"verify-full\" with database.sslrootcert",
                    options.get_host()
                )));
            }
            Ok(options.ssl_mode(PgSslMode::Disable))
        }
    }
}

/// Whether the options reach the server without crossing a network: a Unix socket, or a
/// loopback address.
fn is_local(options: &PgConnectOptions) -> bool {
    let host = options.get_host();
    if options.get_socket().is_some() || host.starts_with('/') {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

/// A TLS failure at connect, said in the configuration's words (the server's certificate does
/// not chain to the CA, names another host, or the server does not speak TLS at all). rustls'
/// verdicts reach sqlx as I/O errors that carry the `rustls::Error`.
fn refused_tls(e: sqlx::Error) -> StoreError {
    let from_rustls = |io: &std::io::Error| {
        io.get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
    };
    match e {
        sqlx::Error::Io(io) if from_rustls(&io) => StoreError::Tls(format!(
            "no TLS connection to the PostgreSQL server ({io}); nothing was sent in the clear. \
             Its certificate must chain to database.sslrootcert and name the host in \
             database.url"
        )),
        sqlx::Error::Tls(e) => StoreError::Tls(format!(
            "no TLS connection to the PostgreSQL server ({e}); nothing was sent in the clear. \
             Its certificate must chain to database.sslrootcert and name the host in \
             database.url"
        )),
        e => e.into(),
    }
}

/// `before_acquire`: ping a connection that sat idle long enough to have gone stale; a dead one
/// is closed and replaced instead of failing the request that drew it.
fn ping_if_idle(
    conn: &mut PgConnection,
    meta: PoolConnectionMetadata,
) -> futures_util::future::BoxFuture<'_, Result<bool, sqlx::Error>> {
    Box::pin(async move {
        if meta.idle_for < PING_WHEN_IDLE_FOR {
            return Ok(true);
        }
        Ok(conn.ping().await.is_ok())
    })
}

impl PgStore {
    pub async fn open(database: &DatabaseSection) -> Result<Self, StoreError> {
        // No ping before each acquire (one more round trip per query on the disclosure path):
        // sqlx pings every connection when it goes back to the pool and drops it if that fails,
        // and `ping_if_idle` tests the ones that sat idle. A connection that breaks while in use
        // fails its query — that request is refused, never answered without its read or audit
        // record — and is then replaced. While the server is down every acquire fails after
        // `acquire_timeout_ms` (sqlx retries a refused connect until then), so requests are
        // refused in bounded time; once it is back, the next acquire connects again.
        let pool = PgPoolOptions::new()
            .max_connections(database.max_connections.max(1))
            .test_before_acquire(false)
            .before_acquire(ping_if_idle)
            .acquire_timeout(Duration::from_millis(database.acquire_timeout_ms.max(1)))
            .connect_with(connect_options(database)?)
            .await
            .map_err(refused_tls)?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore { pool })
    }

    /// Connect without migrations, every transaction read-only (offline verification must not
    /// change what it verifies).
    pub async fn open_read_only(database: &DatabaseSection) -> Result<Self, StoreError> {
        let options = connect_options(database)?.options([("default_transaction_read_only", "on")]);
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .map_err(refused_tls)?;
        Ok(PgStore { pool })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(url: &str, sslmode: SslMode) -> DatabaseSection {
        DatabaseSection {
            sslmode,
            ..DatabaseSection::new(url)
        }
    }

    #[test]
    fn plaintext_is_refused_for_any_server_off_loopback() {
        for url in [
            "postgres://pw@db.internal:5432/pw",
            "postgres://pw@10.0.0.5/pw",
            "postgres://pw@[2001:db8::1]/pw",
            // The host parameter overrides the URL's host: it is what counts.
            "postgres://pw@127.0.0.1/pw?host=db.internal",
        ] {
            let e = connect_options(&section(url, SslMode::Disable)).unwrap_err();
            let e = e.to_string();
            assert!(e.contains("database.sslmode"), "{url}: {e}");
        }
    }

    #[test]
    fn plaintext_is_accepted_on_loopback_and_unix_sockets() {
        for url in [
            "postgres://pw@127.0.0.1:5432/pw",
            "postgres://pw@127.0.0.2/pw",
            "postgres://pw@[::1]/pw",
            "postgres://pw@localhost/pw",
            "postgres://pw@%2Fvar%2Frun%2Fpostgresql/pw",
            "postgres:///pw?host=/var/run/postgresql",
        ] {
            let options = connect_options(&section(url, SslMode::Disable))
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(matches!(options.get_ssl_mode(), PgSslMode::Disable));
        }
    }

    #[test]
    fn verify_full_is_the_default_and_needs_a_ca() {
        let plain = DatabaseSection::new("postgres://pw@127.0.0.1/pw");
        let e = connect_options(&plain).unwrap_err().to_string();
        assert!(e.contains("database.sslrootcert"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not checked until the handshake").unwrap();
        let with_ca = DatabaseSection {
            sslrootcert: Some(ca),
            ..DatabaseSection::new("postgres://pw@db.internal/pw")
        };
        let options = connect_options(&with_ca).unwrap();
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyFull));
    }

    #[test]
    fn tls_settings_in_the_url_are_refused() {
        for query in [
            "sslmode=disable",
            "sslmode=prefer",
            "sslrootcert=/tmp/other.pem",
            "application_name=x&ssl-mode=allow",
        ] {
            let url = format!("postgres://pw@db.internal/pw?{query}");
            let e = connect_options(&section(&url, SslMode::VerifyFull))
                .unwrap_err()
                .to_string();
            assert!(e.contains("database.url"), "{query}: {e}");
        }
    }

    // Impostors: a stand-in on loopback that answers PostgreSQL's SSLRequest as told and, when
    // it agrees to TLS, presents a certificate of the test's choosing. The store must refuse each
    // with a clear error and send nothing in the clear but the SSLRequest.

    use std::sync::Arc;

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// PostgreSQL's SSLRequest: length 8, code 80877103.
    const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 4, 210, 22, 47];

    struct Identity {
        ca_pem: String,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    }

    /// A fresh CA (named `ca`) and a server certificate from it for `name` (a host name or an
    /// IP address).
    fn identity_for(ca: &str, name: &str) -> Identity {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, ca);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &ca).unwrap();
        Identity {
            ca_pem: ca_cert.pem(),
            chain: vec![cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        }
    }

    /// Serve one connection: answer the SSLRequest with `answer`, then offer TLS with
    /// `identity` (after `S`) or read whatever else comes (after `N`). Returns the port and the
    /// bytes received in the clear.
    async fn impostor(
        answer: u8,
        identity: Option<Identity>,
    ) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut clear = vec![0u8; SSL_REQUEST.len()];
            socket.read_exact(&mut clear).await.unwrap();
            socket.write_all(&[answer]).await.unwrap();
            match identity {
                Some(identity) => {
                    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                        rustls::crypto::ring::default_provider(),
                    ))
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(identity.chain, identity.key)
                    .unwrap();
                    let accepted = tokio_rustls::TlsAcceptor::from(Arc::new(config))
                        .accept(socket)
                        .await;
                    assert!(accepted.is_err(), "the client completed the handshake");
                }
                None => {
                    let mut rest = Vec::new();
                    let read = tokio::time::timeout(
                        Duration::from_secs(10),
                        socket.read_to_end(&mut rest),
                    )
                    .await;
                    assert!(read.is_ok(), "the client neither spoke nor hung up");
                    clear.extend(rest);
                }
            }
            clear
        });
        (port, task)
    }

    /// Open a store on the impostor at `port`, trusting `ca_pem`; returns the error.
    async fn open_against(port: u16, ca_pem: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_pem).unwrap();
        let database = DatabaseSection {
            sslrootcert: Some(ca),
            acquire_timeout_ms: 5000,
            ..DatabaseSection::new(format!(
                "postgres://poortwachter:secret@127.0.0.1:{port}/poortwachter"
            ))
        };
        let opened = tokio::time::timeout(Duration::from_secs(20), PgStore::open(&database))
            .await
            .expect("refused in bounded time");
        opened.expect_err("the impostor is refused").to_string()
    }

    #[tokio::test]
    async fn a_server_whose_certificate_does_not_chain_to_the_configured_ca_is_refused() {
        let (port, clear) = impostor(b'S', Some(identity_for("impostor CA", "127.0.0.1"))).await;
        let trusted = identity_for("configured CA", "127.0.0.1");
        let e = open_against(port, &trusted.ca_pem).await;
        assert!(e.contains("UnknownIssuer"), "{e}");
        assert!(e.contains("database.sslrootcert"), "{e}");
        assert_eq!(
            clear.await.unwrap(),
            SSL_REQUEST,
            "nothing else in the clear"
        );
    }

    #[tokio::test]
    async fn a_server_whose_certificate_names_another_host_is_refused() {
        let other_host = identity_for("configured CA", "db.elsewhere.example");
        let ca_pem = other_host.ca_pem.clone();
        let (port, clear) = impostor(b'S', Some(other_host)).await;
        let e = open_against(port, &ca_pem).await;
        assert!(e.contains("not valid for name"), "{e}");
        assert_eq!(
            clear.await.unwrap(),
            SSL_REQUEST,
            "nothing else in the clear"
        );
    }

    /// A man in the middle that answers "no TLS here" gets no fallback to plaintext: the
    /// start-up message (user name, database) and the password are never sent.
    #[tokio::test]
    async fn a_server_that_refuses_tls_gets_nothing_in_the_clear() {
        let (port, clear) = impostor(b'N', None).await;
        let e = open_against(port, &identity_for("configured CA", "127.0.0.1").ca_pem).await;
        assert!(e.contains("does not support TLS"), "{e}");
        assert_eq!(
            clear.await.unwrap(),
            SSL_REQUEST,
            "nothing else in the clear"
        );
    }
}
