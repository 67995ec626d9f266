//! DEVELOPMENT ONLY: the `poortwachter` binary's development commands, `demo` (in `demo`) and
//! `dev …` (here), on the `devkit` crate. They are part of the binary, not of the gateway library.
//! Everything they make is for development and tests only and must never reach production.

pub mod demo;

use std::path::PathBuf;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Generate a DEVELOPMENT-ONLY CA, server and organisation certificates (including bad ones
    /// for attack tests) and signing keys into DIR, overwriting what is there, and list the files.
    Certs {
        /// The directory to write into (created if missing), e.g. `certs-example`.
        dir: PathBuf,
    },
}

pub fn run(cmd: DevCommand) -> anyhow::Result<()> {
    match cmd {
        DevCommand::Certs { dir } => {
            let written = devkit::certs::generate(&dir)?;
            for path in &written {
                println!("{}", path.display());
            }
            eprintln!(
                "wrote {} files into {} — DEVELOPMENT ONLY, never use in production",
                written.len(),
                dir.display()
            );
            Ok(())
        }
    }
}
