//! `poortwachter serve` and `poortwachter demo`: run the gateway (with graceful shutdown on
//! Ctrl-C / SIGTERM: stop accepting, finish in-flight requests, flush the audit log).

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

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Port to listen on (localhost only).
    #[arg(long, default_value_t = 8443)]
    pub port: u16,
    /// Run the scenario and exit instead of serving on.
    #[arg(long)]
    pub once: bool,
    /// Where the demo keeps its configuration, secrets and SQLite database.
    #[arg(long, default_value = "demo-data")]
    pub data_dir: PathBuf,
    /// The example certificates (generated there when missing).
    #[arg(long, default_value = "certs-example")]
    pub certs: PathBuf,
    /// The covenant the demo runs under.
    #[arg(long, default_value = "schemas/examples/covenant-drechtsteden.toml")]
    pub covenant: PathBuf,
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
    crate::ops::retention::spawn(state, server.shutdown_signal());
    Ok((server, writer))
}

async fn serve_until_signal(
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

pub fn demo(args: DemoArgs) -> anyhow::Result<()> {
    crate::telemetry::init_logs(Some("warn"));
    let paths = crate::demo::DemoPaths {
        certs: args.certs.clone(),
        covenant: args.covenant.clone(),
        data: args.data_dir.clone(),
    };
    let config_path = crate::demo::write_config(&paths, &format!("127.0.0.1:{}", args.port))?;
    let config = Config::load(&config_path)?;
    let certs = args.certs.canonicalize()?;
    println!("poortwachter demo — DEVELOPMENT CERTIFICATES, not for production");
    println!("configuration: {}", config_path.display());
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let (server, writer) = start(config).await?;
        let port = server.addr.port();
        println!(
            "gateway listening on https://localhost:{port} (mutual TLS, SQLite, durable audit)"
        );
        crate::demo::wait_ready(&certs, port).await?;
        crate::demo::run_scenario(&certs, port).await?;
        if args.once {
            server.shutdown(Duration::from_secs(5)).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
            println!("\nDone (--once).");
        } else {
            crate::demo::print_curl(&certs, port);
            serve_until_signal(server, writer).await;
        }
        Ok(())
    })
}
