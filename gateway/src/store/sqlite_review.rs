//! SQLite queries behind audit review and export: a filtered page of the audit log in `seq`
//! order. Every value is bound, never spliced into the SQL text.

use sqlx::{QueryBuilder, Row, Sqlite};

use super::review::AuditSelect;
use super::sqlite::SqliteStore;
use super::StoreError;
use crate::audit::record::AuditRecord;

/// The SQL for `select`, ending in `ORDER BY seq LIMIT ?`.
fn build(select: &AuditSelect, limit: i64) -> QueryBuilder<Sqlite> {
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

impl SqliteStore {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{AuditEntry, AuditKind, Outcome, GENESIS};
    use crate::store::Store;

    fn entry(i: i64, requester: &str, source: Option<&str>, decision: Outcome) -> AuditEntry {
        AuditEntry {
            id: format!("dsc_{i}"),
            kind: Some(AuditKind::Disclosure),
            time: format!("2026-11-{:02}T10:00:00.000000Z", i),
            requester_oin: Some(requester.into()),
            source_oin: source.map(Into::into),
            subject_pseudonym: Some(if i % 2 == 0 { "p-even" } else { "p-odd" }.into()),
            purpose: Some("job-mediation".into()),
            decision: Some(decision),
            reason: (decision == Outcome::Refuse).then(|| "consent-required".into()),
            ..Default::default()
        }
    }

    async fn store_with_records() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let store = Store::open(&url, 1).await.unwrap();
        let mut prev = GENESIS;
        let mut records = Vec::new();
        for i in 1..=20 {
            let (req, src, d) = match i % 4 {
                0 => ("A", Some("U"), Outcome::Permit),
                1 => ("B", None, Outcome::Refuse),
                2 => ("A", Some("U"), Outcome::Refuse),
                _ => ("U", Some("U"), Outcome::Permit),
            };
            let r = AuditRecord::chain(i, entry(i, req, src, d), prev);
            prev = r.hash;
            records.push(r);
        }
        store.append_audit(&records).await.unwrap();
        (dir, store)
    }

    fn seqs(records: &[AuditRecord]) -> Vec<i64> {
        records.iter().map(|r| r.seq).collect()
    }

    #[tokio::test]
    async fn party_scope_matches_requester_or_source_only() {
        let (_dir, store) = store_with_records().await;
        let a = AuditSelect {
            party: Some("A".into()),
            ..Default::default()
        };
        let got = store.audit_select(&a, 100).await.unwrap();
        assert!(got
            .iter()
            .all(|r| r.entry.requester_oin.as_deref() == Some("A")));
        assert_eq!(got.len(), 10);
        let u = AuditSelect {
            party: Some("U".into()),
            counterpart: Some("A".into()),
            ..Default::default()
        };
        let got = store.audit_select(&u, 100).await.unwrap();
        assert_eq!(got.len(), 10, "U is source of all of A's records");
        let b = AuditSelect {
            party: Some("B".into()),
            counterpart: Some("A".into()),
            ..Default::default()
        };
        assert!(store.audit_select(&b, 100).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn filters_combine_and_pages_follow_the_cursor() {
        let (_dir, store) = store_with_records().await;
        let refusals = AuditSelect {
            decision: Some("refuse".into()),
            reason: Some("consent-required".into()),
            time_from: Some("2026-11-05T00:00:00.000000Z".into()),
            time_to: Some("2026-11-14T00:00:00.000000Z".into()),
            ..Default::default()
        };
        let got = store.audit_select(&refusals, 100).await.unwrap();
        assert_eq!(seqs(&got), vec![5, 6, 9, 10, 13]);
        let page = AuditSelect {
            after: 6,
            ..refusals.clone()
        };
        assert_eq!(
            seqs(&store.audit_select(&page, 2).await.unwrap()),
            vec![9, 10]
        );
        let snapshot = AuditSelect {
            through: Some(9),
            ..refusals
        };
        assert_eq!(
            seqs(&store.audit_select(&snapshot, 100).await.unwrap()),
            vec![5, 6, 9]
        );
        let subject = AuditSelect {
            subject_pseudonym: Some("p-even".into()),
            kind: Some("disclosure".into()),
            purpose: Some("job-mediation".into()),
            ..Default::default()
        };
        let got = store.audit_select(&subject, 100).await.unwrap();
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|r| r.seq % 2 == 0 && r.hash_is_valid()));
    }

    #[tokio::test]
    async fn values_are_bound_not_spliced() {
        let (_dir, store) = store_with_records().await;
        let hostile = AuditSelect {
            purpose: Some("x' OR '1'='1".into()),
            ..Default::default()
        };
        assert!(store.audit_select(&hostile, 100).await.unwrap().is_empty());
    }
}
