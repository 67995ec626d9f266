//! The PostgreSQL backend, for scale-out: several gateway instances on one database. Opens the
//! pool the shared statements run on (migrations at start; sqlx serialises concurrent starts with
//! an advisory lock); its own SQL is the chain lock in `postgres_chain`. No decisions here.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::error::StoreError;

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
}
