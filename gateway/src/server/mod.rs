//! The HTTPS server: our own accept loop (TCP → rustls handshake → peer identity → hyper), so the
//! client certificate reaches the handlers, so the connection caps and timeouts hold before any
//! request is read, and so shutdown can stop accepting, let in-flight requests finish and flush
//! the audit log. The loop never spins and never logs once per failure.

mod accept;
mod activity;
mod body;
mod connection;
mod fd_limit;
mod io;
mod limits;
mod throttle;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::state::AppState;
use accept::AcceptErrors;
use activity::Timeouts;
use limits::{Caps, Limits};

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
    let settings = &state.config.connections;
    let limits = Limits::new(caps(&state), limits::GRACE, state.metrics.clone());
    let shared = Arc::new(connection::Shared {
        app: crate::http::router(state.clone()),
        tls,
        timeouts: Timeouts {
            handshake: Duration::from_millis(settings.handshake_timeout_ms),
            header_read_ms: settings.header_read_timeout_ms,
            idle_ms: settings.idle_timeout_ms,
        },
        state: state.clone(),
    });
    let metrics = state.metrics.clone();

    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        let mut errors = AcceptErrors::default();
        loop {
            // Only when organisations hold every place does the loop wait here; the kernel's
            // backlog holds new connections meanwhile.
            tokio::select! {
                _ = limits.room() => {}
                _ = stop.changed() => break,
            }
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.changed() => break,
            };
            let tcp = match accepted {
                Ok((tcp, _remote)) => {
                    if let Some(n) = errors.succeeded(Instant::now()) {
                        tracing::warn!(
                            failures = n,
                            "accepting connections failed {n} more time(s); accepting again"
                        );
                    }
                    tcp
                }
                Err(e) => {
                    metrics.accept_error();
                    let failure = errors.failed(&e, Instant::now());
                    if let Some(n) = failure.report {
                        tracing::warn!(
                            error = %e,
                            failures = n,
                            "accepting a connection failed ({n} time(s) since the last report); \
                             backing off, next report in at most {} s",
                            throttle::REPORT_INTERVAL.as_secs()
                        );
                    }
                    if failure.exhausted {
                        limits.evict_one();
                    }
                    if let Some(pause) = failure.pause {
                        tokio::select! {
                            _ = tokio::time::sleep(pause) => {}
                            _ = stop.changed() => break,
                        }
                    }
                    continue;
                }
            };
            let guard = limits.admit();
            connections.spawn(connection::serve(tcp, guard, shared.clone(), stop.clone()));
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

/// The configured caps, lowered when the open-files limit (raised to its maximum first) leaves
/// less room.
fn caps(state: &AppState) -> Caps {
    let c = &state.config.connections;
    let configured = Caps {
        max_open: c.max_open,
        max_unidentified: c.max_unidentified,
    };
    let reserved = fd_limit::RESERVED
        + fd_limit::PER_DATABASE_CONNECTION * u64::from(state.config.database.max_connections);
    let limit = fd_limit::raise_open_files_limit();
    match fd_limit::fit(configured, limit, reserved) {
        Ok(caps) => caps,
        Err(lowered) => {
            tracing::warn!(
                open_files_limit = limit,
                max_open = lowered.max_open,
                max_unidentified = lowered.max_unidentified,
                "the open-files limit leaves room for fewer connections than connections.max_open \
                 ({}) and connections.max_unidentified ({}) allow: using {} and {}; raise the \
                 limit (ulimit -n, LimitNOFILE) or lower the caps",
                configured.max_open,
                configured.max_unidentified,
                lowered.max_open,
                lowered.max_unidentified
            );
            lowered
        }
    }
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
