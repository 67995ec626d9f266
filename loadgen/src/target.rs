//! The server under load and one request to it: TLS client configuration, a prepared request, and
//! the two ways of sending it (a connection owned by one worker, or devkit's pooled client).
//! Reads whole response bodies but keeps only what the report needs (status and `reason`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use devkit::client::{ClientError, MtlsClient};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, ACCEPT, CONNECTION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::options::{Engine, Options};

/// Why the target cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Tls(#[from] devkit::tls::TlsError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("invalid server name {0:?}")]
    ServerName(String),
    #[error("invalid request path {0:?}: {1}")]
    Path(String, String),
    #[error("cannot read request body {path}: {source}")]
    Body {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Why a request got no HTTP answer. Each kind is counted separately in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransportError {
    /// TCP connect failed.
    Connect,
    /// The TLS handshake failed (e.g. the server refused the certificate).
    Tls,
    /// The HTTP exchange failed (connection reset or closed mid-request, bad response).
    Http,
    /// No complete answer within `--timeout`.
    Timeout,
}

impl TransportError {
    /// The name used in reports.
    pub fn label(self) -> &'static str {
        match self {
            TransportError::Connect => "connect",
            TransportError::Tls => "tls",
            TransportError::Http => "http",
            TransportError::Timeout => "timeout",
        }
    }
}

/// An HTTP answer, reduced to what the report needs.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

/// The demo disclosure request: job mediation for the demo client, fields the consent and the
/// Drechtsteden covenant both cover, on behalf of a named employee.
pub fn demo_disclosure_body() -> Vec<u8> {
    let body = serde_json::json!({
        "subject": { "bsn": devkit::demo::CLIENT_WITH_CONSENT },
        "purpose": "job-mediation",
        "fields": [
            "available_hours_per_week",
            "own_transport",
            "driving_licence",
            "childcare_arranged",
            "education_level",
            "job_ready",
            "wage_value_band"
        ]
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Everything needed to send the configured request, shared by all workers.
#[derive(Clone)]
pub struct Target {
    connector: TlsConnector,
    addr: SocketAddr,
    server_name: ServerName<'static>,
    method: Method,
    uri: Uri,
    host: HeaderValue,
    body: Option<Bytes>,
    timeout: Duration,
    pool: Option<MtlsClient>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("method", &self.method)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Load certificates and the body, and prepare the request described by `options`.
    pub fn from_options(options: &Options) -> Result<Target, TargetError> {
        let config = devkit::tls::client_config(
            &options.ca,
            Some((options.cert.as_path(), options.key.as_path())),
        )?;
        let server_name = ServerName::try_from(options.server_name.clone())
            .map_err(|_| TargetError::ServerName(options.server_name.clone()))?;
        let uri: Uri = options
            .path
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| {
                TargetError::Path(options.path.clone(), e.to_string())
            })?;
        if !options.path.starts_with('/') {
            return Err(TargetError::Path(
                options.path.clone(),
                "must start with '/'".into(),
            ));
        }
        let host =
            HeaderValue::from_str(&format!("{}:{}", options.server_name, options.addr.port()))
                .map_err(|_| TargetError::ServerName(options.server_name.clone()))?;
        let body = match &options.body {
            Some(path) => Some(Bytes::from(std::fs::read(path).map_err(|source| {
                TargetError::Body {
                    path: path.clone(),
                    source,
                }
            })?)),
            None if matches!(options.method, Method::POST | Method::PUT | Method::PATCH) => {
                Some(Bytes::from(demo_disclosure_body()))
            }
            None => None,
        };
        let pool = match options.engine {
            Engine::Direct => None,
            Engine::Pool => Some(MtlsClient::from_config(
                config.clone(),
                options.addr,
                &options.server_name,
                options.timeout,
            )?),
        };
        Ok(Target {
            connector: TlsConnector::from(config),
            addr: options.addr,
            server_name,
            method: options.method.clone(),
            uri,
            host,
            body,
            timeout: options.timeout,
            pool,
        })
    }

    /// Whether requests go through the shared pool (no per-worker connection).
    pub fn pooled(&self) -> bool {
        self.pool.is_some()
    }

    /// Open a new keep-alive connection (TCP, TLS with the client certificate, HTTP/1.1).
    pub async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, TransportError> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|_| TransportError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|_| TransportError::Tls)?;
        let (sender, connection) = http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|_| TransportError::Http)?;
        // Its error, if any, also reaches the request in flight, which counts it.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    fn request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(match &self.body {
            Some(body) => Full::new(body.clone()),
            None => Full::new(Bytes::new()),
        });
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, application/problem+json"),
        );
        if self.body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        request
    }

    /// Send the request once. With the direct engine it goes over `conn` (opened first when
    /// `None`; reset to `None` when it can no longer be used); `opened` counts new connections.
    pub async fn send(
        &self,
        conn: &mut Option<SendRequest<Full<Bytes>>>,
        opened: &mut u64,
    ) -> Result<Answer, TransportError> {
        if let Some(pool) = &self.pool {
            return self.send_pooled(pool).await;
        }
        let outcome = tokio::time::timeout(self.timeout, self.exchange(conn, opened)).await;
        match outcome {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                *conn = None;
                Err(e)
            }
            Err(_) => {
                *conn = None;
                Err(TransportError::Timeout)
            }
        }
    }

    async fn exchange(
        &self,
        conn: &mut Option<SendRequest<Full<Bytes>>>,
        opened: &mut u64,
    ) -> Result<Answer, TransportError> {
        let mut sender = match conn.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => {
                *opened += 1;
                self.connect().await?
            }
        };
        // A keep-alive connection the server closed while idle hands the unsent request back:
        // resend it once on a fresh connection. A request that was written is never resent.
        let response = match sender.try_send_request(self.request()).await {
            Ok(response) => response,
            Err(mut err) => match err.take_message() {
                Some(unsent) => {
                    *opened += 1;
                    sender = self.connect().await?;
                    sender
                        .send_request(unsent)
                        .await
                        .map_err(|_| TransportError::Http)?
                }
                None => return Err(TransportError::Http),
            },
        };
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|_| TransportError::Http)?
            .to_bytes();
        let closing = parts
            .headers
            .get(CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        if !closing {
            *conn = Some(sender);
        }
        Ok(Answer {
            status: parts.status.as_u16(),
            body,
        })
    }

    async fn send_pooled(&self, pool: &MtlsClient) -> Result<Answer, TransportError> {
        let body = self.body.as_ref().map(|b| b.to_vec());
        match pool
            .send(self.method.clone(), &self.path(), None, body)
            .await
        {
            Ok(response) => Ok(Answer {
                status: response.status,
                body: Bytes::from(response.body),
            }),
            Err(ClientError::Timeout(_)) => Err(TransportError::Timeout),
            Err(ClientError::Connect { .. }) => Err(TransportError::Connect),
            Err(ClientError::Handshake { .. }) => Err(TransportError::Tls),
            Err(_) => Err(TransportError::Http),
        }
    }

    fn path(&self) -> String {
        self.uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned())
    }

    /// The request line, for reports: `POST https://127.0.0.1:8443/v1/disclosures`.
    pub fn describe(&self) -> String {
        format!("{} https://{}{}", self.method, self.addr, self.path())
    }
}

/// The `reason` member of an RFC 9457 problem body, when there is one.
pub fn problem_reason(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Problem {
        reason: Option<String>,
    }
    serde_json::from_slice::<Problem>(body)
        .ok()
        .and_then(|p| p.reason)
}

/// A shared target.
pub type SharedTarget = Arc<Target>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_reason_is_read_from_problem_json() {
        let body = br#"{"type":"about:blank","status":403,"reason":"consent-required"}"#;
        assert_eq!(problem_reason(body).as_deref(), Some("consent-required"));
        assert_eq!(problem_reason(b"{\"status\":500}"), None);
        assert_eq!(problem_reason(b"<html>bad gateway</html>"), None);
    }

    #[test]
    fn demo_disclosure_body_is_a_disclosure_request() {
        let v: serde_json::Value = serde_json::from_slice(&demo_disclosure_body()).expect("JSON");
        assert_eq!(v["purpose"], "job-mediation");
        assert_eq!(v["subject"]["bsn"], devkit::demo::CLIENT_WITH_CONSENT);
    }
}
