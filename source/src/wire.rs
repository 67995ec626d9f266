//! The source interface on the wire (`schemas/source-openapi.yaml`): the gateway's field query
//! and the source's answer.

use std::collections::BTreeMap;

use policy::{Bsn, FieldName, Oin, Purpose};
use serde::{Deserialize, Serialize};

/// `POST /v1/field-queries`: the fields of one subject the gateway has released for one purpose.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldQuery {
    pub subject: Bsn,
    pub fields: Vec<FieldName>,
    pub purpose: Purpose,
    /// The organisation the gateway asks on behalf of (from its certificate at the gateway).
    pub requester_oin: Oin,
    /// `id@version#sha256:…` of the covenant the gateway decided under.
    pub covenant: String,
    /// The gateway's disclosure id (the audit record's id), for the source's own log.
    pub disclosure_id: String,
}

/// Whether the source holds a record for the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordStatus {
    Found,
    NoRecord,
}

/// The source's answer: the subject it is about, and the fields asked for that it holds.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FieldAnswer {
    pub subject: String,
    pub record: RecordStatus,
    pub fields: BTreeMap<String, serde_json::Value>,
}
