//! The PostgreSQL backend, for scale-out: several gateway instances on one database. Same
//! interface and semantics as the SQLite backend, its own SQL (`$n` placeholders); migrations at
//! start (sqlx serialises concurrent starts with an advisory lock). SQL only; no decisions here.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::error::StoreError;
use super::rows::{ConsentRow, HandoverRow};

#[derive(Debug, Clone)]
pub struct PgStore {
    pub(super) pool: PgPool,
}

/// Connection options from the URL, naming the application in `pg_stat_activity`.
fn connect_options(url: &str) -> Result<PgConnectOptions, StoreError> {
    Ok(PgConnectOptions::from_str(url)?.application_name("poortwachter"))
}

impl PgStore {
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        // No ping before each acquire (one more round trip per query on the disclosure path):
        // sqlx already pings every connection when it goes back to the pool, and drops it if
        // that fails. A connection that breaks while idle (the server restarted) fails its next
        // query once — that request is refused, never answered without its read or audit
        // record — and is then replaced.
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(connect_options(url)?)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore { pool })
    }

    /// Connect without migrations, every transaction read-only (offline verification must not
    /// change what it verifies).
    pub async fn open_read_only(url: &str) -> Result<Self, StoreError> {
        let options = connect_options(url)?.options([("default_transaction_read_only", "on")]);
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        Ok(PgStore { pool })
    }

    pub async fn insert_consent(&self, c: &ConsentRow) -> Result<(), StoreError> {
        let result = sqlx::query(
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
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Duplicate),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn consent(&self, jti: &str) -> Result<Option<ConsentRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM consents WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(super::decode::consent).transpose()
    }

    pub async fn consents_for_subject(
        &self,
        subject_pseudonym: &str,
    ) -> Result<Vec<ConsentRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM consents WHERE subject_pseudonym = $1 ORDER BY jti")
            .bind(subject_pseudonym)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(super::decode::consent).collect()
    }

    /// The conditional UPDATE takes the row lock, so of two concurrent revocations (through two
    /// instances) exactly one sees `revoked_at IS NULL` and destroys the handover records.
    pub async fn revoke_consent(&self, jti: &str, at: i64) -> Result<Option<u64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
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
        let destroyed = sqlx::query("DELETE FROM handovers WHERE consent_jti = $1")
            .bind(jti)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(Some(destroyed))
    }

    pub async fn put_handover(&self, h: &HandoverRow) -> Result<(), StoreError> {
        sqlx::query(
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn handover(
        &self,
        purpose: &str,
        subject_pseudonym: &str,
        source_oin: &str,
    ) -> Result<Option<HandoverRow>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM handovers \
             WHERE purpose = $1 AND subject_pseudonym = $2 AND source_oin = $3",
        )
        .bind(purpose)
        .bind(subject_pseudonym)
        .bind(source_oin)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(super::decode::handover).transpose()
    }

    pub async fn sweep_handovers(&self, now: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM handovers WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
