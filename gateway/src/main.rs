//! The `poortwachter` binary: the command line. Parse it and run the subcommand; errors go to
//! stderr with a non-zero exit code. The production subcommands come from the library's `cli`;
//! the development ones (`demo`, `dev`) from this binary's own `dev` module on the `devkit` crate.

mod dev;

use clap::{Parser, Subcommand};
use gateway::cli::{audit, covenant, serve};

/// mimalloc instead of the C library's `malloc`: the disclosure path makes many small, short-lived
/// allocations (request and record JSON, TLS records, tracing spans), and under load glibc's
/// allocator cost about a tenth more CPU time per disclosure (BENCHMARKS.md, "Fifth round").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// poortwachter: a privacy-preserving data-exchange gateway between UWV and municipalities.
///
/// It releases a client's data only when a covenant grants it for a purpose and, where required,
/// the client's signed consent covers it; every decision is audited before it is answered.
#[derive(Debug, Parser)]
#[command(name = "poortwachter", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway with a configuration file.
    Serve(serve::ServeArgs),
    /// Run the demo: start a gateway with the example certificates and the Drechtsteden covenant,
    /// show disclosures granted and refused, then keep serving (or exit with --once).
    Demo(dev::demo::DemoArgs),
    /// Work with covenant documents: validate, hash, sign, diff.
    #[command(subcommand)]
    Covenant(covenant::CovenantCommand),
    /// Work with the audit log offline: verify, export, report.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Development helpers (DEVELOPMENT ONLY): generate example certificates and keys, mint a
    /// person's bearer token.
    #[command(subcommand)]
    Dev(dev::DevCommand),
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::serve(args),
        Command::Demo(args) => dev::demo::run(args),
        Command::Covenant(cmd) => covenant::run(cmd),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Dev(cmd) => dev::run(cmd),
    }
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
