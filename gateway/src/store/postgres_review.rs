//! PostgreSQL queries behind audit review and export: a filtered page of the audit log in `seq`
//! order. Every value is bound, never spliced into the SQL text.

use sqlx::{Postgres, QueryBuilder, Row};

use super::postgres::PgStore;
use super::review::AuditSelect;
use super::StoreError;
use crate::audit::record::AuditRecord;

/// The SQL for `select`, ending in `ORDER BY seq LIMIT $n`.
fn build(select: &AuditSelect, limit: i64) -> QueryBuilder<Postgres> {
    let mut q = QueryBuilder::new("SELECT record FROM audit_log WHERE seq > ");
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

impl PgStore {
    pub async fn audit_select(
        &self,
        select: &AuditSelect,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut q = build(select, limit);
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let text: String = r.try_get("record")?;
                serde_json::from_str(&text)
                    .map_err(|e| StoreError::Corrupt(format!("audit record: {e}")))
            })
            .collect()
    }
}
