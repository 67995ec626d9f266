//! `poortwachter covenant …`: validate and hash covenant documents offline.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use policy::{Covenant, DocumentFormat};

#[derive(Debug, Subcommand)]
pub enum CovenantCommand {
    /// Check a covenant document (TOML or JSON) against the schema rules and the field catalogue.
    /// Exits 0 when valid; otherwise prints every problem with its field path and exits 1.
    Validate {
        /// The covenant file (`.toml` is read as TOML, anything else as JSON).
        file: PathBuf,
        /// A field catalogue to check against instead of the embedded Max WW catalogue.
        #[arg(long)]
        catalogue: Option<PathBuf>,
    },
    /// Print the canonical SHA-256 of a covenant version (what every party signs), as
    /// `sha256:<hex>`. The same covenant in TOML or JSON, in any key order, hashes the same.
    Hash {
        file: PathBuf,
        /// Also print the canonical JSON that is hashed.
        #[arg(long)]
        show_canonical: bool,
    },
}

/// Read and parse a covenant file; errors name the file and the field path.
pub fn read_covenant(path: &Path) -> anyhow::Result<Covenant> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read covenant file {}", path.display()))?;
    let format = DocumentFormat::from_file_name(&path.to_string_lossy());
    Covenant::parse(&text, format).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e))
}

pub fn run(cmd: CovenantCommand) -> anyhow::Result<()> {
    match cmd {
        CovenantCommand::Validate { file, catalogue } => {
            let catalogue = crate::catalogue::load(catalogue.as_deref())?;
            let covenant = read_covenant(&file)?;
            let problems = covenant.validate(&catalogue);
            if problems.is_empty() {
                println!(
                    "{}: valid — {} ({} parties, {} grants)",
                    file.display(),
                    covenant.reference(),
                    covenant.parties.len(),
                    covenant.grants.len()
                );
                Ok(())
            } else {
                for p in &problems {
                    eprintln!("{}: {}", file.display(), p);
                }
                bail!(
                    "{}: {} problem(s); the covenant is not valid",
                    file.display(),
                    problems.len()
                )
            }
        }
        CovenantCommand::Hash {
            file,
            show_canonical,
        } => {
            let covenant = read_covenant(&file)?;
            if show_canonical {
                println!("{}", String::from_utf8_lossy(&covenant.canonical_bytes()));
            }
            println!("{}", covenant.canonical_hash());
            Ok(())
        }
    }
}
