//! Decoding of stored columns into the row types, shared by both backends and by sqlx and rusqlite
//! rows alike (the columns mean the same everywhere; only the SQL around them differs). A column
//! that does not parse is reported as corrupt, never guessed.

use policy::{CovenantId, Sha256Hash};
use sqlx::Row;

use super::error::StoreError;
use super::rows::{
    parse_admin, AuditRow, CheckpointRow, ConsentRow, CovenantSignatureRow, CovenantVersionRow,
    HandoverRow,
};
use crate::audit::record::AuditRecord;
use crate::crypto::Sealed;

/// The column reads the decoders need, for either backend's row type.
pub(super) trait Columns {
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, column: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
    fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error>;
}

macro_rules! columns_for {
    ($row:ty) => {
        impl Columns for $row {
            fn text(&self, column: &str) -> Result<String, sqlx::Error> {
                self.try_get(column)
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(column)
            }
            fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
                self.try_get(column)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(column)
            }
            fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error> {
                self.try_get(column)
            }
        }
    };
}

columns_for!(sqlx::sqlite::SqliteRow);
columns_for!(sqlx::postgres::PgRow);

impl Columns for rusqlite::Row<'_> {
    fn text(&self, column: &str) -> Result<String, sqlx::Error> {
        self.get(column).map_err(direct_error)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        self.get(column).map_err(direct_error)
    }
    fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
        self.get(column).map_err(direct_error)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        self.get(column).map_err(direct_error)
    }
    fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error> {
        self.get(column).map_err(direct_error)
    }
}

/// A column that rusqlite cannot decode, reported like sqlx's own decode errors.
fn direct_error(e: rusqlite::Error) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

pub(super) fn consent(r: &impl Columns) -> Result<ConsentRow, StoreError> {
    Ok(ConsentRow {
        jti: r.text("jti")?,
        issuer_oin: r.text("issuer_oin")?,
        subject_pseudonym: r.text("subject_pseudonym")?,
        purpose: r.text("purpose")?,
        covenant_id: r.text("covenant_id")?,
        not_before: r.int("not_before")?,
        expires_at: r.int("expires_at")?,
        registered_at: r.int("registered_at")?,
        revoked_at: r.opt_int("revoked_at")?,
        sealed: Sealed {
            wrapped_key: r.bytes("wrapped_key")?,
            ciphertext: r.bytes("sealed_claims")?,
        },
    })
}

pub(super) fn handover(r: &impl Columns) -> Result<HandoverRow, StoreError> {
    Ok(HandoverRow {
        purpose: r.text("purpose")?,
        subject_pseudonym: r.text("subject_pseudonym")?,
        source_oin: r.text("source_oin")?,
        covenant_id: r.text("covenant_id")?,
        consent_jti: r.opt_text("consent_jti")?,
        stored_at: r.int("stored_at")?,
        expires_at: r.int("expires_at")?,
        sealed: Sealed {
            wrapped_key: r.bytes("wrapped_key")?,
            ciphertext: r.bytes("ciphertext")?,
        },
    })
}

pub(super) fn audit(r: &impl Columns) -> Result<AuditRecord, StoreError> {
    let text = r.text("record")?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("audit record: {e}")))
}

/// An audit row with every column, for verification.
pub(super) fn audit_row(r: &impl Columns) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        seq: r.int("seq")?,
        id: r.text("id")?,
        time: r.text("time")?,
        kind: r.text("kind")?,
        requester_oin: r.opt_text("requester_oin")?,
        source_oin: r.opt_text("source_oin")?,
        subject_pseudonym: r.opt_text("subject_pseudonym")?,
        purpose: r.opt_text("purpose")?,
        decision: r.opt_text("decision")?,
        reason: r.opt_text("reason")?,
        actor_sub: r.opt_text("actor_sub")?,
        record: r.text("record")?,
        prev_hash: r.text("prev_hash")?,
        hash: r.text("hash")?,
    })
}

/// The `seq` and `hash` columns of the last audit record: the chain head.
pub(super) fn head(r: &impl Columns) -> Result<(i64, Sha256Hash), StoreError> {
    let seq = r.int("seq")?;
    Ok((seq, head_hash(seq, &r.text("hash")?)?))
}

/// The stored hash of audit record `seq`, parsed (a corrupt one is reported, never guessed).
pub(super) fn head_hash(seq: i64, hash: &str) -> Result<Sha256Hash, StoreError> {
    Sha256Hash::parse(hash)
        .ok_or_else(|| StoreError::Corrupt(format!("audit record {seq}: bad hash")))
}

pub(super) fn checkpoint(r: &impl Columns) -> Result<CheckpointRow, StoreError> {
    Ok(CheckpointRow {
        seq: r.int("seq")?,
        head: r.text("head")?,
        time: r.text("time")?,
        key_id: r.text("key_id")?,
        signature: r.text("signature")?,
    })
}

/// The covenant id and version columns, checked.
fn covenant_key(r: &impl Columns) -> Result<(CovenantId, u32), StoreError> {
    let id = r.text("covenant_id")?;
    let covenant_id: CovenantId = id
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("covenant id `{id}`")))?;
    let version = r.int("version")?;
    let version = u32::try_from(version)
        .map_err(|_| StoreError::Corrupt(format!("covenant {id} version {version}")))?;
    Ok((covenant_id, version))
}

pub(super) fn covenant_version(r: &impl Columns) -> Result<CovenantVersionRow, StoreError> {
    let (covenant_id, version) = covenant_key(r)?;
    let hash = Sha256Hash::parse(&r.text("hash")?).ok_or_else(|| {
        StoreError::Corrupt(format!("covenant {covenant_id}@{version}: bad hash"))
    })?;
    Ok(CovenantVersionRow {
        covenant_id,
        version,
        document: r.text("document")?,
        hash,
        admin: parse_admin(&r.text("admin_state")?)?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

pub(super) fn covenant_signature(r: &impl Columns) -> Result<CovenantSignatureRow, StoreError> {
    let (covenant_id, version) = covenant_key(r)?;
    let party = r
        .text("party_oin")?
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("covenant {covenant_id}@{version}: party OIN")))?;
    Ok(CovenantSignatureRow {
        covenant_id,
        version,
        party,
        jws: r.text("jws")?,
        signed_at: r.int("signed_at")?,
    })
}
