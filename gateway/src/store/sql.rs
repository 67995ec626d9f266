//! What the sqlx statements written once for both backends need: [`Sql`], a backend's pool seen
//! generically, and [`SqlDatabase`], what SQLite and PostgreSQL both offer. The statements live
//! beside their facade; this file holds no SQL of its own but `SELECT 1` and the audit writer's
//! probe write (run through sqlx on PostgreSQL and through rusqlite on SQLite).
//!
//! They are written with PostgreSQL's numbered placeholders (`$1`, `$2`, …), which sqlx's SQLite
//! driver binds by number as well (`$NNN` is a numbered parameter in SQLite). Every value is
//! bound, never spliced into the SQL text.

use sqlx::postgres::PgQueryResult;
use sqlx::sqlite::SqliteQueryResult;
use sqlx::{Database, Executor, IntoArguments, Pool};

use super::decode::Columns;
use super::error::StoreError;

/// A backend's sqlx pool, for the statements both backends run as written. Each area of the store
/// adds its statements in an `impl` block of its own, bounded by what those statements bind.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sql<'p, DB: Database>(pub(super) &'p Pool<DB>);

/// A database the shared statements can run on: rows read through [`Columns`] (the same decoders
/// as every other read), a count of changed rows, arguments it can take. Both backends are one.
pub(super) trait SqlDatabase:
    Database<Row: Columns, QueryResult: RowsAffected, Arguments: IntoArguments<Self>>
{
}

impl<DB> SqlDatabase for DB where
    DB: Database<Row: Columns, QueryResult: RowsAffected, Arguments: IntoArguments<DB>>
{
}

/// How many rows a statement inserted, changed or deleted (sqlx has this per driver only).
pub(super) trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        SqliteQueryResult::rows_affected(self)
    }
}

impl RowsAffected for PgQueryResult {
    fn rows_affected(&self) -> u64 {
        PgQueryResult::rows_affected(self)
    }
}

/// The write of [`Store::probe_write`](super::Store::probe_write) (`$1`: the time), the same on both backends.
/// `$2` is [`PROBE_PADDING`] zero bytes.
pub(super) const PROBE_WRITE: &str =
    "INSERT INTO audit_writer_probe (singleton, probed_at, padding) VALUES (1, $1, $2) \
     ON CONFLICT (singleton) DO UPDATE SET probed_at = excluded.probed_at, \
     padding = excluded.padding";

/// How many bytes the probe writes besides its time: about what a commit of a few dozen audit
/// records writes, so that on a nearly full disk a probe that fits means commits fit too.
pub(super) const PROBE_PADDING: usize = 64 * 1024;

/// The store's error for a failed statement: `Duplicate` for a unique-key violation.
pub(super) fn duplicate_or(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Duplicate,
        e => e.into(),
    }
}

impl<DB: SqlDatabase> Sql<'_, DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    /// Whether the database answers.
    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query::<DB>("SELECT 1").execute(self.0).await?;
        Ok(())
    }
}
