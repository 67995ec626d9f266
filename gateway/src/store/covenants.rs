//! Storage of covenant versions and party signatures (migrations 0004, 0005): the facade and its
//! SQL, written once for both backends. Stores documents and signatures as given; it never
//! decides whether a signature counts (that is done elsewhere, by verifying it).

use policy::{AdminState, CovenantId};
use sqlx::{Encode, Executor, Type};

use super::decode::{self, Columns};
use super::rows::admin_text;
pub use super::rows::{CovenantSignatureRow, CovenantVersionRow};
use super::sql::{duplicate_or, RowsAffected, Sql, SqlDatabase};
use super::{Store, StoreError};

impl Store {
    /// Every stored version (of one covenant when `id` is given), ordered by id and version.
    pub async fn covenant_versions(
        &self,
        id: Option<&CovenantId>,
    ) -> Result<Vec<CovenantVersionRow>, StoreError> {
        dispatch!(self, s => Sql(&s.pool).covenant_versions(id).await)
    }

    /// Every stored signature (of one covenant when `id` is given).
    pub async fn covenant_signatures(
        &self,
        id: Option<&CovenantId>,
    ) -> Result<Vec<CovenantSignatureRow>, StoreError> {
        dispatch!(self, s => Sql(&s.pool).covenant_signatures(id).await)
    }

    /// Store a new version with the signatures it already carries, in one transaction.
    /// `Duplicate` when this id and version exist.
    pub async fn insert_covenant_version(
        &self,
        row: &CovenantVersionRow,
        signatures: &[CovenantSignatureRow],
    ) -> Result<(), StoreError> {
        dispatch!(self, s => Sql(&s.pool).insert_covenant_version(row, signatures).await)
    }

    /// Store a party's signature, replacing an earlier one by the same party over the same
    /// version. Returns whether one was replaced.
    pub async fn put_covenant_signature(
        &self,
        row: &CovenantSignatureRow,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => Sql(&s.pool).put_covenant_signature(row).await)
    }

    /// Store a party's signature unless that party already has one over that version. Returns
    /// whether it was stored.
    pub async fn add_covenant_signature_if_absent(
        &self,
        row: &CovenantSignatureRow,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => Sql(&s.pool).add_covenant_signature_if_absent(row).await)
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
        dispatch!(self, s => Sql(&s.pool).set_covenant_admin_state(id, from, to, at).await)
    }

    /// A counter that every change to the covenant tables increments (by trigger, whoever
    /// writes). When it differs from the one a snapshot was built at, the snapshot may be stale.
    pub async fn covenant_generation(&self) -> Result<i64, StoreError> {
        dispatch!(self, s => Sql(&s.pool).covenant_generation().await)
    }
}

impl<DB: SqlDatabase> Sql<'_, DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    String: for<'a> Encode<'a, DB> + Type<DB>,
    i64: for<'a> Encode<'a, DB> + Type<DB>,
{
    pub(super) async fn covenant_versions(
        &self,
        id: Option<&CovenantId>,
    ) -> Result<Vec<CovenantVersionRow>, StoreError> {
        let rows = match id {
            Some(id) => {
                sqlx::query::<DB>(
                    "SELECT * FROM covenant_versions WHERE covenant_id = $1 ORDER BY version",
                )
                .bind(id.as_str())
                .fetch_all(self.0)
                .await?
            }
            None => {
                sqlx::query::<DB>("SELECT * FROM covenant_versions ORDER BY covenant_id, version")
                    .fetch_all(self.0)
                    .await?
            }
        };
        rows.iter().map(decode::covenant_version).collect()
    }

    pub(super) async fn covenant_signatures(
        &self,
        id: Option<&CovenantId>,
    ) -> Result<Vec<CovenantSignatureRow>, StoreError> {
        let rows =
            match id {
                Some(id) => {
                    sqlx::query::<DB>(
                        "SELECT * FROM covenant_signatures WHERE covenant_id = $1 \
                     ORDER BY version, party_oin",
                    )
                    .bind(id.as_str())
                    .fetch_all(self.0)
                    .await?
                }
                None => sqlx::query::<DB>(
                    "SELECT * FROM covenant_signatures ORDER BY covenant_id, version, party_oin",
                )
                .fetch_all(self.0)
                .await?,
            };
        rows.iter().map(decode::covenant_signature).collect()
    }

    pub(super) async fn insert_covenant_version(
        &self,
        row: &CovenantVersionRow,
        signatures: &[CovenantSignatureRow],
    ) -> Result<(), StoreError> {
        let mut tx = self.0.begin().await?;
        sqlx::query::<DB>(
            "INSERT INTO covenant_versions (covenant_id, version, document, hash, admin_state, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(row.covenant_id.as_str())
        .bind(i64::from(row.version))
        .bind(&row.document)
        .bind(row.hash.to_string())
        .bind(admin_text(row.admin))
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(duplicate_or)?;
        for s in signatures {
            sqlx::query::<DB>(
                "INSERT INTO covenant_signatures (covenant_id, version, party_oin, jws, \
                 signed_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(s.covenant_id.as_str())
            .bind(i64::from(s.version))
            .bind(s.party.as_str())
            .bind(&s.jws)
            .bind(s.signed_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn put_covenant_signature(
        &self,
        row: &CovenantSignatureRow,
    ) -> Result<bool, StoreError> {
        let mut tx = self.0.begin().await?;
        let existed = sqlx::query::<DB>(
            "SELECT 1 AS one FROM covenant_signatures \
             WHERE covenant_id = $1 AND version = $2 AND party_oin = $3",
        )
        .bind(row.covenant_id.as_str())
        .bind(i64::from(row.version))
        .bind(row.party.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        sqlx::query::<DB>(
            "INSERT INTO covenant_signatures (covenant_id, version, party_oin, jws, signed_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (covenant_id, version, party_oin) DO UPDATE SET \
             jws = excluded.jws, signed_at = excluded.signed_at",
        )
        .bind(row.covenant_id.as_str())
        .bind(i64::from(row.version))
        .bind(row.party.as_str())
        .bind(&row.jws)
        .bind(row.signed_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(existed)
    }

    pub(super) async fn add_covenant_signature_if_absent(
        &self,
        row: &CovenantSignatureRow,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query::<DB>(
            "INSERT INTO covenant_signatures (covenant_id, version, party_oin, jws, signed_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (covenant_id, version, party_oin) DO NOTHING",
        )
        .bind(row.covenant_id.as_str())
        .bind(i64::from(row.version))
        .bind(row.party.as_str())
        .bind(&row.jws)
        .bind(row.signed_at)
        .execute(self.0)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn set_covenant_admin_state(
        &self,
        id: &CovenantId,
        from: &[AdminState],
        to: AdminState,
        at: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.0.begin().await?;
        let mut changed = 0;
        for state in from {
            changed += sqlx::query::<DB>(
                "UPDATE covenant_versions SET admin_state = $1, updated_at = $2 \
                 WHERE covenant_id = $3 AND admin_state = $4",
            )
            .bind(admin_text(to))
            .bind(at)
            .bind(id.as_str())
            .bind(admin_text(*state))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// The table holds one row (its key admits only one), bumped by triggers.
    pub(super) async fn covenant_generation(&self) -> Result<i64, StoreError> {
        let row = sqlx::query::<DB>("SELECT generation FROM covenant_generation")
            .fetch_one(self.0)
            .await?;
        Ok(row.int("generation")?)
    }
}
