//! The covenant snapshot from the database, the source of truth: stored versions loaded, every
//! stored signature re-verified against the registered covenant keys (only those that verify
//! count), the configuration's covenants imported at start-up, and the snapshot swapped in.

use std::collections::{BTreeSet, HashMap};

use chrono::Utc;
use policy::{
    AdminState, Covenant, CovenantEntry, CovenantId, CovenantSet, DocumentFormat, FieldCatalogue,
    Oin,
};

use crate::config::Config;
use crate::covenant_sig;
use crate::keys::KeyRing;
use crate::state::AppState;
use crate::store::covenants::{CovenantSignatureRow, CovenantVersionRow};
use crate::store::{Store, StoreError};

/// Why the configuration's covenants could not be imported at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("covenant {path}: {message}")]
    Covenant { path: String, message: String },
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

/// A party's stored signature and whether it verifies now.
#[derive(Debug, Clone)]
pub struct StoredSignature {
    pub party: Oin,
    pub signed_at: i64,
    /// `Err` says why the stored signature does not count.
    pub verified: Result<(), String>,
}

/// A stored covenant version as the gateway understands it now.
#[derive(Debug, Clone)]
pub struct LoadedVersion {
    /// With `signed_by` = the parties whose stored signature verifies.
    pub entry: CovenantEntry,
    pub created_at: i64,
    pub updated_at: i64,
    pub signatures: Vec<StoredSignature>,
    /// Why this version can never be active (a document that no longer matches its hash or the
    /// field catalogue); its signatures then do not count.
    pub problem: Option<String>,
}

/// Load stored versions (of one covenant, or all) and re-verify every stored signature against
/// the registered covenant keys.
pub async fn load_versions(
    store: &Store,
    keys: &KeyRing,
    catalogue: &FieldCatalogue,
    id: Option<&CovenantId>,
) -> Result<Vec<LoadedVersion>, StoreError> {
    let rows = store.covenant_versions(id).await?;
    let mut sigs: HashMap<(CovenantId, u32), Vec<CovenantSignatureRow>> = HashMap::new();
    for s in store.covenant_signatures(id).await? {
        sigs.entry((s.covenant_id.clone(), s.version))
            .or_default()
            .push(s);
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let covenant = match Covenant::parse(&row.document, DocumentFormat::Json) {
            Ok(c) if c.id == row.covenant_id && c.version == row.version => c,
            Ok(_) => {
                tracing::error!(covenant = %row.covenant_id, version = row.version, "stored covenant document names another id or version; ignored");
                continue;
            }
            Err(e) => {
                tracing::error!(covenant = %row.covenant_id, version = row.version, error = %e, "stored covenant document does not parse; ignored");
                continue;
            }
        };
        let problem = if covenant.canonical_hash() != row.hash {
            Some("the stored document does not match its recorded hash".to_owned())
        } else {
            let problems = covenant.validate(catalogue);
            (!problems.is_empty()).then(|| {
                format!(
                    "not valid against the field catalogue: {}",
                    problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            })
        };
        if let Some(p) = &problem {
            tracing::error!(covenant = %covenant.reference(), problem = %p, "covenant version can never be active");
        }
        let mut signed_by = BTreeSet::new();
        let mut signatures = Vec::new();
        for s in sigs
            .remove(&(row.covenant_id.clone(), row.version))
            .unwrap_or_default()
        {
            let verified = match (&problem, covenant_sig::verify(&covenant, &s.jws, keys)) {
                (Some(p), _) => Err(p.clone()),
                (None, Ok(party)) if party == s.party => Ok(()),
                (None, Ok(party)) => Err(format!("the signature is by {party}")),
                (None, Err(e)) => Err(e.to_string()),
            };
            if verified.is_ok() {
                signed_by.insert(s.party.clone());
            }
            signatures.push(StoredSignature {
                party: s.party,
                signed_at: s.signed_at,
                verified,
            });
        }
        out.push(LoadedVersion {
            entry: CovenantEntry::new(covenant, row.admin, signed_by),
            created_at: row.created_at,
            updated_at: row.updated_at,
            signatures,
            problem,
        });
    }
    Ok(out)
}

/// Build the covenant snapshot from the database.
pub async fn build_set(
    store: &Store,
    keys: &KeyRing,
    catalogue: FieldCatalogue,
) -> Result<CovenantSet, StoreError> {
    let versions = load_versions(store, keys, &catalogue, None).await?;
    Ok(CovenantSet::new(
        catalogue,
        versions.into_iter().map(|v| v.entry).collect(),
    ))
}

/// Rebuild the snapshot from the database and swap it in: the next request sees it. Callers
/// hold the [`AdminLock`]. The covenant generation is read before the tables, so a change that
/// lands during the rebuild is picked up by the next check of `super::sync`.
pub async fn refresh(state: &AppState) -> Result<(), StoreError> {
    let generation = state.store.covenant_generation().await?;
    let catalogue = state.covenants().catalogue().clone();
    let set = build_set(&state.store, &state.covenant_keys, catalogue).await?;
    state.replace_covenants(set, generation);
    Ok(())
}

/// The administrative state a new version of a covenant starts in: a suspended covenant stays
/// suspended (a new version must not bypass a suspension), a terminated one stays terminated.
pub(super) fn inherited_admin(existing: &[CovenantVersionRow]) -> AdminState {
    if existing.iter().any(|r| r.admin == AdminState::Terminated) {
        AdminState::Terminated
    } else if existing.iter().any(|r| r.admin == AdminState::Suspended) {
        AdminState::Suspended
    } else {
        AdminState::Open
    }
}

/// At start-up: import the covenants of the configuration (with their signature files) into the
/// database where absent, then build the snapshot from the database. `configured` is the set
/// [`crate::boot::load_covenants`] already parsed, validated and signature-checked.
pub async fn import_config(
    store: &Store,
    config: &Config,
    configured: &CovenantSet,
    keys: &KeyRing,
) -> Result<CovenantSet, ImportError> {
    let now = Utc::now().timestamp();
    for section in &config.covenants {
        let path = section.file.display().to_string();
        let err = |message: String| ImportError::Covenant {
            path: path.clone(),
            message,
        };
        let text = std::fs::read_to_string(&section.file).map_err(|e| err(e.to_string()))?;
        let covenant = Covenant::parse(&text, DocumentFormat::from_file_name(&path))
            .map_err(|e| err(e.to_string()))?;
        let hash = covenant.canonical_hash();
        let mut signatures = Vec::new();
        for sig_path in &section.signatures {
            let jws = std::fs::read_to_string(sig_path)
                .map_err(|e| err(format!("signature {}: {e}", sig_path.display())))?;
            let party = covenant_sig::verify(&covenant, &jws, keys)
                .map_err(|e| err(format!("signature {}: {e}", sig_path.display())))?;
            signatures.push(CovenantSignatureRow {
                covenant_id: covenant.id.clone(),
                version: covenant.version,
                party,
                jws: jws.trim().to_owned(),
                signed_at: now,
            });
        }
        let existing = store.covenant_versions(Some(&covenant.id)).await?;
        match existing.iter().find(|r| r.version == covenant.version) {
            None => {
                let admin = inherited_admin(&existing);
                let row = CovenantVersionRow {
                    covenant_id: covenant.id.clone(),
                    version: covenant.version,
                    document: String::from_utf8_lossy(&covenant.canonical_bytes()).into_owned(),
                    hash,
                    admin,
                    created_at: now,
                    updated_at: now,
                };
                store.insert_covenant_version(&row, &signatures).await?;
                tracing::info!(covenant = %covenant.reference(), admin = ?admin, "covenant imported from the configuration");
            }
            Some(row) if row.hash == hash => {
                for s in &signatures {
                    store.add_covenant_signature_if_absent(s).await?;
                }
            }
            Some(row) => {
                return Err(err(format!(
                "the database already holds {}@{} with hash {}, but this file hashes to {hash}; \
                     a changed covenant must be a new version",
                covenant.id, covenant.version, row.hash
            )))
            }
        }
    }
    Ok(build_set(store, keys, configured.catalogue().clone()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(version: u32, admin: AdminState) -> CovenantVersionRow {
        CovenantVersionRow {
            covenant_id: "c".parse().unwrap(),
            version,
            document: String::new(),
            hash: policy::Sha256Hash::of(b""),
            admin,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn covenant_new_version_cannot_escape_suspension_or_termination() {
        assert_eq!(inherited_admin(&[]), AdminState::Open);
        assert_eq!(
            inherited_admin(&[row(1, AdminState::Open)]),
            AdminState::Open
        );
        assert_eq!(
            inherited_admin(&[row(1, AdminState::Open), row(2, AdminState::Suspended)]),
            AdminState::Suspended
        );
        assert_eq!(
            inherited_admin(&[
                row(1, AdminState::Suspended),
                row(2, AdminState::Terminated)
            ]),
            AdminState::Terminated
        );
    }
}
