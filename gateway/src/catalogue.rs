//! The field catalogue the gateway runs with: the embedded Max WW catalogue from `schemas/`, or
//! a file named in the configuration.

use std::path::Path;

use policy::{CatalogueDocument, FieldCatalogue};

/// The Max WW handover catalogue shipped in `schemas/field-catalogue.json`.
pub const EMBEDDED_CATALOGUE: &str = include_str!("../../schemas/field-catalogue.json");

#[derive(Debug, thiserror::Error)]
pub enum CatalogueLoadError {
    #[error("cannot read field catalogue {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("field catalogue {path} is not valid: {message}")]
    Invalid { path: String, message: String },
}

/// Parse a catalogue document (JSON).
pub fn parse(text: &str, origin: &str) -> Result<FieldCatalogue, CatalogueLoadError> {
    let invalid = |message: String| CatalogueLoadError::Invalid {
        path: origin.to_owned(),
        message,
    };
    let de = &mut serde_json::Deserializer::from_str(text);
    let doc: CatalogueDocument = serde_path_to_error::deserialize(de)
        .map_err(|e| invalid(format!("{}: {}", e.path(), e.inner())))?;
    FieldCatalogue::new(doc).map_err(|e| invalid(e.to_string()))
}

/// The embedded catalogue.
pub fn embedded() -> FieldCatalogue {
    // The embedded document is checked by a unit test; failing here would be a build defect.
    parse(EMBEDDED_CATALOGUE, "embedded field-catalogue.json")
        .expect("embedded field catalogue is valid")
}

/// Load from `path`, or the embedded catalogue when `None`.
pub fn load(path: Option<&Path>) -> Result<FieldCatalogue, CatalogueLoadError> {
    match path {
        None => Ok(embedded()),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| CatalogueLoadError::Read {
                path: p.display().to_string(),
                source,
            })?;
            parse(&text, &p.display().to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_catalogue_parses_and_flags_special_categories() {
        let cat = super::embedded();
        assert!(cat.is_special(&"addiction_treatment_history".parse().unwrap()));
        assert!(cat.is_special(&"mental_health_complaints".parse().unwrap()));
        assert!(!cat.is_special(&"own_transport".parse().unwrap()));
    }
}
