//! The source's records, loaded once from a JSON file and indexed by subject. Values are kept
//! as JSON; the source answers them as it holds them (the gateway checks types).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use policy::Bsn;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataFile {
    records: Vec<Record>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    subject: Bsn,
    fields: BTreeMap<String, serde_json::Value>,
}

/// Every record the source holds, by subject.
#[derive(Debug, Default)]
pub struct Records {
    by_subject: BTreeMap<Bsn, BTreeMap<String, serde_json::Value>>,
}

impl Records {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file: DataFile = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a records file", path.display()))?;
        let mut by_subject = BTreeMap::new();
        for r in file.records {
            by_subject.insert(r.subject, r.fields);
        }
        Ok(Records { by_subject })
    }

    pub fn get(&self, subject: &Bsn) -> Option<&BTreeMap<String, serde_json::Value>> {
        self.by_subject.get(subject)
    }
}
