//! The `poortwachter` binary: parse the command line and run it; errors go to stderr with a
//! non-zero exit code.

use clap::Parser;

/// mimalloc instead of the C library's `malloc`: the disclosure path makes many small, short-lived
/// allocations (request and record JSON, TLS records, tracing spans), and under load glibc's
/// allocator cost about a tenth more CPU time per disclosure (BENCHMARKS.md, "Fifth round").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
