//! The HTTPS server: our own accept loop (TCP → rustls handshake → peer identity → hyper), so the
//! client certificate reaches the handlers, and so shutdown can stop accepting, let in-flight
//! requests finish and flush the audit log.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::http::Peer;
use crate::state::AppState;

/// A running server: its address and a way to stop it.
pub struct RunningServer {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stop accepting, wait for in-flight connections (up to `grace`), then return.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(grace, self.task).await;
    }

    /// Wait until the server stops by itself (it only does on shutdown).
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// A receiver that turns `true` when shutdown begins.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

/// The TLS configuration in use; replaced as a whole on reload, read once per connection.
#[derive(Clone)]
pub struct TlsHolder(Arc<RwLock<Arc<rustls::ServerConfig>>>);

impl TlsHolder {
    pub fn new(config: Arc<rustls::ServerConfig>) -> Self {
        TlsHolder(Arc::new(RwLock::new(config)))
    }

    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Rebuild from the configured files (certificate, key, client CA, CRLs). On any error the
    /// configuration in use is kept.
    pub fn reload(&self, tls: &crate::config::TlsSection) -> Result<(), crate::tls::TlsError> {
        let new = crate::tls::server_config(&tls.cert, &tls.key, &tls.client_ca, &tls.crls)?;
        match self.0.write() {
            Ok(mut g) => *g = new,
            Err(p) => *p.into_inner() = new,
        }
        Ok(())
    }
}

/// On SIGHUP, reload certificates, keys and CRLs without a restart; new connections use them.
pub fn reload_on_sighup(holder: TlsHolder, tls: crate::config::TlsSection) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            match holder.reload(&tls) {
                Ok(()) => tracing::info!("TLS certificates, key and CRLs reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "TLS reload failed; keeping the previous configuration")
                }
            }
        }
    });
}

/// Bind `state.config.gateway.listen` and serve until shut down.
pub async fn start(state: AppState, tls: TlsHolder) -> std::io::Result<RunningServer> {
    let listener = TcpListener::bind(state.config.gateway.listen).await?;
    let addr = listener.local_addr()?;
    let (shutdown, mut stop) = watch::channel(false);
    let app = crate::http::router(state.clone());
    let timeout = Duration::from_millis(state.config.limits.request_timeout_ms);

    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.changed() => break,
            };
            let (tcp, _remote) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = TlsAcceptor::from(tls.current());
            let app = app.clone();
            let mut conn_stop = stop.clone();
            connections.spawn(async move {
                let tls = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
                let certs = tls.get_ref().1.peer_certificates();
                let peer = Peer {
                    presented_certificate: certs.is_some_and(|c| !c.is_empty()),
                    oin: crate::tls::peer_oin(certs).ok(),
                };
                let service = app.layer(axum::Extension(peer)).map_request(
                    |req: hyper::Request<hyper::body::Incoming>| req.map(axum::body::Body::new),
                );
                let service = TowerToHyperService::new(service);
                let builder = ConnBuilder::new(TokioExecutor::new());
                let conn = builder.serve_connection(TokioIo::new(tls), service);
                tokio::pin!(conn);
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    }
                    _ = conn_stop.changed() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
            });
            // Reap finished connections so the set does not grow without bound.
            while connections.try_join_next().is_some() {}
        }
        while connections.join_next().await.is_some() {}
    });
    Ok(RunningServer {
        addr,
        shutdown,
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn certs() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../certs-example")
    }

    fn section(cert: &str) -> crate::config::TlsSection {
        crate::config::TlsSection {
            cert: certs().join(cert),
            key: certs().join("server-key.pem"),
            client_ca: certs().join("ca.pem"),
            crls: vec![certs().join("crl.pem")],
        }
    }

    #[test]
    fn reload_swaps_the_configuration_and_a_broken_file_keeps_the_old_one() {
        let good = section("server.pem");
        let first = crate::tls::server_config(&good.cert, &good.key, &good.client_ca, &good.crls)
            .expect("example TLS configuration");
        let holder = TlsHolder::new(first.clone());
        assert!(Arc::ptr_eq(&holder.current(), &first));

        holder.reload(&good).expect("reload from the same files");
        let second = holder.current();
        assert!(
            !Arc::ptr_eq(&second, &first),
            "new connections get the reloaded configuration"
        );

        let err = holder
            .reload(&section("does-not-exist.pem"))
            .expect_err("a missing certificate is refused");
        assert!(err.to_string().contains("does-not-exist.pem"), "{err}");
        assert!(
            Arc::ptr_eq(&holder.current(), &second),
            "the working configuration stays"
        );
    }
}
