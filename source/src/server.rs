//! The source's mutual-TLS listener and its one operation. The client certificate must chain to
//! the pinned CA and carry an allowed OIN (the gateway's); anyone else gets `403` before the
//! body is read. The answer holds exactly the fields asked for that the source holds. Logs the
//! asking organisation, purpose, covenant reference, disclosure id and field names: never a BSN,
//! never a value.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use policy::Oin;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::config::{Fault, SourceConfig};
use crate::data::Records;
use crate::wire::{FieldAnswer, FieldQuery, RecordStatus};

/// The one path a source serves.
pub const QUERY_PATH: &str = "/v1/field-queries";
const MAX_BODY: usize = 64 * 1024;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

struct Shared {
    allowed: Vec<Oin>,
    records: Records,
    fault: Option<Fault>,
}

/// A bound, not yet running, source service.
pub struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
}

impl Server {
    /// Load the TLS material and data and bind the listener.
    pub async fn bind(config: SourceConfig) -> anyhow::Result<Self> {
        let records = Records::load(&config.data)?;
        let acceptor = TlsAcceptor::from(tls_config(&config)?);
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        if let Some(fault) = config.fault {
            tracing::warn!(?fault, "TEST FAULT MODE: this source misbehaves on purpose");
        }
        Ok(Server {
            listener,
            acceptor,
            shared: Arc::new(Shared {
                allowed: config.allowed_clients,
                records,
                fault: config.fault,
            }),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Accept connections until the process ends.
    pub async fn run(self) -> anyhow::Result<()> {
        loop {
            let (tcp, _) = match self.listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            };
            let acceptor = self.acceptor.clone();
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::info!(error = %e, "TLS handshake refused");
                        return;
                    }
                    Err(_) => return,
                };
                let peer = peer_oin(tls.get_ref().1.peer_certificates());
                let service = hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    let peer = peer.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(&shared, peer, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    }
}

fn tls_config(config: &SourceConfig) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&config.tls.client_ca)
        .with_context(|| format!("cannot read {}", config.tls.client_ca.display()))?
    {
        roots.add(cert?)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("client CA")?;
    let certs = CertificateDer::pem_file_iter(&config.tls.cert)
        .with_context(|| format!("cannot read {}", config.tls.cert.display()))?
        .collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&config.tls.key)
        .with_context(|| format!("cannot read {}", config.tls.key.display()))?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

/// The OIN in the leaf certificate's subject `serialNumber` (2.5.4.5), if exactly one.
fn peer_oin(certs: Option<&[CertificateDer<'_>]>) -> Option<Oin> {
    let leaf = certs?.first()?;
    let (_, cert) = X509Certificate::from_der(leaf.as_ref()).ok()?;
    let mut serials = cert
        .subject()
        .iter_by_oid(&x509_parser::oid_registry::OID_X509_SERIALNUMBER);
    let oin = serials.next()?.as_str().ok()?.parse().ok()?;
    serials.next().is_none().then_some(oin)
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    let ct = if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    };
    resp.headers_mut()
        .insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static(ct));
    resp
}

fn problem(status: StatusCode, reason: &str) -> Response<Full<Bytes>> {
    json(
        status,
        &serde_json::json!({"title": reason, "status": status.as_u16(), "reason": reason}),
    )
}

async fn handle(
    shared: &Shared,
    peer: Option<Oin>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let Some(peer) = peer.filter(|p| shared.allowed.contains(p)) else {
        tracing::warn!("refused a client that is not the gateway");
        return problem(StatusCode::FORBIDDEN, "client-not-allowed");
    };
    if req.uri().path() != QUERY_PATH {
        return problem(StatusCode::NOT_FOUND, "not-found");
    }
    if req.method() != Method::POST {
        return problem(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed");
    }
    let traceparent = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return problem(StatusCode::PAYLOAD_TOO_LARGE, "body-too-large"),
    };
    let query: FieldQuery = match serde_json::from_slice(&body) {
        Ok(q) => q,
        Err(_) => return problem(StatusCode::BAD_REQUEST, "invalid-query"),
    };
    if query.fields.is_empty() {
        return problem(StatusCode::BAD_REQUEST, "fields-required");
    }
    let held = shared.records.get(&query.subject);
    let mut fields = BTreeMap::new();
    if let Some(held) = held {
        for name in &query.fields {
            if let Some(v) = held.get(name.as_str()) {
                fields.insert(name.to_string(), v.clone());
            }
        }
    }
    tracing::info!(
        client = %peer,
        requester_oin = %query.requester_oin,
        purpose = %query.purpose,
        covenant = %query.covenant,
        disclosure_id = %query.disclosure_id,
        traceparent = %traceparent,
        fields = ?fields.keys().collect::<Vec<_>>(),
        found = held.is_some(),
        "field query answered"
    );
    let mut answer = FieldAnswer {
        subject: query.subject.expose().to_owned(),
        record: if held.is_some() {
            RecordStatus::Found
        } else {
            RecordStatus::NoRecord
        },
        fields,
    };
    match shared.fault {
        None => {}
        Some(Fault::Hang) => std::future::pending::<()>().await,
        Some(Fault::Garbage) => {
            let mut resp = Response::new(Full::new(Bytes::from_static(b"{\"subject\": <<garbage")));
            resp.headers_mut().insert(
                CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            return resp;
        }
        Some(Fault::WrongSubject) => {
            answer.subject = if answer.subject == "123456782" {
                "111222333".into()
            } else {
                "123456782".into()
            }
        }
        Some(Fault::OverDeliver) => {
            if let Some(held) = held {
                answer.fields = held.clone();
            }
        }
        Some(Fault::WrongType) => {
            for v in answer.fields.values_mut() {
                *v = serde_json::json!({"unexpected": [1, 2, 3]});
            }
        }
    }
    match serde_json::to_value(&answer) {
        Ok(v) => json(StatusCode::OK, &v),
        Err(_) => problem(StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}
