//! Wire types of the v1 HTTP contract (DESIGN.md §3) that are not policy types: request and
//! response bodies. Validated identifiers are parsed here, at the edge.

use std::collections::BTreeMap;

use policy::{Basis, Bsn, FieldName, Purpose, Withheld};
use serde::{Deserialize, Serialize};

/// `subject` of a request body: the client, by BSN. A subject travels only in a request body,
/// never in a URL (path or query), which proxies, ingresses and browsers record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectRef {
    pub bsn: Bsn,
}

/// Body of `POST /v1/disclosures`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisclosureRequestBody {
    pub subject: SubjectRef,
    pub purpose: Purpose,
    /// The fields asked for. Required: absent or empty is refused with `fields-required` before
    /// anything is decided (read as empty here so that the refusal names the rule, not the
    /// syntax).
    #[serde(default)]
    pub fields: Vec<FieldName>,
    // Issue 16: the employee behind the request travels in the verified `Actor-Token` header,
    // never as free text in the body (the former `on_behalf_of` is gone: unknown members are
    // refused).
}

/// The basis of a decision as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasisView {
    /// `id@version#sha256:…`
    pub covenant: String,
    pub covenant_id: String,
    pub covenant_version: u32,
    pub covenant_hash: String,
    pub legal_basis: String,
    pub source: String,
    pub consent: Option<String>,
}

impl From<&Basis> for BasisView {
    fn from(b: &Basis) -> Self {
        BasisView {
            covenant: b.covenant.to_string(),
            covenant_id: b.covenant.id.to_string(),
            covenant_version: b.covenant.version,
            covenant_hash: b.covenant.hash.to_string(),
            legal_basis: b.legal_basis.as_str().to_owned(),
            source: b.source.to_string(),
            consent: b.consent.as_ref().map(|c| c.to_string()),
        }
    }
}

/// Whether the source holds a handover record for the subject. Only ever said to an authorised
/// recipient (after a permit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordStatus {
    Found,
    NoRecord,
}

/// Response of a permitted `POST /v1/disclosures`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisclosureResponse {
    pub disclosure_id: String,
    pub decision: String,
    pub purpose: String,
    pub record: RecordStatus,
    /// Exactly the decided fields that the record holds, with their values.
    pub released: BTreeMap<String, serde_json::Value>,
    pub withheld: Vec<Withheld>,
    pub basis: BasisView,
}

/// Body of `POST /v1/handovers`: the record a source stores about one client for one purpose.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoverBody {
    pub purpose: Purpose,
    pub subject: SubjectRef,
    pub fields: BTreeMap<String, serde_json::Value>,
}

/// Response of a stored handover record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoverStored {
    pub purpose: String,
    pub fields: Vec<String>,
    pub covenant: String,
    pub consent: Option<String>,
    pub expires_at: String,
}

/// Response of `POST /v1/consents`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRegistered {
    pub consent_id: String,
    pub purpose: String,
    pub recipients: Vec<String>,
    pub fields: Vec<String>,
    pub covenant: String,
    pub not_before: String,
    pub expires_at: String,
}

/// Response of `POST /v1/consents/{id}/revoke`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRevoked {
    pub consent_id: String,
    pub revoked_at: String,
    /// Handover records destroyed because they were held only under this consent.
    pub handovers_destroyed: u64,
}
