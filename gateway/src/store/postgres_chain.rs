//! PostgreSQL's chain lock and the primitives of the chained audit append (the rule is `chain`'s):
//! several gateway instances extend one chain here, one lock holder after another. Values are
//! bound, never spliced; nothing here decides what to write.

use sqlx::{PgPool, Postgres, Row};

use super::chain::{self, ChainAppend, ChainTx, CheckpointSign, HeadColumns};
use super::error::StoreError;
use super::postgres::PgStore;
use crate::audit::checkpoint::Checkpoint;
use crate::audit::record::{AuditEntry, AuditRecord};

/// A transaction that holds the chain lock until it commits or rolls back, filling in the
/// primitives of the chain rule. `EXCLUSIVE` mode on `audit_log` conflicts with itself and with
/// every INSERT/UPDATE/DELETE on the table (from any instance or tool), but not with plain reads,
/// so review and verification go on while a writer holds it.
struct ChainLock(sqlx::Transaction<'static, Postgres>);

/// Begins a transaction holding the chain lock (appends, checkpoints, pruning). `BEGIN` and
/// `LOCK` go to the server as one simple query (one round trip); if the lock fails, the
/// transaction is rolled back and the error returned.
pub(super) const BEGIN_CHAIN_LOCK: &str = "BEGIN; LOCK TABLE audit_log IN EXCLUSIVE MODE";

impl ChainLock {
    async fn begin(pool: &PgPool) -> Result<ChainLock, StoreError> {
        Ok(ChainLock(pool.begin_with(BEGIN_CHAIN_LOCK).await?))
    }
}

impl ChainTx for ChainLock {
    /// Under READ COMMITTED each statement sees every commit made before it started, so this is
    /// the head the previous lock holder left. One round trip for both: the last record (if any)
    /// and the latest checkpoint's seq.
    async fn head(&mut self) -> Result<HeadColumns, StoreError> {
        let row = sqlx::query(
            "SELECT last.seq, last.hash, (SELECT MAX(seq) FROM audit_checkpoints) AS checkpointed \
             FROM (SELECT 1) AS one LEFT JOIN LATERAL \
             (SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1) AS last ON TRUE",
        )
        .fetch_one(&mut *self.0)
        .await?;
        Ok(HeadColumns {
            seq: row.try_get("seq")?,
            hash: row.try_get("hash")?,
            checkpointed: row.try_get("checkpointed")?,
        })
    }

    async fn insert_records(&mut self, records: &[AuditRecord]) -> Result<(), StoreError> {
        insert_audit(&mut self.0, records).await
    }

    async fn insert_checkpoint(&mut self, cp: &Checkpoint) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, head, time, key_id, signature) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(cp.seq)
        .bind(cp.head.to_string())
        .bind(&cp.time)
        .bind(&cp.key_id)
        .bind(&cp.signature)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn commit(self) -> Result<(), StoreError> {
        Ok(self.0.commit().await?)
    }

    async fn rollback(self) -> Result<(), StoreError> {
        Ok(self.0.rollback().await?)
    }
}

impl PgStore {
    /// Append `entries` as the next records of the one chain: the transaction first takes the
    /// chain lock, then reads the head, so every instance on this database extends the same
    /// chain, one commit after another (the rule: `chain::append`).
    pub async fn append_chained(
        &self,
        entries: &[AuditEntry],
        every_records: i64,
        sign: &CheckpointSign,
    ) -> Result<ChainAppend, StoreError> {
        chain::append(
            ChainLock::begin(&self.pool).await?,
            entries,
            every_records,
            sign,
        )
        .await
    }

    /// Sign the current head when records exist that no checkpoint covers yet (under the chain
    /// lock, so the head cannot move and two instances cannot both sign it).
    pub async fn checkpoint_head(
        &self,
        sign: &CheckpointSign,
    ) -> Result<Option<Checkpoint>, StoreError> {
        chain::checkpoint_head(ChainLock::begin(&self.pool).await?, sign).await
    }

    /// Insert records the caller already chained. Takes the chain lock too, so that it cannot
    /// interleave with another writer's chained append.
    pub async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        chain::insert_chained(ChainLock::begin(&self.pool).await?, records).await
    }
}

/// Insert chained records inside the caller's transaction, in one statement (one round trip
/// while the chain lock is held, however large the group commit).
async fn insert_audit(
    tx: &mut sqlx::PgConnection,
    records: &[AuditRecord],
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let n = records.len();
    let mut seq = Vec::with_capacity(n);
    let mut id = Vec::with_capacity(n);
    let mut time = Vec::with_capacity(n);
    let mut kind = Vec::with_capacity(n);
    let mut requester = Vec::with_capacity(n);
    let mut source = Vec::with_capacity(n);
    let mut subject = Vec::with_capacity(n);
    let mut purpose = Vec::with_capacity(n);
    let mut decision = Vec::with_capacity(n);
    let mut reason = Vec::with_capacity(n);
    let mut record = Vec::with_capacity(n);
    let mut prev_hash = Vec::with_capacity(n);
    let mut hash = Vec::with_capacity(n);
    let mut actor_sub = Vec::with_capacity(n);
    for r in records {
        let text = serde_json::to_string(r)
            .map_err(|e| StoreError::Corrupt(format!("audit record: {e}")))?;
        seq.push(r.seq);
        id.push(r.entry.id.clone());
        time.push(r.entry.time.clone());
        kind.push(
            r.entry
                .kind
                .map(|k| k.as_str())
                .unwrap_or("unknown")
                .to_owned(),
        );
        requester.push(r.entry.requester_oin.clone());
        source.push(r.entry.source_oin.clone());
        subject.push(r.entry.subject_pseudonym.clone());
        purpose.push(r.entry.purpose.clone());
        decision.push(r.entry.decision.map(|d| d.as_str().to_owned()));
        reason.push(r.entry.reason.clone());
        record.push(text);
        prev_hash.push(r.prev_hash.to_string());
        hash.push(r.hash.to_string());
        actor_sub.push(r.entry.actor.as_ref().and_then(|a| a.sub.clone()));
    }
    sqlx::query(
        "INSERT INTO audit_log (seq, id, time, kind, requester_oin, source_oin, \
         subject_pseudonym, purpose, decision, reason, record, prev_hash, hash, actor_sub) \
         SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], \
         $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::TEXT[], $12::TEXT[], \
         $13::TEXT[], $14::TEXT[])",
    )
    .bind(seq)
    .bind(id)
    .bind(time)
    .bind(kind)
    .bind(requester)
    .bind(source)
    .bind(subject)
    .bind(purpose)
    .bind(decision)
    .bind(reason)
    .bind(record)
    .bind(prev_hash)
    .bind(hash)
    .bind(actor_sub)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
