//! Consents and the encrypted handover records held under them: the facade and its SQL, written
//! once for both backends (revoking a consent destroys its records in the same transaction).
//! Pseudonyms and ciphertext only; whether a consent admits anything is decided elsewhere.

use sqlx::{Encode, Executor, Type};

use super::decode;
use super::rows::{ConsentRow, HandoverRow};
use super::sql::{duplicate_or, RowsAffected, Sql, SqlDatabase};
use super::{Store, StoreError};

impl Store {
    /// Store a registered consent; `Duplicate` when its `jti` is already stored.
    pub async fn insert_consent(&self, row: &ConsentRow) -> Result<(), StoreError> {
        dispatch!(self, s => Sql(&s.pool).insert_consent(row).await)
    }

    pub async fn consent(&self, jti: &str) -> Result<Option<ConsentRow>, StoreError> {
        dispatch!(self, s => Sql(&s.pool).consent(jti).await)
    }

    /// Every consent registered for one subject, in `jti` order. On the disclosure path: SQLite
    /// reads it directly on the calling thread (`sqlite_direct`).
    pub async fn consents_for_subject(
        &self,
        subject_pseudonym: &str,
    ) -> Result<Vec<ConsentRow>, StoreError> {
        match self {
            Store::Sqlite(s) => s.reads.consents_for_subject(subject_pseudonym),
            Store::Postgres(s) => Sql(&s.pool).consents_for_subject(subject_pseudonym).await,
        }
    }

    /// Mark a consent revoked (once) and destroy the handover records held under it, in one
    /// transaction. Returns `None` when it was already revoked, else the number destroyed.
    pub async fn revoke_consent(&self, jti: &str, at: i64) -> Result<Option<u64>, StoreError> {
        dispatch!(self, s => Sql(&s.pool).revoke_consent(jti, at).await)
    }

    /// Insert or replace the record of (purpose, subject, source).
    pub async fn put_handover(&self, row: &HandoverRow) -> Result<(), StoreError> {
        dispatch!(self, s => Sql(&s.pool).put_handover(row).await)
    }

    /// The handover record of (purpose, subject, source), if one is stored. On the disclosure
    /// path: SQLite reads it directly on the calling thread (`sqlite_direct`).
    pub async fn handover(
        &self,
        purpose: &str,
        subject_pseudonym: &str,
        source_oin: &str,
    ) -> Result<Option<HandoverRow>, StoreError> {
        match self {
            Store::Sqlite(s) => s.reads.handover(purpose, subject_pseudonym, source_oin),
            Store::Postgres(s) => {
                Sql(&s.pool)
                    .handover(purpose, subject_pseudonym, source_oin)
                    .await
            }
        }
    }

    /// Destroy handover records whose retention has passed; returns how many.
    pub async fn sweep_handovers(&self, now: i64) -> Result<u64, StoreError> {
        dispatch!(self, s => Sql(&s.pool).sweep_handovers(now).await)
    }
}

impl<DB: SqlDatabase> Sql<'_, DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    String: for<'a> Encode<'a, DB> + Type<DB>,
    Option<String>: for<'a> Encode<'a, DB> + Type<DB>,
    Vec<u8>: for<'a> Encode<'a, DB> + Type<DB>,
    i64: for<'a> Encode<'a, DB> + Type<DB>,
    Option<i64>: for<'a> Encode<'a, DB> + Type<DB>,
{
    async fn insert_consent(&self, c: &ConsentRow) -> Result<(), StoreError> {
        sqlx::query::<DB>(
            "INSERT INTO consents (jti, issuer_oin, subject_pseudonym, purpose, covenant_id, \
             not_before, expires_at, registered_at, revoked_at, wrapped_key, sealed_claims) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&c.jti)
        .bind(&c.issuer_oin)
        .bind(&c.subject_pseudonym)
        .bind(&c.purpose)
        .bind(&c.covenant_id)
        .bind(c.not_before)
        .bind(c.expires_at)
        .bind(c.registered_at)
        .bind(c.revoked_at)
        .bind(&c.sealed.wrapped_key)
        .bind(&c.sealed.ciphertext)
        .execute(self.0)
        .await
        .map_err(duplicate_or)?;
        Ok(())
    }

    async fn consent(&self, jti: &str) -> Result<Option<ConsentRow>, StoreError> {
        let row = sqlx::query::<DB>("SELECT * FROM consents WHERE jti = $1")
            .bind(jti)
            .fetch_optional(self.0)
            .await?;
        row.as_ref().map(decode::consent).transpose()
    }

    /// PostgreSQL's read; SQLite's is the same statement through rusqlite (`sqlite_direct`).
    async fn consents_for_subject(
        &self,
        subject_pseudonym: &str,
    ) -> Result<Vec<ConsentRow>, StoreError> {
        let rows =
            sqlx::query::<DB>("SELECT * FROM consents WHERE subject_pseudonym = $1 ORDER BY jti")
                .bind(subject_pseudonym)
                .fetch_all(self.0)
                .await?;
        rows.iter().map(decode::consent).collect()
    }

    /// The conditional UPDATE takes the row lock, so of two concurrent revocations (through two
    /// instances) exactly one sees `revoked_at IS NULL` and destroys the handover records.
    async fn revoke_consent(&self, jti: &str, at: i64) -> Result<Option<u64>, StoreError> {
        let mut tx = self.0.begin().await?;
        let updated = sqlx::query::<DB>(
            "UPDATE consents SET revoked_at = $1 WHERE jti = $2 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(jti)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        // Destroy the data: the row holds the only copy of the wrapped data key.
        let destroyed = sqlx::query::<DB>("DELETE FROM handovers WHERE consent_jti = $1")
            .bind(jti)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(Some(destroyed))
    }

    async fn put_handover(&self, h: &HandoverRow) -> Result<(), StoreError> {
        sqlx::query::<DB>(
            "INSERT INTO handovers (purpose, subject_pseudonym, source_oin, covenant_id, \
             consent_jti, stored_at, expires_at, wrapped_key, ciphertext) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (purpose, subject_pseudonym, source_oin) DO UPDATE SET \
             covenant_id = excluded.covenant_id, consent_jti = excluded.consent_jti, \
             stored_at = excluded.stored_at, expires_at = excluded.expires_at, \
             wrapped_key = excluded.wrapped_key, ciphertext = excluded.ciphertext",
        )
        .bind(&h.purpose)
        .bind(&h.subject_pseudonym)
        .bind(&h.source_oin)
        .bind(&h.covenant_id)
        .bind(&h.consent_jti)
        .bind(h.stored_at)
        .bind(h.expires_at)
        .bind(&h.sealed.wrapped_key)
        .bind(&h.sealed.ciphertext)
        .execute(self.0)
        .await?;
        Ok(())
    }

    /// PostgreSQL's read; SQLite's is the same statement through rusqlite (`sqlite_direct`).
    async fn handover(
        &self,
        purpose: &str,
        subject_pseudonym: &str,
        source_oin: &str,
    ) -> Result<Option<HandoverRow>, StoreError> {
        let row = sqlx::query::<DB>(
            "SELECT * FROM handovers \
             WHERE purpose = $1 AND subject_pseudonym = $2 AND source_oin = $3",
        )
        .bind(purpose)
        .bind(subject_pseudonym)
        .bind(source_oin)
        .fetch_optional(self.0)
        .await?;
        row.as_ref().map(decode::handover).transpose()
    }

    async fn sweep_handovers(&self, now: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query::<DB>("DELETE FROM handovers WHERE expires_at <= $1")
                .bind(now)
                .execute(self.0)
                .await?
                .rows_affected(),
        )
    }
}
