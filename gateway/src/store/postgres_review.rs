//! PostgreSQL queries behind audit review and export: a filtered page of the audit log in `seq`
//! order. Every value is bound, never spliced into the SQL text.

use sqlx::Row;

use super::error::StoreError;
use super::postgres::PgStore;
use super::review::AuditSelect;
use crate::audit::record::AuditRecord;

impl PgStore {
    pub async fn audit_select(
        &self,
        select: &AuditSelect,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut q = super::review::build_select::<sqlx::Postgres>(select, limit);
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
