//! The field catalogue: every field that may ever be handed over, its type, category and whether
//! it is a special category of personal data (GDPR art. 9). Checks values against types without
//! ever echoing a value in an error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::FieldName;

/// The type of a catalogued field; a stored value must match it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FieldType {
    Boolean,
    Integer {
        min: i64,
        max: i64,
    },
    String {
        max_length: usize,
    },
    /// An ISO 8601 calendar date, `YYYY-MM-DD`.
    Date,
    Enum {
        values: Vec<String>,
    },
    StringList {
        max_items: usize,
        max_length: usize,
    },
}

impl FieldType {
    /// Whether `value` is a well-formed value of this type.
    pub fn accepts(&self, value: &serde_json::Value) -> bool {
        use serde_json::Value;
        match (self, value) {
            (FieldType::Boolean, Value::Bool(_)) => true,
            (FieldType::Integer { min, max }, Value::Number(n)) => {
                n.as_i64().is_some_and(|v| (*min..=*max).contains(&v))
            }
            (FieldType::String { max_length }, Value::String(s)) => {
                s.chars().count() <= *max_length
            }
            (FieldType::Date, Value::String(s)) => {
                s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
            }
            (FieldType::Enum { values }, Value::String(s)) => values.iter().any(|v| v == s),
            (
                FieldType::StringList {
                    max_items,
                    max_length,
                },
                Value::Array(items),
            ) => {
                items.len() <= *max_items
                    && items
                        .iter()
                        .all(|i| i.as_str().is_some_and(|s| s.chars().count() <= *max_length))
            }
            _ => false,
        }
    }
}

/// One catalogued field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    pub name: FieldName,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub category: String,
    pub description: String,
    /// GDPR art. 9 special category: released only under a grant that allows special
    /// categories *and* a consent that names the field.
    #[serde(default)]
    pub special_category: bool,
    /// Sensitive but not art. 9 (debts, eviction): shown as such to privacy officers.
    #[serde(default)]
    pub sensitive: bool,
    /// A derived attribute: under a live grant the gateway computes it from a source field that
    /// is fetched, used and dropped (`crate::live`). Under a stored grant it is a plain value the
    /// source computed itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derived: Option<Derivation>,
}

// --- live disclosure (issue 18): derived attributes -------------------------------------------

/// How a derived attribute is computed from its one input field (see `crate::live::derive`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Derivation {
    /// Boolean: the input date lies on or after the decision date and no more than `months`
    /// calendar months after it (e.g. WW ends within three months).
    EndsWithinMonths { input: FieldName, months: u32 },
    /// Boolean: the integer input is strictly above the norm the grant names `norm`.
    AboveNorm { input: FieldName, norm: String },
    /// Enum: the age on the decision date, from a birth date, in the bands `under-27`, `27-49`,
    /// `50-and-over` (the labour-market bands of the Participatiewet and WW practice).
    AgeBand { input: FieldName },
}

impl Derivation {
    /// The source field it is computed from.
    pub fn input(&self) -> &FieldName {
        match self {
            Derivation::EndsWithinMonths { input, .. }
            | Derivation::AboveNorm { input, .. }
            | Derivation::AgeBand { input } => input,
        }
    }

    /// The grant norm it compares against, if any.
    pub fn norm(&self) -> Option<&str> {
        match self {
            Derivation::AboveNorm { norm, .. } => Some(norm),
            _ => None,
        }
    }

    /// Whether `input` (its catalogue type) and `output` fit this rule.
    fn fits(&self, input: &FieldType, output: &FieldType) -> bool {
        match self {
            Derivation::EndsWithinMonths { .. } => {
                *input == FieldType::Date && *output == FieldType::Boolean
            }
            Derivation::AboveNorm { .. } => {
                matches!(input, FieldType::Integer { .. }) && *output == FieldType::Boolean
            }
            Derivation::AgeBand { .. } => {
                *input == FieldType::Date
                    && *output
                        == FieldType::Enum {
                            values: AGE_BANDS.iter().map(|s| s.to_string()).collect(),
                        }
            }
        }
    }
}

/// The values of an `age-band` attribute, youngest first.
pub const AGE_BANDS: [&str; 3] = ["under-27", "27-49", "50-and-over"];

// --- end derived attributes --------------------------------------------------------------------

/// The catalogue document as stored in `schemas/field-catalogue.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueDocument {
    pub id: String,
    pub version: u32,
    pub fields: Vec<FieldSpec>,
}

/// A catalogue indexed by field name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldCatalogue {
    pub id: String,
    pub version: u32,
    fields: BTreeMap<FieldName, FieldSpec>,
}

/// Why a catalogue document is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    #[error("field `{0}` is catalogued twice")]
    Duplicate(FieldName),
    #[error("field `{0}` has an empty enum or an integer range with min > max")]
    EmptyType(FieldName),
    #[error("derived attribute `{0}` names an input that is missing, itself derived, or of a type its rule cannot use")]
    BadDerivation(FieldName),
}

impl FieldCatalogue {
    /// Index a catalogue document, refusing duplicates and empty types.
    pub fn new(doc: CatalogueDocument) -> Result<Self, CatalogueError> {
        let mut fields = BTreeMap::new();
        for spec in doc.fields {
            let empty = match &spec.field_type {
                FieldType::Enum { values } => values.is_empty(),
                FieldType::Integer { min, max } => min > max,
                _ => false,
            };
            if empty {
                return Err(CatalogueError::EmptyType(spec.name));
            }
            if let Some(prev) = fields.insert(spec.name.clone(), spec) {
                return Err(CatalogueError::Duplicate(prev.name));
            }
        }
        for spec in fields.values() {
            if let Some(d) = &spec.derived {
                let ok = fields.get(d.input()).is_some_and(|i| {
                    i.derived.is_none() && d.fits(&i.field_type, &spec.field_type)
                });
                if !ok {
                    return Err(CatalogueError::BadDerivation(spec.name.clone()));
                }
            }
        }
        Ok(FieldCatalogue {
            id: doc.id,
            version: doc.version,
            fields,
        })
    }

    pub fn get(&self, name: &FieldName) -> Option<&FieldSpec> {
        self.fields.get(name)
    }

    pub fn contains(&self, name: &FieldName) -> bool {
        self.fields.contains_key(name)
    }

    pub fn is_special(&self, name: &FieldName) -> bool {
        self.fields.get(name).is_some_and(|f| f.special_category)
    }

    pub fn fields(&self) -> impl Iterator<Item = &FieldSpec> {
        self.fields.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn types_accept_only_their_values() {
        let hours = FieldType::Integer { min: 0, max: 60 };
        assert!(hours.accepts(&json!(32)));
        assert!(!hours.accepts(&json!(61)));
        assert!(!hours.accepts(&json!("32")));
        assert!(FieldType::Date.accepts(&json!("2026-02-28")));
        assert!(!FieldType::Date.accepts(&json!("2026-02-30")));
        let band = FieldType::Enum {
            values: vec!["80-100".into(), "50-80".into(), "<50".into()],
        };
        assert!(band.accepts(&json!("<50")));
        assert!(!band.accepts(&json!("100")));
        let list = FieldType::StringList {
            max_items: 2,
            max_length: 3,
        };
        assert!(list.accepts(&json!(["B", "C"])));
        assert!(!list.accepts(&json!(["B", "C", "D"])));
        assert!(!list.accepts(&json!([1])));
        assert!(FieldType::Boolean.accepts(&json!(true)));
        assert!(!FieldType::Boolean.accepts(&json!(null)));
    }
}
