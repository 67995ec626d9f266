//! The source's configuration (TOML, unknown keys refused): where it listens, its TLS identity,
//! the CA and OINs of the clients it answers (the gateway), its data file, and a test-only fault
//! mode. Validated once at start; errors name the key or file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use policy::Oin;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// `host:port`; port 0 picks a free port (printed at start).
    pub listen: SocketAddr,
    pub tls: TlsSection,
    /// The organisations (OIN in the client certificate's subject `serialNumber`) allowed to ask:
    /// in practice exactly the gateway. Everyone else is refused before anything is read.
    pub allowed_clients: Vec<Oin>,
    /// The records: a JSON file `{"records": [{"subject": "<bsn>", "fields": {...}}]}`.
    pub data: PathBuf,
    /// TEST AND DEMO ONLY: make the source misbehave, to show how the gateway copes.
    #[serde(default)]
    pub fault: Option<Fault>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA that signs the clients' certificates (pinned: no other CA is trusted).
    pub client_ca: PathBuf,
}

/// TEST AND DEMO ONLY. How the source misbehaves when a fault is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Fault {
    /// Accept the query and never answer.
    Hang,
    /// Answer 200 with a body that is not JSON.
    Garbage,
    /// Answer about another subject.
    WrongSubject,
    /// Answer every field it holds, not only those asked for.
    OverDeliver,
    /// Answer a value of the wrong type for every field asked for.
    WrongType,
}

impl SourceConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{}: invalid configuration", path.display()))
    }
}
