//! DEVELOPMENT ONLY. A small mutual-TLS HTTP/1.1 client for the demo, the end-to-end tests and
//! the load generator: trusts one CA, optionally presents an organisation certificate, and keeps
//! connections alive. Never logs request or response bodies.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{HeaderMap, Method, Request};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::tls::TlsError;

/// Where the client connects unless told otherwise.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8443);
/// The name the server certificate is checked against unless told otherwise.
pub const DEFAULT_SERVER_NAME: &str = "localhost";
/// How long one request (connect, handshake, send, read the whole response) may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle keep-alive connections kept per client (shared by its clones).
const MAX_IDLE: usize = 64;

/// Why a request could not be made or answered. An HTTP error status is not an error here: it is
/// a [`ClientResponse`].
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Config(#[from] TlsError),
    #[error("invalid server name {0:?}")]
    InvalidServerName(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS handshake with {addr} failed: {source}")]
    Handshake {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP exchange failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
}

impl ClientError {
    /// The TLS error behind this failure, if any: e.g. the alert a server sends when it refuses
    /// the client certificate. With TLS 1.3 that refusal arrives after the client's side of the
    /// handshake is done, so it usually shows up wrapped in [`ClientError::Http`].
    pub fn tls_error(&self) -> Option<&rustls::Error> {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(err) = current {
            if let Some(tls) = err.downcast_ref::<rustls::Error>() {
                return Some(tls);
            }
            // `io::Error::source` skips the wrapped error itself, so look inside explicitly.
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                if let Some(tls) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
                    return Some(tls);
                }
            }
            current = err.source();
        }
        None
    }
}

/// An answer from the server.
#[derive(Debug, Clone)]
pub struct ClientResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl ClientResponse {
    /// The body parsed as JSON; `Value::Null` when it is empty or not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Configures an [`MtlsClient`].
#[derive(Debug, Clone)]
pub struct MtlsClientBuilder {
    ca: PathBuf,
    identity: Option<(PathBuf, PathBuf)>,
    addr: SocketAddr,
    server_name: String,
    timeout: Duration,
}

impl MtlsClientBuilder {
    /// Present this certificate (PEM chain) and private key (PEM). Without it the client
    /// connects with no certificate.
    pub fn identity(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.identity = Some((cert.into(), key.into()));
        self
    }

    /// Connect to this address (default `127.0.0.1:8443`).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Connect to `127.0.0.1:port`.
    pub fn port(mut self, port: u16) -> Self {
        self.addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
        self
    }

    /// Check the server certificate against this name (default `localhost`).
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = name.into();
        self
    }

    /// Limit each request, connection set-up included (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Load the certificates and keys and make the client. Connects lazily, on first use.
    pub fn build(self) -> Result<MtlsClient, ClientError> {
        let identity = self
            .identity
            .as_ref()
            .map(|(c, k)| (c.as_path(), k.as_path()));
        let config = crate::tls::client_config(&self.ca, identity)?;
        MtlsClient::from_config(config, self.addr, &self.server_name, self.timeout)
    }
}

/// A mutual-TLS HTTP/1.1 client bound to one server. Cheap to clone; clones share the pool of
/// keep-alive connections, so concurrent requests each get their own connection.
#[derive(Clone)]
pub struct MtlsClient {
    inner: Arc<Inner>,
}

struct Inner {
    connector: TlsConnector,
    addr: SocketAddr,
    server_name: ServerName<'static>,
    host_header: String,
    timeout: Duration,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl std::fmt::Debug for MtlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtlsClient")
            .field("addr", &self.inner.addr)
            .field("server_name", &self.inner.server_name)
            .finish_non_exhaustive()
    }
}

impl MtlsClient {
    /// Start configuring a client that trusts the CA certificates in `ca_pem`.
    pub fn builder(ca_pem: impl Into<PathBuf>) -> MtlsClientBuilder {
        MtlsClientBuilder {
            ca: ca_pem.into(),
            identity: None,
            addr: DEFAULT_ADDR,
            server_name: DEFAULT_SERVER_NAME.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Make a client from a ready TLS configuration (e.g. one shared by many load-generator
    /// clients). The configuration should offer ALPN `http/1.1` or nothing.
    pub fn from_config(
        config: Arc<rustls::ClientConfig>,
        addr: SocketAddr,
        server_name: &str,
        timeout: Duration,
    ) -> Result<MtlsClient, ClientError> {
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| ClientError::InvalidServerName(server_name.to_owned()))?;
        let host_header = match &server_name {
            ServerName::DnsName(name) => format!("{}:{}", name.as_ref(), addr.port()),
            _ => addr.to_string(),
        };
        Ok(MtlsClient {
            inner: Arc::new(Inner {
                connector: TlsConnector::from(config),
                addr,
                server_name,
                host_header,
                timeout,
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The address this client connects to.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Send one request and read the whole response. `url_path` is the path and query
    /// (`/v1/disclosures`); `bearer` becomes `Authorization: Bearer …`; `body` is sent as
    /// `application/json`.
    pub async fn send(
        &self,
        method: Method,
        url_path: &str,
        bearer: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<ClientResponse, ClientError> {
        self.send_with(method, url_path, bearer, &[], body).await
    }

    /// [`send`](Self::send) with extra request headers (e.g. `Actor-Token`, issue 16).
    pub async fn send_with(
        &self,
        method: Method,
        url_path: &str,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<ClientResponse, ClientError> {
        let request = self.request(method, url_path, bearer, headers, body)?;
        let timeout = self.inner.timeout;
        tokio::time::timeout(timeout, self.exchange(request))
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }

    /// `GET` without a bearer token.
    pub async fn get(&self, url_path: &str) -> Result<ClientResponse, ClientError> {
        self.send(Method::GET, url_path, None, None).await
    }

    /// `POST` a JSON value without a bearer token.
    pub async fn post_json(
        &self,
        url_path: &str,
        body: &serde_json::Value,
    ) -> Result<ClientResponse, ClientError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| ClientError::InvalidRequest(format!("body is not serialisable: {e}")))?;
        self.send(Method::POST, url_path, None, Some(body)).await
    }

    fn request(
        &self,
        method: Method,
        url_path: &str,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        if !url_path.starts_with('/') {
            return Err(ClientError::InvalidRequest(format!(
                "path must start with '/': {url_path:?}"
            )));
        }
        let mut builder = Request::builder()
            .method(method)
            .uri(url_path)
            .header(HOST, &self.inner.host_header)
            .header(ACCEPT, "application/json, application/problem+json");
        if let Some(token) = bearer {
            builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let body = match body {
            Some(bytes) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(bytes))
            }
            None => Full::new(Bytes::new()),
        };
        builder
            .body(body)
            .map_err(|e| ClientError::InvalidRequest(e.to_string()))
    }

    async fn exchange(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<ClientResponse, ClientError> {
        // An idle connection may have been closed by the server since its last use. When the
        // request was not yet written, hyper hands it back and we retry on a fresh connection;
        // once written it is never resent (a disclosure is not idempotent).
        let mut sender = self.checkout().await?;
        let response = match sender.try_send_request(request).await {
            Ok(response) => response,
            Err(mut err) => match err.take_message() {
                Some(unsent) => {
                    request = unsent;
                    sender = self.connect().await?;
                    sender.send_request(request).await?
                }
                None => return Err(err.into_error().into()),
            },
        };

        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes().to_vec();
        self.checkin(sender);
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(ClientResponse {
            status: parts.status.as_u16(),
            content_type,
            headers: parts.headers,
            body,
        })
    }

    /// An idle connection that is still open, or a new one.
    async fn checkout(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        loop {
            let candidate = match self.inner.idle.lock() {
                Ok(mut idle) => idle.pop(),
                Err(poisoned) => poisoned.into_inner().pop(),
            };
            match candidate {
                Some(mut sender) => {
                    if !sender.is_closed() && sender.ready().await.is_ok() {
                        return Ok(sender);
                    }
                }
                None => return self.connect().await,
            }
        }
    }

    fn checkin(&self, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = match self.inner.idle.lock() {
            Ok(idle) => idle,
            Err(poisoned) => poisoned.into_inner(),
        };
        if idle.len() < MAX_IDLE {
            idle.push(sender);
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let addr = self.inner.addr;
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect { addr, source })?;
        tcp.set_nodelay(true)
            .map_err(|source| ClientError::Connect { addr, source })?;
        let tls = self
            .inner
            .connector
            .connect(self.inner.server_name.clone(), tcp)
            .await
            .map_err(|source| ClientError::Handshake { addr, source })?;
        let (sender, connection) = http1::handshake(TokioIo::new(tls)).await?;
        // The connection task ends when the server closes or every sender is dropped; its error
        // (if any) also reaches the request that was in flight, so it is not reported here.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}
