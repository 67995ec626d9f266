//! The `poortwachter` command line: argument parsing and dispatch to the subcommands.

pub mod covenant;

use clap::{Parser, Subcommand};

/// poortwachter: a privacy-preserving data-exchange gateway between UWV and municipalities.
///
/// It releases a client's data only when a covenant grants it for a purpose and, where required,
/// the client's signed consent covers it; every decision is audited before it is answered.
#[derive(Debug, Parser)]
#[command(name = "poortwachter", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with covenant documents: validate, hash.
    #[command(subcommand)]
    Covenant(covenant::CovenantCommand),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Covenant(cmd) => covenant::run(cmd),
    }
}
