//! The store's one error type, shared by the facade and both backends. It names what failed
//! (a duplicate key, the database, corrupt stored data), never a stored value.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a record with this key already exists")]
    Duplicate,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the direct SQLite reads (`sqlite_direct`).
    #[error("database error: {0}")]
    Direct(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported database url (use sqlite://… or postgres://…)")]
    UnsupportedUrl,
    #[error("an in-memory SQLite database cannot hold the gateway's data: name a file (sqlite://path/to/poortwachter.db)")]
    InMemory,
    /// The TLS settings towards PostgreSQL cannot be used (names the configuration key).
    #[error("database TLS: {0}")]
    Tls(String),
    #[error("the database was opened read-only")]
    ReadOnly,
    #[error("cannot start the audit writer thread: {0}")]
    Thread(String),
}
