//! The gateway against what the development kit (`devkit`, DEVELOPMENT ONLY) makes: the
//! gateway's TLS server configuration and peer identity seen through the test client (identity
//! read, keep-alive, foreign, expired and revoked certificates refused by TLS).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use devkit::certs::UWV_OIN;
use devkit::client::MtlsClient;
use gateway::tls;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../certs-example")
        .join(name)
}

/// A minimal mutual-TLS server that answers every request with the caller's OIN (or the
/// peer error), the request method and path, and how many requests this connection served.
async fn spawn_echo_server() -> SocketAddr {
    let config = tls::server_config(
        &example("server.pem"),
        &example("server-key.pem"),
        &example("ca.pem"),
        &[example("crl.pem")],
    )
    .expect("server config");
    let acceptor = TlsAcceptor::from(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let peer = match tls::peer_oin(tls.get_ref().1.peer_certificates()) {
                    Ok(oin) => oin.to_string(),
                    Err(e) => format!("{e:?}"),
                };
                let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let n = served.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    let body = serde_json::json!({
                        "peer": peer,
                        "method": req.method().as_str(),
                        "path": req.uri().path(),
                        "n": n,
                        "bearer": req.headers().get(AUTHORIZATION).is_some(),
                    });
                    async move {
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header(CONTENT_TYPE, "application/json")
                                .body(Full::new(Bytes::from(body.to_string())))
                                .expect("response"),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn client_with_identity_is_identified_and_reuses_its_connection() {
    let addr = spawn_echo_server().await;
    let client = MtlsClient::builder(example("ca.pem"))
        .identity(example("uwv.pem"), example("uwv-key.pem"))
        .addr(addr)
        .build()
        .expect("client");
    let first = client
        .send(
            Method::POST,
            "/v1/disclosures",
            Some("token"),
            Some(b"{}".to_vec()),
        )
        .await
        .expect("first request");
    assert_eq!(first.status, 200);
    assert_eq!(first.content_type.as_deref(), Some("application/json"));
    let json = first.json();
    assert_eq!(json["peer"], UWV_OIN);
    assert_eq!(json["method"], "POST");
    assert_eq!(json["path"], "/v1/disclosures");
    assert_eq!(json["bearer"], true);
    assert_eq!(json["n"], 1);

    let second = client
        .clone()
        .get("/healthz")
        .await
        .expect("second request");
    assert_eq!(second.json()["n"], 2, "keep-alive connection is reused");
}

#[tokio::test]
async fn client_without_certificate_connects_but_has_no_identity() {
    let addr = spawn_echo_server().await;
    let client = MtlsClient::builder(example("ca.pem"))
        .addr(addr)
        .build()
        .expect("client");
    let response = client.get("/healthz").await.expect("request");
    assert_eq!(response.json()["peer"], "NoCertificate");
}

#[tokio::test]
async fn foreign_expired_and_revoked_certificates_are_refused_by_tls() {
    let addr = spawn_echo_server().await;
    use rustls::AlertDescription::{CertificateExpired, CertificateRevoked, UnknownCA};
    for (name, alert) in [
        ("foreign", UnknownCA),
        ("expired", CertificateExpired),
        ("revoked", CertificateRevoked),
    ] {
        let client = MtlsClient::builder(example("ca.pem"))
            .identity(
                example(&format!("{name}.pem")),
                example(&format!("{name}-key.pem")),
            )
            .addr(addr)
            .build()
            .expect("client");
        let err = client.get("/healthz").await.expect_err(name);
        assert_eq!(
            err.tls_error(),
            Some(&rustls::Error::AlertReceived(alert)),
            "{name}: {err:?}"
        );
    }
}
