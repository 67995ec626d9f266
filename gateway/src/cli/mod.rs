//! The `poortwachter` command line: argument parsing and dispatch to the subcommands.

pub mod audit;
pub mod audit_read;
pub mod covenant;
pub mod dev;
pub mod serve;

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
    /// Run the gateway with a configuration file.
    Serve(serve::ServeArgs),
    /// Run the demo: start a gateway with the example certificates and the Drechtsteden covenant,
    /// show disclosures granted and refused, then keep serving (or exit with --once).
    Demo(serve::DemoArgs),
    /// Work with covenant documents: validate, hash, sign, diff.
    #[command(subcommand)]
    Covenant(covenant::CovenantCommand),
    /// Work with the audit log offline: verify, export, report.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Development helpers (DEVELOPMENT ONLY): generate example certificates and keys.
    #[command(subcommand)]
    Dev(dev::DevCommand),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::serve(args),
        Command::Demo(args) => serve::demo(args),
        Command::Covenant(cmd) => covenant::run(cmd),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Dev(cmd) => dev::run(cmd),
    }
}
