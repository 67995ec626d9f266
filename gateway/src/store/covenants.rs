//! Storage of covenant versions and party signatures, behind the backend-neutral `Store`.
//! Stores documents and signatures as given; it never decides whether a signature counts.

use policy::{AdminState, CovenantId};

pub use super::rows::{CovenantSignatureRow, CovenantVersionRow};
use super::{Store, StoreError};

impl Store {
    /// Every stored version (of one covenant when `id` is given), ordered by id and version.
    pub async fn covenant_versions(
        &self,
        id: Option<&CovenantId>,
    ) -> Result<Vec<CovenantVersionRow>, StoreError> {
        dispatch!(self, s => s.covenant_versions(id).await)
    }

    /// Every stored signature (of one covenant when `id` is given).
    pub async fn covenant_signatures(
        &self,
        id: Option<&CovenantId>,
    ) -> Result<Vec<CovenantSignatureRow>, StoreError> {
        dispatch!(self, s => s.covenant_signatures(id).await)
    }

    /// Store a new version with the signatures it already carries, in one transaction.
    /// `Duplicate` when this id and version exist.
    pub async fn insert_covenant_version(
        &self,
        row: &CovenantVersionRow,
        signatures: &[CovenantSignatureRow],
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.insert_covenant_version(row, signatures).await)
    }

    /// Store a party's signature, replacing an earlier one by the same party over the same
    /// version. Returns whether one was replaced.
    pub async fn put_covenant_signature(
        &self,
        row: &CovenantSignatureRow,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.put_covenant_signature(row).await)
    }

    /// Store a party's signature unless that party already has one over that version. Returns
    /// whether it was stored.
    pub async fn add_covenant_signature_if_absent(
        &self,
        row: &CovenantSignatureRow,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.add_covenant_signature_if_absent(row).await)
    }

    /// Set the administrative state of every version of `id` that is in one of `from` to `to`.
    /// Returns how many versions changed.
    pub async fn set_covenant_admin_state(
        &self,
        id: &CovenantId,
        from: &[AdminState],
        to: AdminState,
        at: i64,
    ) -> Result<u64, StoreError> {
        dispatch!(self, s => s.set_covenant_admin_state(id, from, to, at).await)
    }

    /// A counter that every change to the covenant tables increments (by trigger, whoever
    /// writes). When it differs from the one a snapshot was built at, the snapshot may be stale.
    pub async fn covenant_generation(&self) -> Result<i64, StoreError> {
        dispatch!(self, s => s.covenant_generation().await)
    }
}
