//! The `poortwachter` binary: parse the command line and run it; errors go to stderr with a
//! non-zero exit code.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = gateway::cli::Cli::parse();
    match gateway::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
