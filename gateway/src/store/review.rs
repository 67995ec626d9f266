//! Reading the audit log for review, reports and exports: one selection, turned into SQL once for
//! both backends, always in `seq` order so that a cursor stays stable while records are appended.
//! Pseudonyms and OINs only, never a BSN; every value is bound, never spliced.

use sqlx::{Encode, Executor, Type};

use super::decode;
use super::sql::{Sql, SqlDatabase};
use super::{Store, StoreError};
use crate::audit::record::AuditRecord;

/// Which audit records to read. Every member narrows the selection; `None` means "any".
/// Values are already validated and in their stored form (OIN digits, kebab-case names,
/// RFC 3339 UTC times with microseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditSelect {
    /// Only records in which this organisation is requester or source (an officer's scope).
    pub party: Option<String>,
    /// Only records in which this organisation is requester or source (the counterpart filter).
    pub counterpart: Option<String>,
    pub kind: Option<String>,
    pub purpose: Option<String>,
    pub decision: Option<String>,
    pub reason: Option<String>,
    pub subject_pseudonym: Option<String>,
    /// Issue 16: only records of this employee (the verified actor's `sub`).
    pub actor_sub: Option<String>,
    /// Inclusive lower bound on the record time.
    pub time_from: Option<String>,
    /// Exclusive upper bound on the record time.
    pub time_to: Option<String>,
    /// Only records with a sequence number greater than this (the cursor).
    pub after: i64,
    /// Only records with a sequence number at most this (a snapshot, for exports).
    pub through: Option<i64>,
}

impl Store {
    /// At most `limit` records matching `select`, in ascending `seq` order.
    pub async fn audit_select(
        &self,
        select: &AuditSelect,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        dispatch!(self, s => Sql(&s.pool).audit_select(select, limit).await)
    }
}

/// The SQL for `select`, ending in `ORDER BY seq LIMIT <n>`, for either backend (the builder
/// writes each backend's placeholders). Every value is bound, never spliced into the SQL text.
fn build_select<DB>(select: &AuditSelect, limit: i64) -> sqlx::QueryBuilder<DB>
where
    DB: sqlx::Database,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut q = sqlx::QueryBuilder::new("SELECT record FROM audit_log WHERE seq > ");
    q.push_bind(select.after);
    if let Some(through) = select.through {
        q.push(" AND seq <= ").push_bind(through);
    }
    for org in [&select.party, &select.counterpart].into_iter().flatten() {
        q.push(" AND (requester_oin = ")
            .push_bind(org.clone())
            .push(" OR source_oin = ")
            .push_bind(org.clone())
            .push(")");
    }
    let equal = [
        ("kind", &select.kind),
        ("purpose", &select.purpose),
        ("decision", &select.decision),
        ("reason", &select.reason),
        ("subject_pseudonym", &select.subject_pseudonym),
        ("actor_sub", &select.actor_sub),
    ];
    for (column, value) in equal {
        if let Some(v) = value {
            q.push(" AND ")
                .push(column)
                .push(" = ")
                .push_bind(v.clone());
        }
    }
    if let Some(from) = &select.time_from {
        q.push(" AND time >= ").push_bind(from.clone());
    }
    if let Some(to) = &select.time_to {
        q.push(" AND time < ").push_bind(to.clone());
    }
    q.push(" ORDER BY seq LIMIT ").push_bind(limit);
    q
}

impl<DB: SqlDatabase> Sql<'_, DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    i64: for<'q> Encode<'q, DB> + Type<DB>,
    String: for<'q> Encode<'q, DB> + Type<DB>,
{
    pub(super) async fn audit_select(
        &self,
        select: &AuditSelect,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut q = build_select::<DB>(select, limit);
        let rows = q.build().fetch_all(self.0).await?;
        rows.iter().map(decode::audit).collect()
    }
}
