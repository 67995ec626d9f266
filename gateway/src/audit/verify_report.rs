//! What a verification of the audit chain reports: the head it found, the first problem (what
//! kind, at which record) and how far checkpoints protect the log; and how to ask for one. Plain
//! data that serialises as the API and CLI show it; no verification logic here.

use std::fmt;
use std::str::FromStr;

use policy::Sha256Hash;
use serde::{Deserialize, Serialize};

/// A chain head: the record at `seq` has hash `hash`. Written `SEQ:sha256:HEX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: i64,
    pub hash: Sha256Hash,
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

/// Why a `SEQ:HASH` head cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected SEQ:sha256:<64 hex> (e.g. 1200:sha256:ab12…)")]
pub struct HeadParseError;

impl FromStr for Head {
    type Err = HeadParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (seq, hash) = s.trim().split_once(':').ok_or(HeadParseError)?;
        let seq: i64 = seq.parse().map_err(|_| HeadParseError)?;
        let hash = Sha256Hash::parse(hash).ok_or(HeadParseError)?;
        if seq < 1 {
            return Err(HeadParseError);
        }
        Ok(Head { seq, hash })
    }
}

/// How to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Accept a log whose first record is not seq 1: older records were removed by retention, or
    /// the input is a slice of the chain (an export of a range). The start is then anchored only
    /// if a checkpoint names the record before it; the report says which.
    pub allow_pruned_prefix: bool,
    /// A head kept outside the log (an earlier `verify` report, the running gateway): the log must
    /// contain it. Detects truncation after the latest checkpoint.
    pub expect_head: Option<Head>,
    /// Hashing threads (0: all available cores).
    pub threads: usize,
}

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// The record's content does not match its hash, or it no longer links to the chain (it was
    /// replaced, or rewritten with a recomputed hash), or the stored row disagrees with it.
    Modified,
    /// One or more records are missing between two present ones.
    Deleted,
    /// A record that does not belong to the chain (a forgery or a copy) was added.
    Inserted,
    /// Records are present but out of order.
    Reordered,
    /// The log ends before a record that a checkpoint or the expected head names.
    Truncated,
    /// The record named by a checkpoint (or the expected head) has a different hash: the log was
    /// rewritten with recomputed hashes somewhere in `range`.
    Rewritten,
    /// A checkpoint's signature does not verify, or it names an unknown key.
    BadCheckpoint,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Modified => "modified",
            ProblemKind::Deleted => "deleted",
            ProblemKind::Inserted => "inserted",
            ProblemKind::Reordered => "reordered",
            ProblemKind::Truncated => "truncated",
            ProblemKind::Rewritten => "rewritten",
            ProblemKind::BadCheckpoint => "bad-checkpoint",
        }
    }
}

/// An inclusive range of sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqRange {
    pub from: i64,
    pub to: i64,
}

/// The first problem found, naming the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// The position in the chain where it goes wrong: the sequence number the bad record should
    /// have (for `deleted` and `truncated`: the first missing one; for `bad-checkpoint` and
    /// `rewritten`: the checkpoint's).
    pub seq: i64,
    /// The id of the record named: the bad record itself, or for `deleted` the first record
    /// after the gap. `None` when there is no record to name (truncated, bad checkpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The sequence number the named record claims, when it differs from `seq`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found_seq: Option<i64>,
    /// Missing records (deleted, truncated) or where a rewrite began (rewritten).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<SeqRange>,
    /// One sentence for people.
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at seq {}", self.kind.as_str(), self.seq)?;
        if let Some(id) = &self.id {
            write!(f, " (record {id})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// How the verified range starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartAnchor {
    /// At seq 1, linked to the genesis hash.
    Genesis,
    /// After removed records, linked to a signed checkpoint on the record before.
    Checkpoint,
    /// After removed records, with no checkpoint on the record before: records before the first
    /// one cannot be checked.
    Unanchored,
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Whether the log verified: no problem found.
    pub ok: bool,
    /// Records read (up to and a little past the problem, when there is one).
    pub records: u64,
    pub first_seq: Option<i64>,
    /// The last record of an intact log, and its hash (keep it to detect later truncation).
    pub last_seq: Option<i64>,
    pub head: Option<Sha256Hash>,
    pub start: Option<StartAnchor>,
    /// Checkpoints given, and how many matched a record with a valid signature.
    pub checkpoints: u64,
    pub checkpoints_matched: u64,
    /// The latest checkpoint that matched.
    pub last_checkpoint_seq: Option<i64>,
    /// Whether the expected head (if given) was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_head_found: Option<bool>,
    /// Records after the latest matching checkpoint (or expected head): their removal from the end
    /// of the log would not be detectable.
    pub unprotected_tail: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
}
