//! SQLite queries for covenant versions and signatures (migration 0004). SQL only; whether a
//! signature counts is decided elsewhere, by verifying it.

use policy::{AdminState, CovenantId};

use super::error::StoreError;
use super::rows::{admin_text, CovenantSignatureRow, CovenantVersionRow};
use super::sqlite::SqliteStore;

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl SqliteStore {
    pub async fn covenant_versions(
        &self,
        id: Option<&CovenantId>,
    ) -> Result<Vec<CovenantVersionRow>, StoreError> {
        let rows = match id {
            Some(id) => {
                sqlx::query(
                    "SELECT * FROM covenant_versions WHERE covenant_id = ? ORDER BY version",
                )
                .bind(id.as_str())
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query("SELECT * FROM covenant_versions ORDER BY covenant_id, version")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(super::decode::covenant_version).collect()
    }

    pub async fn covenant_signatures(
        &self,
        id: Option<&CovenantId>,
    ) -> Result<Vec<CovenantSignatureRow>, StoreError> {
        let rows =
            match id {
                Some(id) => {
                    sqlx::query(
                        "SELECT * FROM covenant_signatures WHERE covenant_id = ? \
                     ORDER BY version, party_oin",
                    )
                    .bind(id.as_str())
                    .fetch_all(&self.pool)
                    .await?
                }
                None => sqlx::query(
                    "SELECT * FROM covenant_signatures ORDER BY covenant_id, version, party_oin",
                )
                .fetch_all(&self.pool)
                .await?,
            };
        rows.iter().map(super::decode::covenant_signature).collect()
    }

    pub async fn insert_covenant_version(
        &self,
        row: &CovenantVersionRow,
        signatures: &[CovenantSignatureRow],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO covenant_versions (covenant_id, version, document, hash, admin_state, \
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(row.covenant_id.as_str())
        .bind(i64::from(row.version))
        .bind(&row.document)
        .bind(row.hash.to_string())
        .bind(admin_text(row.admin))
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(StoreError::Duplicate),
            Err(e) => return Err(e.into()),
        }
        for s in signatures {
            sqlx::query(
                "INSERT INTO covenant_signatures (covenant_id, version, party_oin, jws, \
                 signed_at) VALUES (?, ?, ?, ?, ?)",
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

    pub async fn put_covenant_signature(
        &self,
        row: &CovenantSignatureRow,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let existed = sqlx::query(
            "SELECT 1 AS one FROM covenant_signatures \
             WHERE covenant_id = ? AND version = ? AND party_oin = ?",
        )
        .bind(row.covenant_id.as_str())
        .bind(i64::from(row.version))
        .bind(row.party.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        sqlx::query(
            "INSERT INTO covenant_signatures (covenant_id, version, party_oin, jws, signed_at) \
             VALUES (?, ?, ?, ?, ?) \
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

    pub async fn add_covenant_signature_if_absent(
        &self,
        row: &CovenantSignatureRow,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO covenant_signatures (covenant_id, version, party_oin, jws, signed_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (covenant_id, version, party_oin) DO NOTHING",
        )
        .bind(row.covenant_id.as_str())
        .bind(i64::from(row.version))
        .bind(row.party.as_str())
        .bind(&row.jws)
        .bind(row.signed_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn set_covenant_admin_state(
        &self,
        id: &CovenantId,
        from: &[AdminState],
        to: AdminState,
        at: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut changed = 0;
        for state in from {
            changed += sqlx::query(
                "UPDATE covenant_versions SET admin_state = ?, updated_at = ? \
                 WHERE covenant_id = ? AND admin_state = ?",
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
}

impl SqliteStore {
    pub async fn covenant_generation(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT generation FROM covenant_generation WHERE singleton = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
