//! Storage behind one facade (`Store`): consents, handover records, covenants and the audit log,
//! on SQLite (embedded default) or PostgreSQL (scale-out). Callers never see SQL or a backend;
//! rows hold pseudonyms and ciphertext only, never a BSN or a field value.

/// Call the same method on whichever backend is in use:
/// `dispatch!(self, s => s.method(…).await)`.
macro_rules! dispatch {
    ($store:expr, $s:ident => $call:expr) => {
        match $store {
            Store::Sqlite($s) => $call,
            Store::Postgres($s) => $call,
        }
    };
}

mod audit_log;
mod chain;
mod consents;
pub mod covenants;
mod decode;
mod error;
mod logboek_cursor;
pub mod postgres;
mod postgres_chain;
pub mod review;
pub mod rows;
mod sql;
pub mod sqlite;
mod sqlite_direct;
#[cfg(test)]
mod tests;

use crate::config::DatabaseSection;
pub use chain::{ChainAppend, CheckpointSign};
pub use error::StoreError;
pub use review::AuditSelect;
pub use rows::{
    AuditRow, CheckpointRow, ConsentRow, CovenantSignatureRow, CovenantVersionRow, HandoverRow,
};

/// Which backend a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub(crate) fn of(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }
}

/// The storage backend in use.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

impl Store {
    /// Connect and run migrations: `sqlite:…`, or `postgres://…` / `postgresql://…` over the TLS
    /// the section demands.
    pub async fn open(database: &DatabaseSection) -> Result<Store, StoreError> {
        match Backend::of(&database.url)? {
            Backend::Sqlite => Ok(Store::Sqlite(
                sqlite::SqliteStore::open(&database.url, database.max_connections).await?,
            )),
            Backend::Postgres => Ok(Store::Postgres(postgres::PgStore::open(database).await?)),
        }
    }

    /// Open an existing database read-only, without migrations (SQLite: the file opened
    /// read-only; PostgreSQL: every transaction read-only).
    pub async fn open_read_only(database: &DatabaseSection) -> Result<Store, StoreError> {
        match Backend::of(&database.url)? {
            Backend::Sqlite => Ok(Store::Sqlite(
                sqlite::SqliteStore::open_read_only(&database.url).await?,
            )),
            Backend::Postgres => Ok(Store::Postgres(
                postgres::PgStore::open_read_only(database).await?,
            )),
        }
    }

    /// Whether `append_chained` and `checkpoint_head` block the calling thread until the commit
    /// is durable (SQLite, through `sqlite_direct`) rather than awaiting it (PostgreSQL): the
    /// audit log then runs its writer on a thread of its own.
    pub fn appends_block_the_caller(&self) -> bool {
        matches!(self, Store::Sqlite(_))
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, s => sql::Sql(&s.pool).ping().await)
    }
}
