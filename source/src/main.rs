//! `poortwachter-source`: run the reference source service from a configuration file. Prints
//! `listening on ADDR` once it accepts connections (tests and the demo read the port from it).

use std::path::PathBuf;

use clap::Parser;

/// The reference source service: answers the gateway's live field queries over mutual TLS.
#[derive(Debug, Parser)]
#[command(name = "poortwachter-source", version)]
struct Args {
    /// The source's configuration file (TOML; see source/README in the repository README).
    #[arg(long, env = "POORTWACHTER_SOURCE_CONFIG")]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("POORTWACHTER_SOURCE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = source::config::SourceConfig::load(&args.config)?;
    let server = source::server::Server::bind(config).await?;
    println!("listening on {}", server.local_addr());
    server.run().await
}
