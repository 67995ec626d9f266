//! `poortwachter covenant …`: validate, hash, sign and compare covenant documents offline.

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
    /// Sign a covenant version as one of its parties: prints the detached JWS over its canonical
    /// hash, which an administrator adds with
    /// `POST /v1/covenants/{id}/versions/{version}/signatures`. Any later change to the document
    /// invalidates the signature.
    Sign {
        /// The party's private covenant key (PKCS#8 PEM).
        #[arg(long)]
        key: PathBuf,
        /// The signing party's OIN (must be a party to the covenant).
        #[arg(long)]
        party: String,
        /// The key id under which the gateway has registered the party's public key.
        #[arg(long)]
        kid: String,
        /// `ES256` or `EdDSA` (default: whichever the key is).
        #[arg(long)]
        alg: Option<String>,
        /// Refuse to sign unless the document is valid against this catalogue (default: the
        /// embedded Max WW catalogue).
        #[arg(long)]
        catalogue: Option<PathBuf>,
        file: PathBuf,
    },
    /// Say in plain words what changed from covenant version A to version B: parties, dates,
    /// and per purpose the fields, recipients, legal basis, consent, special categories and
    /// retention.
    Diff { a: PathBuf, b: PathBuf },
}

/// Load a private covenant key, trying ES256 then EdDSA when no algorithm is given.
fn load_signing_key(
    path: &Path,
    alg: Option<&str>,
) -> anyhow::Result<(jsonwebtoken::Algorithm, jsonwebtoken::EncodingKey)> {
    let candidates = match alg {
        Some(a) => vec![crate::keys::parse_alg(a)?],
        None => vec![
            jsonwebtoken::Algorithm::ES256,
            jsonwebtoken::Algorithm::EdDSA,
        ],
    };
    let mut last = None;
    for alg in candidates {
        match crate::keys::load_private(path, alg) {
            Ok(key) => return Ok((alg, key)),
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => Err(e.into()),
        None => bail!("no algorithm to try"),
    }
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
        CovenantCommand::Sign {
            key,
            party,
            kid,
            alg,
            catalogue,
            file,
        } => {
            let party: policy::Oin = party.parse().map_err(|e| anyhow::anyhow!("--party: {e}"))?;
            let covenant = read_covenant(&file)?;
            if !covenant.is_party(&party) {
                bail!(
                    "{}: {party} is not a party to {}; only parties sign",
                    file.display(),
                    covenant.reference()
                );
            }
            let catalogue = crate::catalogue::load(catalogue.as_deref())?;
            let problems = covenant.validate(&catalogue);
            if !problems.is_empty() {
                for p in &problems {
                    eprintln!("{}: {}", file.display(), p);
                }
                bail!(
                    "{}: {} problem(s); refusing to sign an invalid covenant",
                    file.display(),
                    problems.len()
                );
            }
            let (alg, key) = load_signing_key(&key, alg.as_deref())
                .with_context(|| format!("--key {}", key.display()))?;
            let jws = crate::covenant_sig::sign(&covenant, &party, &kid, alg, &key)?;
            println!("{jws}");
            eprintln!("signed {} as {party} (kid {kid})", covenant.reference());
            Ok(())
        }
        CovenantCommand::Diff { a, b } => {
            let a = read_covenant(&a)?;
            let b = read_covenant(&b)?;
            print!("{}", crate::covenant_diff::diff(&a, &b));
            Ok(())
        }
    }
}
