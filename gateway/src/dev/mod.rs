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
    /// Print a DEVELOPMENT-ONLY bearer token for a person (privacy officer, covenant
    /// administrator, operator), signed by the demo issuer in CERTS and valid for an hour: for
    /// trying the people's endpoints of a demo gateway, and for the contract fuzzing of
    /// `tests/run-all.sh`.
    Token {
        /// The person (`sub`).
        #[arg(long, default_value = "dev-person")]
        sub: String,
        /// The person's organisation (OIN), e.g. 00000001823288444000 (Sociale Dienst).
        #[arg(long)]
        org: String,
        /// A role: privacy-officer, covenant-admin or operator (repeat for more).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// The example certificates whose demo issuer key signs the token.
        #[arg(long, default_value = "certs-example")]
        certs: PathBuf,
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
        DevCommand::Token {
            sub,
            org,
            roles,
            certs,
        } => {
            let org: policy::Oin = org.parse().map_err(|e| anyhow::anyhow!("--org: {e}"))?;
            let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
            println!(
                "{}",
                devkit::demo::person_token(&certs, &sub, org.as_str(), &roles)?
            );
            Ok(())
        }
    }
}
