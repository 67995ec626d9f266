//! `poortwachter demo` (DEVELOPMENT ONLY; part of the binary, not of the gateway library): write
//! the demo set-up with `devkit`, start a gateway on it in this process, run the guided scenario,
//! then keep serving with `curl` examples (or stop with `--once`). When the reference source
//! (`poortwachter-source`) is built next to this binary, the demo starts it too and shows live
//! disclosure, a derived attribute and a refusal once the source is stopped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
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
    /// The live-disclosure covenant (issue 18), served from the reference source.
    #[arg(
        long,
        default_value = "schemas/examples/covenant-drechtsteden-live.toml"
    )]
    pub live_covenant: PathBuf,
}

/// Start the reference source (`poortwachter-source`, next to this binary) with UWV's demo
/// records; `None` (with a hint) when it has not been built.
fn start_source(paths: &DemoPaths) -> anyhow::Result<Option<(Child, SocketAddr)>> {
    let exe = std::env::current_exe()?.with_file_name("poortwachter-source");
    if !exe.exists() {
        println!(
            "(live disclosure skipped: build the reference source first with `cargo build -p source`)"
        );
        return Ok(None);
    }
    let config = demo::write_source_config(paths, "uwv-source", "127.0.0.1:0", None)?;
    let log = paths.data.join("uwv-source.log");
    let mut child = Command::new(exe)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut line)?;
    }
    let Some(addr) = line.trim().strip_prefix("listening on ") else {
        let _ = child.kill();
        anyhow::bail!("the reference source did not start (see {})", log.display());
    };
    let addr = addr.parse()?;
    println!(
        "UWV reference source listening on https://localhost:{} (mutual TLS; log {})",
        SocketAddr::port(&addr),
        log.display()
    );
    Ok(Some((child, addr)))
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    gateway::telemetry::init_logs(Some("warn"));
    let paths = DemoPaths {
        certs: args.certs.clone(),
        covenant: args.covenant.clone(),
        data: args.data_dir.clone(),
    };
    let config_path = demo::write_config(&paths, &format!("127.0.0.1:{}", args.port))?;
    let mut source = start_source(&paths)?;
    if let Some((_, addr)) = &source {
        demo::add_live_source(&paths, &config_path, &args.live_covenant, *addr)?;
    }
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
        if let Some((mut child, _)) = source.take() {
            demo::run_live_scenario(&certs, port, move || {
                child.kill()?;
                child.wait()?;
                Ok(())
            })
            .await?;
        }
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
