//! `poortwachter demo` (DEVELOPMENT ONLY; part of the binary, not of the gateway library): write
//! the demo set-up with `devkit`, start a gateway on it in this process, run the guided scenario,
//! then keep serving with `curl` examples (or stop with `--once`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use devkit::demo::{self, DemoPaths};
use gateway::cli::serve::{serve_until_signal, start};
use gateway::config::Config;

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

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    gateway::telemetry::init_logs(Some("warn"));
    let paths = DemoPaths {
        certs: args.certs.clone(),
        covenant: args.covenant.clone(),
        data: args.data_dir.clone(),
    };
    let config_path = demo::write_config(&paths, &format!("127.0.0.1:{}", args.port))?;
    let mut config = Config::load(&config_path)?;
    // Issue 16: a second covenant whose grant is bound to the role `intaker-poort`.
    let (file, signatures) = demo::write_role_covenant(&paths)?;
    config
        .covenants
        .push(gateway::config::CovenantSection { file, signatures });
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
        demo::wait_ready(&certs, port).await?;
        demo::run_scenario(&certs, port).await?;
        demo::run_actor_scenario(&certs, port).await?;
        if args.once {
            server.shutdown(Duration::from_secs(5)).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
            println!("\nDone (--once).");
        } else {
            demo::print_curl(&certs, port);
            println!(
                "\nThe web console: https://localhost:{port}/console/ (trust {}/ca.pem, or accept \
                 the development certificate). DEVELOPMENT LOGIN, marked on every page: choose \
                 \"Sociale Dienst Drechtsteden\" and \"privacy officer\" to review its audit log \
                 and make a data-subject report, or any organisation and \"covenant administrator\" \
                 for the covenants. Production logs in with each organisation's own OpenID \
                 Connect provider instead (README, \"The web console\").",
                certs.display()
            );
            serve_until_signal(server, writer).await;
        }
        Ok(())
    })
}
