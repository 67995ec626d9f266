//! One connection from accept to close: the TLS handshake (within its timeout), the caller's
//! identity (which moves an organisation's connection out of the unidentified budget), then
//! HTTP/1.1 or HTTP/2 under a watchdog that closes it when a request head is too slow, when it
//! sits idle too long, or when the caps chose it to make room. Logs no request content.

use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::activity::{instant_of, Expiry, Timeouts};
use super::body::{Drained, Tracked};
use super::io::Watched;
use super::limits::ConnGuard;
use super::TlsHolder;
use crate::http::Peer;
use crate::state::AppState;

/// What every connection of one listener shares.
pub struct Shared {
    pub app: axum::Router,
    pub tls: TlsHolder,
    pub state: AppState,
    pub timeouts: Timeouts,
}

/// Why a connection ended: the `cause` label of `poortwachter_connections_closed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The exchange ended normally (the client closed, or a `Connection: close` answer).
    Closed,
    /// Chosen to make room for a new connection.
    Evicted,
    HandshakeFailed,
    HandshakeTimeout,
    HeaderTimeout,
    IdleTimeout,
    /// The HTTP exchange failed (malformed request, reset by the client, …).
    Error,
    Shutdown,
}

impl End {
    fn label(self) -> &'static str {
        match self {
            End::Closed => "closed",
            End::Evicted => "evicted",
            End::HandshakeFailed => "handshake-failed",
            End::HandshakeTimeout => "handshake-timeout",
            End::HeaderTimeout => "header-timeout",
            End::IdleTimeout => "idle-timeout",
            End::Error => "error",
            End::Shutdown => "shutdown",
        }
    }
}

/// Serve one accepted connection until it ends, then give its place back.
pub async fn serve(
    tcp: TcpStream,
    mut guard: ConnGuard,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let end = run(tcp, &mut guard, &shared, &mut stop).await;
    guard.close(end.label());
}

async fn run(
    tcp: TcpStream,
    guard: &mut ConnGuard,
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
) -> End {
    let _ = tcp.set_nodelay(true);
    let acceptor = TlsAcceptor::from(shared.tls.current());
    let handshake = tokio::time::timeout(shared.timeouts.handshake, acceptor.accept(tcp));
    let tls = tokio::select! {
        r = handshake => match r {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                return End::HandshakeFailed;
            }
            Err(_) => return End::HandshakeTimeout,
        },
        _ = guard.evicted() => return End::Evicted,
        _ = stop.changed() => return End::Shutdown,
    };

    let (_, session) = tls.get_ref();
    let certs = session.peer_certificates();
    let peer = Peer {
        presented_certificate: certs.is_some_and(|c| !c.is_empty()),
        oin: crate::tls::peer_oin(certs).ok(),
    };
    let http2 = session.alpn_protocol() == Some(b"h2".as_slice());
    let http1 = session.alpn_protocol() == Some(b"http/1.1".as_slice());
    let activity = guard.activity().clone();
    activity.handshake_done();
    if peer.oin.as_ref().is_some_and(|oin| shared.state.knows(oin)) && !guard.identify() {
        return End::Evicted;
    }

    let service = shared.app.clone().layer(axum::Extension(peer)).map_request(
        move |req: hyper::Request<hyper::body::Incoming>| {
            if http2 {
                req.map(|b| axum::body::Body::new(Drained::new(b)))
            } else {
                req.map(axum::body::Body::new)
            }
        },
    );
    let in_flight = activity.clone();
    let service = service.map_future(move |response| {
        let request = in_flight.request_started();
        async move {
            let response = response.await?;
            Ok::<_, std::convert::Infallible>(
                response.map(|body| axum::body::Body::new(Tracked::new(body, request))),
            )
        }
    });
    let service = TowerToHyperService::new(service);

    let mut builder = ConnBuilder::new(TokioExecutor::new());
    // Our watchdog times request heads from their first byte, apart from the idle wait before
    // them; hyper's own header timer also runs through that wait (and not at all while the
    // protocol is being detected), so it stays off.
    builder.http1().header_read_timeout(None);
    // ALPN settled the protocol; without ALPN the first bytes tell.
    let builder = if http2 {
        builder.http2_only()
    } else if http1 {
        builder.http1_only()
    } else {
        builder
    };
    let conn = builder.serve_connection(TokioIo::new(Watched::new(tls, activity.clone())), service);
    tokio::pin!(conn);

    loop {
        let expiry = activity.next_expiry(&shared.timeouts, http2);
        let deadline = expiry.map(|(at, _)| tokio::time::Instant::from_std(instant_of(at)));
        tokio::select! {
            r = conn.as_mut() => {
                return match r {
                    Ok(()) => End::Closed,
                    Err(e) => {
                        tracing::debug!(error = %e, "connection ended with an error");
                        End::Error
                    }
                };
            }
            _ = guard.evicted() => return End::Evicted,
            _ = stop.changed() => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.as_mut().await;
                return End::Shutdown;
            }
            _ = activity.changed() => {}
            _ = sleep_until(deadline) => {
                let now = super::activity::now_ms();
                match activity.next_expiry(&shared.timeouts, http2) {
                    Some((at, Expiry::Header)) if at <= now => return End::HeaderTimeout,
                    Some((at, Expiry::Idle)) if at <= now => {
                        // Nothing in flight: say goodbye properly (HTTP/2 GOAWAY, TLS
                        // close_notify), briefly.
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(
                            std::time::Duration::from_secs(1),
                            conn.as_mut(),
                        )
                        .await;
                        return End::IdleTimeout;
                    }
                    _ => {}
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
