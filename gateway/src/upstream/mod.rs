//! Live disclosure, the I/O half: the sources' own services (one client per source OIN, from the
//! configuration), asked after a permit for exactly the fields `policy::live::source_fields`
//! names. Returns the source's answer as received (`policy::live::assemble` checks it) or a
//! [`SourceFault`]; per-source breaker state and counters for `/metrics`. Never logs a BSN, the
//! query or the answer.

mod breaker;
mod client;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use hyper::body::Bytes;
use policy::live::SourceAnswer;
use policy::{Bsn, CovenantRef, FieldName, Oin, Purpose};
use serde::{Deserialize, Serialize};

pub use breaker::{Breaker, BreakerState};
pub use client::SourceClient;

use crate::config::{SourceClientSection, SourceSection};

/// Why a source could not give a usable answer. Each refuses the disclosure with its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFault {
    /// Not configured, not reachable, refused the connection or the query, or its breaker is
    /// open: `source-unavailable`.
    Unavailable,
    /// No complete answer within the configured timeouts: `source-timeout`.
    Timeout,
    /// An answer that is not the interface's JSON, about another subject, or with a value of the
    /// wrong type: `source-invalid-answer`.
    InvalidAnswer,
}

impl SourceFault {
    pub fn reason(self) -> &'static str {
        match self {
            SourceFault::Unavailable => "source-unavailable",
            SourceFault::Timeout => "source-timeout",
            SourceFault::InvalidAnswer => "source-invalid-answer",
        }
    }
}

/// The query body (`schemas/source-openapi.yaml`, `FieldQuery`).
#[derive(Serialize)]
struct FieldQuery<'a> {
    subject: &'a Bsn,
    fields: &'a [FieldName],
    purpose: &'a Purpose,
    requester_oin: &'a Oin,
    covenant: String,
    disclosure_id: &'a str,
}

/// The answer body, as far as the gateway reads it (unknown members are ignored).
#[derive(Deserialize)]
struct FieldAnswer {
    subject: String,
    record: RecordStatus,
    fields: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum RecordStatus {
    Found,
    NoRecord,
}

/// What one live query asks.
pub struct Query<'a> {
    pub subject: &'a Bsn,
    pub fields: &'a [FieldName],
    pub purpose: &'a Purpose,
    pub requester: &'a Oin,
    pub covenant: &'a CovenantRef,
    pub disclosure_id: &'a str,
    /// W3C `traceparent` of the disclosure's span, when tracing is on.
    pub traceparent: Option<String>,
}

/// Every configured source, by OIN.
#[derive(Default)]
pub struct Sources {
    by_oin: HashMap<Oin, Arc<SourceClient>>,
}

impl Sources {
    /// Build the clients from the configuration. Errors name the key.
    pub fn from_config(
        sources: &[SourceSection],
        identity: Option<&SourceClientSection>,
    ) -> Result<Self, (String, String)> {
        let mut by_oin = HashMap::new();
        let Some(identity) = identity else {
            return Ok(Sources { by_oin });
        };
        let certs = crate::tls::load_certs(&identity.cert)
            .map_err(|e| ("source_client.cert".to_owned(), e.to_string()))?;
        let key = crate::tls::load_private_key(&identity.key)
            .map_err(|e| ("source_client.key".to_owned(), e.to_string()))?;
        for (i, section) in sources.iter().enumerate() {
            let at = |k: &str| format!("sources[{i}].{k}");
            let roots =
                crate::tls::load_roots(&section.ca).map_err(|e| (at("ca"), e.to_string()))?;
            let mut tls = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
                .with_protocol_versions(crate::tls::PROTOCOL_VERSIONS)
                .map_err(|e| (at("url"), e.to_string()))?
                .with_root_certificates(roots)
                .with_client_auth_cert(certs.clone(), key.clone_key())
                .map_err(|e| ("source_client".to_owned(), e.to_string()))?;
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            let client = SourceClient::new(section, Arc::new(tls)).map_err(|m| (at("url"), m))?;
            by_oin.insert(section.oin.clone(), Arc::new(client));
        }
        Ok(Sources { by_oin })
    }

    /// Ask `source` for `query.fields` of `query.subject`. The answer is returned as received
    /// (subject and fields), to be checked by `policy::live::assemble`.
    pub async fn query(&self, source: &Oin, query: Query<'_>) -> Result<SourceAnswer, SourceFault> {
        let client = self.by_oin.get(source).ok_or(SourceFault::Unavailable)?;
        let body = FieldQuery {
            subject: query.subject,
            fields: query.fields,
            purpose: query.purpose,
            requester_oin: query.requester,
            covenant: query.covenant.to_string(),
            disclosure_id: query.disclosure_id,
        };
        let body = serde_json::to_vec(&body).map_err(|_| SourceFault::Unavailable)?;
        let bytes = client
            .post(Bytes::from(body), query.traceparent.as_deref())
            .await?;
        let answer: FieldAnswer =
            serde_json::from_slice(&bytes).map_err(|_| SourceFault::InvalidAnswer)?;
        Ok(SourceAnswer {
            subject: answer.subject,
            found: answer.record == RecordStatus::Found,
            fields: answer.fields,
        })
    }

    /// Prometheus text for every source: breaker state and calls by outcome.
    pub fn render_metrics(&self, out: &mut String) {
        let mut clients: Vec<&Arc<SourceClient>> = self.by_oin.values().collect();
        clients.sort_by(|a, b| a.oin.as_str().cmp(b.oin.as_str()));
        let name = "poortwachter_source_breaker_state";
        let _ = writeln!(
            out,
            "# HELP {name} Circuit breaker per source: 0 closed, 1 open, 2 half-open."
        );
        let _ = writeln!(out, "# TYPE {name} gauge");
        for c in &clients {
            let _ = writeln!(
                out,
                "{name}{{source=\"{}\"}} {}",
                c.oin,
                c.breaker_state().as_gauge()
            );
        }
        let name = "poortwachter_source_calls_total";
        let _ = writeln!(out, "# HELP {name} Live queries to a source, by outcome (breaker-open: refused without asking).");
        let _ = writeln!(out, "# TYPE {name} counter");
        for c in &clients {
            let n = &c.counters;
            for (outcome, v) in [
                ("ok", &n.ok),
                ("source-unavailable", &n.unavailable),
                ("source-timeout", &n.timeout),
                ("source-invalid-answer", &n.invalid_answer),
                ("breaker-open", &n.breaker_open),
            ] {
                let _ = writeln!(
                    out,
                    "{name}{{source=\"{}\",outcome=\"{outcome}\"}} {}",
                    c.oin,
                    v.load(Ordering::Relaxed)
                );
            }
        }
        let name = "poortwachter_source_failures_total";
        let _ = writeln!(
            out,
            "# HELP {name} Failed live queries to a source (unavailable, timeout, invalid answer)."
        );
        let _ = writeln!(out, "# TYPE {name} counter");
        for c in &clients {
            let n = &c.counters;
            let failed = n.unavailable.load(Ordering::Relaxed)
                + n.timeout.load(Ordering::Relaxed)
                + n.invalid_answer.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{source=\"{}\"}} {failed}", c.oin);
        }
    }
}
