//! The Logboek Dataverwerkingen export's cursor behind the facade: the last audit sequence number
//! the organisation's receiver acknowledged, read and moved forward in SQL written once for both
//! backends. It stores a number and a time; it never judges what was sent.

use sqlx::{Encode, Executor, Type};

use super::decode::Columns;
use super::sql::{RowsAffected, Sql, SqlDatabase};
use super::{Store, StoreError};

impl Store {
    /// The sequence number of the last audit record the receiver acknowledged (0: none yet).
    pub async fn logboek_cursor(&self) -> Result<i64, StoreError> {
        dispatch!(self, s => Sql(&s.pool).logboek_cursor().await)
    }

    /// Move the cursor from `from` to `to` (acknowledged up to `to`), at `time`. Returns `false`
    /// and changes nothing when the cursor is no longer at `from` (another instance moved it):
    /// the cursor never goes back.
    pub async fn advance_logboek_cursor(
        &self,
        from: i64,
        to: i64,
        time: &str,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => Sql(&s.pool).advance_logboek_cursor(from, to, time).await)
    }
}

impl<DB: SqlDatabase> Sql<'_, DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    i64: for<'a> Encode<'a, DB> + Type<DB>,
{
    async fn logboek_cursor(&self) -> Result<i64, StoreError> {
        let row =
            sqlx::query::<DB>("SELECT last_seq FROM logboek_export_cursor WHERE singleton = 1")
                .fetch_optional(self.0)
                .await?;
        Ok(match row {
            Some(row) => row.int("last_seq")?,
            None => 0,
        })
    }

    async fn advance_logboek_cursor(
        &self,
        from: i64,
        to: i64,
        time: &str,
    ) -> Result<bool, StoreError> {
        let moved = sqlx::query::<DB>(
            "UPDATE logboek_export_cursor SET last_seq = $2, exported_at = $3 \
             WHERE singleton = 1 AND last_seq = $1 AND $2 > $1",
        )
        .bind(from)
        .bind(to)
        .bind(time)
        .execute(self.0)
        .await?
        .rows_affected();
        Ok(moved == 1)
    }
}
