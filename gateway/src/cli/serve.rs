//! `poortwachter serve`: run the gateway (with graceful shutdown on Ctrl-C / SIGTERM: stop
//! accepting, finish in-flight requests, flush the audit log). `start` and `serve_until_signal`
//! are also how the binary's `demo` and the end-to-end tests run a gateway.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::config::Config;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file (TOML). Secrets may come from environment variables named in it.
    #[arg(long, short, env = "POORTWACHTER_CONFIG")]
    pub config: PathBuf,
}

async fn shutdown_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Build state, start the listener; returns the running server and the audit writer task.
pub async fn start(
    config: Config,
) -> anyhow::Result<(crate::server::RunningServer, tokio::task::JoinHandle<()>)> {
    let tls = crate::tls::server_config(
        &config.tls.cert,
        &config.tls.key,
        &config.tls.client_ca,
        &config.tls.crls,
    )?;
    let tls = crate::server::TlsHolder::new(tls);
    crate::server::reload_on_sighup(tls.clone(), config.tls.clone());
    let (state, writer) = crate::boot::build(config).await?;
    let server = crate::server::start(state.clone(), tls)
        .await
        .context("cannot listen")?;
    crate::ops::covenants::sync::spawn(state.clone(), server.shutdown_signal());
    crate::ops::retention::spawn(state.clone(), server.shutdown_signal());
    crate::ops::logboek::spawn(state, server.shutdown_signal())?;
    Ok((server, writer))
}

/// Serve until Ctrl-C or SIGTERM, then shut down gracefully and flush the audit log.
pub async fn serve_until_signal(
    server: crate::server::RunningServer,
    writer: tokio::task::JoinHandle<()>,
) {
    shutdown_requested().await;
    tracing::info!("shutting down: no new connections; finishing in-flight requests");
    server.shutdown(Duration::from_secs(30)).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;
    tracing::info!("audit log flushed; stopped");
}

pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let telemetry = crate::telemetry::init(&config.telemetry)?;
        let (server, writer) = start(config).await?;
        tracing::info!(addr = %server.addr, "poortwachter listening");
        serve_until_signal(server, writer).await;
        telemetry.shutdown();
        Ok(())
    })
}
