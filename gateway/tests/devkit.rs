//! The gateway against what the development kit (`devkit`, DEVELOPMENT ONLY) makes: consent
//! tokens, people's bearer tokens and covenant signatures that the gateway's own verifiers accept
//! (covenant signatures byte-identical to `poortwachter covenant sign`'s where the algorithm is
//! deterministic), and the gateway's TLS server configuration and peer identity seen through the
//! test client (identity read, keep-alive, foreign, expired and revoked certificates refused).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use devkit::certs::{SDD_OIN, UWV_OIN};
use devkit::client::MtlsClient;
use devkit::demo::{self, GATEWAY_ID};
use devkit::sign;
use gateway::auth::{HumanVerifier, Role};
use gateway::config::{HumanIssuerSection, KeySection};
use gateway::consent_token::ConsentVerifier;
use gateway::keys::KeyRing;
use gateway::{covenant_sig, tls};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use jsonwebtoken::Algorithm;
use policy::{Covenant, DocumentFormat, Oin};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../certs-example")
        .join(name)
}

fn key_section(kid: &str, alg: &str, file: &str) -> KeySection {
    KeySection {
        kid: kid.into(),
        alg: alg.into(),
        file: example(file),
    }
}

#[test]
fn devkit_consent_tokens_verify_with_the_gateways_consent_verifier() {
    let mut keys = KeyRing::default();
    let uwv: Oin = UWV_OIN.parse().unwrap();
    keys.add(
        &uwv,
        &key_section("uwv-consent-1", "ES256", "consent-keys/uwv-es256.pub.pem"),
    )
    .unwrap();
    let verifier = ConsentVerifier::new(keys, GATEWAY_ID.into(), 60);
    let now = chrono::Utc::now().timestamp();
    let claims = demo::demo_consent(&demo::new_consent_id(), demo::CLIENT_WITH_CONSENT, now)
        .expect("claims");
    let token = demo::sign_as_uwv(&example(""), &claims).expect("signed");
    let verified = verifier
        .verify(&token, now)
        .expect("the gateway accepts it");
    assert_eq!(
        serde_json::to_value(verified).unwrap(),
        serde_json::to_value(claims).unwrap()
    );
}

#[test]
fn devkit_bearer_tokens_verify_with_the_gateways_human_verifier() {
    let verifier = HumanVerifier::new(&[HumanIssuerSection {
        issuer: "https://login.poortwachter.example".into(),
        audience: GATEWAY_ID.into(),
        keys: vec![key_section(
            "issuer-1",
            "ES256",
            "jwt-issuer/issuer.pub.pem",
        )],
    }])
    .unwrap();
    let token = demo::person_token(&example(""), "fg-sdd-1", SDD_OIN, &["privacy-officer"])
        .expect("signed");
    let claims = verifier.verify(&token).expect("the gateway accepts it");
    assert_eq!(claims.sub, "fg-sdd-1");
    assert_eq!(claims.org.as_str(), SDD_OIN);
    assert_eq!(claims.roles, vec![Role::PrivacyOfficer]);
}

#[test]
fn devkit_covenant_signatures_are_those_of_poortwachter_covenant_sign() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text =
        std::fs::read_to_string(repo.join("schemas/examples/covenant-drechtsteden.toml")).unwrap();
    let covenant = Covenant::parse(&text, DocumentFormat::Toml).unwrap();
    let mut keys = KeyRing::default();
    for (party, kid, alg, file, algorithm) in [
        (UWV_OIN, "uwv-covenant-1", "ES256", "uwv", Algorithm::ES256),
        (SDD_OIN, "sdd-covenant-1", "EdDSA", "sdd", Algorithm::EdDSA),
    ] {
        let party: Oin = party.parse().unwrap();
        keys.add(
            &party,
            &key_section(kid, alg, &format!("covenant-keys/{file}.pub.pem")),
        )
        .unwrap();
        let key = sign::load_key(
            &example(&format!("covenant-keys/{file}.key.pem")),
            algorithm,
        )
        .unwrap();
        let ours = sign::covenant(&covenant, &party, kid, algorithm, &key).unwrap();
        assert_eq!(
            covenant_sig::verify(&covenant, &ours, &keys),
            Ok(party.clone()),
            "{kid}"
        );
        let gateways = covenant_sig::sign(&covenant, &party, kid, algorithm, &key).unwrap();
        if algorithm == Algorithm::EdDSA {
            // Ed25519 is deterministic: the same header and payload give the same signature.
            assert_eq!(ours, gateways, "{kid}");
        } else {
            assert_eq!(ours.split('.').next(), gateways.split('.').next(), "{kid}");
        }
    }
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
