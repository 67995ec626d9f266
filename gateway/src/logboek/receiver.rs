//! The organisation's Logboek Dataverwerkingen receiver, an OTLP/HTTP traces endpoint: one POST of
//! a protobuf `ExportTraceServiceRequest` per batch, over TLS (rustls with ring, verified against
//! the configured CA) or plain HTTP to loopback. A batch counts as delivered only when the
//! receiver answers 2xx and rejected none of it. Never logs what it sends.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, Request, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use tokio::net::TcpStream;

use crate::config::LogboekSection;

/// Why a batch was not delivered. Messages name no record and no person.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot reach the receiver: {0}")]
    Connect(std::io::Error),
    #[error("TLS to the receiver failed: {0}")]
    Tls(std::io::Error),
    #[error("HTTP exchange with the receiver failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("the receiver did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the receiver answered HTTP {0}")]
    Status(u16),
    #[error("the receiver rejected {rejected} of the batch's records: {message}")]
    Rejected { rejected: i64, message: String },
    #[error("the request could not be built: {0}")]
    Request(String),
}

/// Why the receiver's configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverConfigError {
    #[error("logboek.endpoint: {0}")]
    Endpoint(String),
    #[error("logboek.ca: {0}")]
    Ca(String),
}

/// Where batches go, and how.
#[derive(Clone)]
pub struct Receiver {
    uri: Uri,
    /// `host:port` to connect to.
    address: String,
    /// The `Host` header.
    authority: String,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls_pki_types::ServerName<'static>,
    )>,
    timeout: Duration,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Receiver({})", self.uri)
    }
}

impl Receiver {
    /// From the (already checked) configuration section: TLS when the endpoint is `https://`.
    pub fn new(section: &LogboekSection) -> Result<Receiver, ReceiverConfigError> {
        let uri: Uri = section
            .endpoint
            .parse()
            .map_err(|_| ReceiverConfigError::Endpoint("is not a URL".into()))?;
        let https = uri.scheme_str() == Some("https");
        let host = uri
            .host()
            .ok_or_else(|| ReceiverConfigError::Endpoint("names no host".into()))?
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_else(|| host.clone());
        let address = format!("{host}:{port}");
        let tls = if https {
            let ca = section
                .ca
                .as_ref()
                .ok_or_else(|| ReceiverConfigError::Ca("required for https://".into()))?;
            let roots =
                crate::tls::load_roots(ca).map_err(|e| ReceiverConfigError::Ca(e.to_string()))?;
            let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
                .with_protocol_versions(crate::tls::PROTOCOL_VERSIONS)
                .map_err(|e| ReceiverConfigError::Ca(e.to_string()))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = rustls_pki_types::ServerName::try_from(
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
            )
            .map_err(|e| ReceiverConfigError::Endpoint(e.to_string()))?;
            Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Receiver {
            uri,
            address,
            authority,
            tls,
            timeout: Duration::from_millis(section.timeout_ms),
        })
    }

    /// Deliver one batch; `Ok` only once the receiver acknowledged all of it.
    pub async fn send(&self, request: &ExportTraceServiceRequest) -> Result<(), SendError> {
        let body = request.encode_to_vec();
        tokio::time::timeout(self.timeout, self.exchange(body))
            .await
            .map_err(|_| SendError::Timeout(self.timeout))?
    }

    async fn exchange(&self, body: Vec<u8>) -> Result<(), SendError> {
        let tcp = TcpStream::connect(&self.address)
            .await
            .map_err(SendError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let request = Request::post(self.uri.clone())
            .header(header::HOST, &self.authority)
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SendError::Request(e.to_string()))?;
        let answer = match &self.tls {
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(SendError::Tls)?;
                post(TokioIo::new(stream), request).await?
            }
            None => post(TokioIo::new(tcp), request).await?,
        };
        let (status, body) = answer;
        if !status.is_success() {
            return Err(SendError::Status(status.as_u16()));
        }
        // OTLP partial success: records the receiver did not take are not delivered.
        if let Ok(response) = ExportTraceServiceResponse::decode(body.as_ref()) {
            if let Some(partial) = response.partial_success {
                if partial.rejected_spans > 0 {
                    return Err(SendError::Rejected {
                        rejected: partial.rejected_spans,
                        message: partial.error_message,
                    });
                }
            }
        }
        Ok(())
    }
}

/// One HTTP/1.1 request on a fresh connection; the status and the whole body of the answer.
async fn post<S>(
    io: TokioIo<S>,
    request: Request<Full<Bytes>>,
) -> Result<(axum::http::StatusCode, Bytes), SendError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await;
    let result = match response {
        Ok(response) => {
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok((status, body))
        }
        Err(e) => Err(SendError::Http(e)),
    };
    drop(sender);
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn certs() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../certs-example")
    }

    /// An OTLP/HTTP receiver over TLS with the development server certificate (for 127.0.0.1),
    /// answering every request 200 with an empty `ExportTraceServiceResponse`; returns its port
    /// and how many requests it answered.
    async fn tls_receiver() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        let config = crate::tls::server_config(
            &certs().join("server.pem"),
            &certs().join("server-key.pem"),
            &certs().join("ca.pem"),
            &[],
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = answered.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |_req| {
                        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let body = ExportTraceServiceResponse::default().encode_to_vec();
                        async move {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from(body),
                            )))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        (port, answered)
    }

    fn section(endpoint: String, ca: &str) -> LogboekSection {
        LogboekSection {
            endpoint,
            ca: Some(certs().join(ca)),
            timeout_ms: 5_000,
            batch_size: 10,
            interval_ms: 100,
            max_backoff_ms: 1_000,
            data_subject_id_type: "t".into(),
        }
    }

    #[tokio::test]
    async fn a_batch_reaches_a_receiver_whose_certificate_chains_to_the_configured_ca() {
        let (port, answered) = tls_receiver().await;
        let receiver = Receiver::new(&section(
            format!("https://127.0.0.1:{port}/v1/traces"),
            "ca.pem",
        ))
        .unwrap();
        receiver
            .send(&ExportTraceServiceRequest::default())
            .await
            .expect("acknowledged over TLS");
        assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_receiver_whose_certificate_does_not_chain_to_the_configured_ca_gets_nothing() {
        let (port, answered) = tls_receiver().await;
        let receiver = Receiver::new(&section(
            format!("https://127.0.0.1:{port}/v1/traces"),
            "foreign-ca.pem",
        ))
        .unwrap();
        let e = receiver
            .send(&ExportTraceServiceRequest::default())
            .await
            .expect_err("an impostor receiver is refused");
        assert!(matches!(e, SendError::Tls(_)), "{e}");
        assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_receiver_that_rejects_part_of_a_batch_has_not_acknowledged_it() {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let service = hyper::service::service_fn(|_req| async {
                    let body = ExportTraceServiceResponse {
                        partial_success: Some(ExportTracePartialSuccess {
                            rejected_spans: 1,
                            error_message: "span too large".into(),
                        }),
                    }
                    .encode_to_vec();
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(
                        body,
                    ))))
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service),
                );
            }
        });
        let mut s = section(format!("http://127.0.0.1:{port}/v1/traces"), "ca.pem");
        s.ca = None;
        let e = Receiver::new(&s)
            .unwrap()
            .send(&ExportTraceServiceRequest::default())
            .await
            .expect_err("a partial success is no acknowledgement");
        assert!(matches!(e, SendError::Rejected { rejected: 1, .. }), "{e}");
    }
}
