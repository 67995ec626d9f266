//! Verification of the audit chain and its signed checkpoints: pure (no I/O, no clock), streaming
//! (constant memory) and parallel over chunks. Finds the first place where the log stops being
//! the one the gateway wrote and names it: modified, deleted, inserted, reordered, rewritten or
//! truncated records, and forged checkpoints.
//!
//! # What can and cannot be detected
//! * Any change to a record's content, `seq`, `prev_hash` or `hash`; a missing record between two
//!   present ones; a record added anywhere; records out of order. Each is found at the first record
//!   where the chain breaks; the classification looks ahead in the rest of the input to tell, for
//!   example, a moved record (reordered) from a copied one (inserted).
//! * A log rewritten from some record on with recomputed hashes (an attacker with write access who
//!   knows the format) is consistent in itself; it is caught by the first signed checkpoint (or
//!   `expect_head`) after the change, which no longer matches. Where between the previous matching
//!   checkpoint and that one the rewrite began cannot be told: the report gives the range.
//! * Truncation of the end of the log back to before the latest checkpoint is detected (the
//!   checkpoint names a record that is missing). Truncation of records *after* the latest
//!   checkpoint, together with deleting any later checkpoints, is **not** detectable from the log
//!   alone: it needs a later head kept elsewhere ([`VerifyOptions::expect_head`], or the running
//!   gateway's own head, which `GET /v1/audit/verify` uses). The report states how many records are
//!   not yet covered by a checkpoint (`unprotected_tail`).
//! * Removing checkpoints only weakens protection; it is not itself detectable. Adding or altering
//!   one is (the Ed25519 signature does not verify).

use std::fmt;
use std::str::FromStr;

use policy::Sha256Hash;
use serde::{Deserialize, Serialize};

use super::canonical;
use super::checkpoint::{Checkpoint, CheckpointKeys};
use super::record::{AuditRecord, GENESIS};

/// Records handed to the parallel hashing step at once by the streaming interface.
const CHUNK: usize = 32 * 1024;
/// How far past the first broken record the classification looks (records).
const DIAGNOSIS_WINDOW: u64 = 1_000_000;

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

/// Verify records (in log order) against checkpoints (any order) signed by one of `keys`.
pub fn verify_records(
    records: impl IntoIterator<Item = AuditRecord>,
    checkpoints: &[Checkpoint],
    keys: &CheckpointKeys,
    options: &VerifyOptions,
) -> VerifyReport {
    let mut v = Verifier::new(checkpoints.to_vec(), keys.clone(), options.clone());
    for r in records {
        if !v.wants_more() {
            break;
        }
        v.push(r);
    }
    v.finish()
}

/// [`verify_records`] over a slice, without copying it.
pub fn verify_slice(
    records: &[AuditRecord],
    checkpoints: &[Checkpoint],
    keys: &CheckpointKeys,
    options: &VerifyOptions,
) -> VerifyReport {
    let mut v = Verifier::new(checkpoints.to_vec(), keys.clone(), options.clone());
    v.check_slice(records);
    v.finish()
}

/// The last record accepted into the chain.
#[derive(Debug, Clone)]
struct Link {
    seq: i64,
    hash: Sha256Hash,
    prev_hash: Sha256Hash,
    id: Option<String>,
    /// Its hash is vouched for by a signed checkpoint, the expected head or genesis.
    confirmed: bool,
}

impl Link {
    fn genesis() -> Link {
        Link {
            seq: 0,
            hash: GENESIS,
            prev_hash: GENESIS,
            id: None,
            confirmed: true,
        }
    }

    fn extended_by(&self, r: &AuditRecord, valid: bool) -> bool {
        valid && r.seq == self.seq + 1 && r.prev_hash == self.hash
    }
}

/// The first record that did not extend the chain.
#[derive(Debug, Clone)]
struct Suspect {
    seq: Option<i64>,
    id: Option<String>,
    hash: Option<Sha256Hash>,
    prev_hash: Option<Sha256Hash>,
    valid: bool,
    unreadable: Option<String>,
}

/// What the records after the suspect show.
#[derive(Debug)]
struct Diagnosis {
    p: Link,
    x: Suspect,
    /// The record right after the suspect: (it extends the suspect, it extends `p`).
    next: Option<(bool, bool)>,
    /// The first later record that extends `p`: (records after the suspect, its id).
    continuation: Option<(u64, String)>,
    /// A later valid record has the suspect's hash (the suspect is a copy).
    x_again: bool,
    scanned: u64,
}

/// A record at a checkpoint's seq with another hash; the next record decides whether it is an
/// intruder (the genuine one follows) or the log was rewritten.
#[derive(Debug)]
struct Mismatch {
    at: Link,
    signed_head: Sha256Hash,
    since: i64,
    what: &'static str,
}

#[derive(Debug)]
enum Phase {
    Scan,
    Mismatch(Box<Mismatch>),
    Diagnose(Box<Diagnosis>),
    Done,
}

/// Streaming verifier: push records in log order, then [`Verifier::finish`].
pub struct Verifier {
    keys: CheckpointKeys,
    checkpoints: Vec<Checkpoint>,
    next_cp: usize,
    options: VerifyOptions,
    threads: usize,
    /// `None` before the first record when a pruned prefix is allowed.
    prev: Option<Link>,
    phase: Phase,
    problem: Option<Problem>,
    buffer: Vec<AuditRecord>,
    flaws: Vec<(usize, String)>,
    records: u64,
    first_seq: Option<i64>,
    start: Option<StartAnchor>,
    matched: u64,
    last_cp_seq: Option<i64>,
    anchor_seq: i64,
    expected_found: bool,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("records", &self.records)
            .field("phase", &self.phase)
            .finish()
    }
}

impl Verifier {
    pub fn new(
        mut checkpoints: Vec<Checkpoint>,
        keys: CheckpointKeys,
        options: VerifyOptions,
    ) -> Self {
        checkpoints.sort_by_key(|c| c.seq);
        let threads = match options.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        Verifier {
            keys,
            checkpoints,
            next_cp: 0,
            prev: (!options.allow_pruned_prefix).then(Link::genesis),
            options,
            threads,
            phase: Phase::Scan,
            problem: None,
            buffer: Vec::with_capacity(CHUNK),
            flaws: Vec::new(),
            records: 0,
            first_seq: None,
            start: None,
            matched: 0,
            last_cp_seq: None,
            anchor_seq: 0,
            expected_found: false,
        }
    }

    /// Add the next record.
    pub fn push(&mut self, record: AuditRecord) {
        self.buffer.push(record);
        if self.buffer.len() >= CHUNK {
            self.flush();
        }
    }

    /// Add the next record, whose storage shows it was changed outside the chain (for example a
    /// database column that disagrees with the hashed record): reported as modified if the chain
    /// itself is intact up to it.
    pub fn push_flawed(&mut self, record: AuditRecord, flaw: String) {
        self.flaws.push((self.buffer.len(), flaw));
        self.push(record);
    }

    /// Add an entry that could not be read as a record (`seq`/`id` if the storage still tells).
    pub fn push_unreadable(&mut self, seq: Option<i64>, id: Option<String>, detail: String) {
        self.flush();
        self.records += 1;
        let x = Suspect {
            seq,
            id,
            hash: None,
            prev_hash: None,
            valid: false,
            unreadable: Some(detail),
        };
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Scan => {
                let p = self.prev.clone().unwrap_or_else(Link::genesis);
                self.diagnose(p, x);
            }
            Phase::Mismatch(m) => {
                self.problem = Some(rewritten(&m));
            }
            Phase::Diagnose(mut d) => {
                d.scanned += 1;
                if d.next.is_none() {
                    d.next = Some((false, false));
                }
                self.phase = Phase::Diagnose(d);
            }
            Phase::Done => {}
        }
    }

    /// Add records in log order straight from a slice (no copy).
    pub fn check_slice(&mut self, records: &[AuditRecord]) {
        self.flush();
        self.process(records, &[]);
    }

    /// Whether more input can change the outcome.
    pub fn wants_more(&self) -> bool {
        match &self.phase {
            Phase::Done => false,
            Phase::Diagnose(d) => d.scanned < DIAGNOSIS_WINDOW,
            _ => true,
        }
    }

    /// Records read so far.
    pub fn records_seen(&self) -> u64 {
        self.records + self.buffer.len() as u64
    }

    fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let buffer = std::mem::take(&mut self.buffer);
        let flaws = std::mem::take(&mut self.flaws);
        self.process(&buffer, &flaws);
        self.buffer = buffer;
        self.buffer.clear();
    }

    fn process(&mut self, records: &[AuditRecord], flaws: &[(usize, String)]) {
        if records.is_empty() || matches!(self.phase, Phase::Done) {
            self.records += records.len() as u64;
            return;
        }
        let valid = if matches!(self.phase, Phase::Scan) {
            hashes_valid(records, self.threads)
        } else {
            Vec::new()
        };
        self.process_hashed(records, flaws, &valid);
    }

    /// Records whose hash validity the caller already computed (`valid[i]` is
    /// `records[i].hash_is_valid()`), with the flaws of their stored rows (`(index, what)`, in
    /// index order): for readers that hash while they parse, in the same parallel pass.
    pub(crate) fn check_hashed(
        &mut self,
        records: &[AuditRecord],
        flaws: &[(usize, String)],
        valid: &[bool],
    ) {
        self.flush();
        self.process_hashed(records, flaws, valid);
    }

    fn process_hashed(
        &mut self,
        records: &[AuditRecord],
        flaws: &[(usize, String)],
        valid: &[bool],
    ) {
        self.records += records.len() as u64;
        let validity = |i: usize, r: &AuditRecord| match valid.get(i) {
            Some(v) => *v,
            None => r.hash_is_valid(),
        };
        let mut flaws = flaws.iter().peekable();
        // The predecessor's id is taken from the slice when needed, not copied per record.
        let mut last_accepted = None;
        for (i, r) in records.iter().enumerate() {
            match &mut self.phase {
                Phase::Done => break,
                Phase::Diagnose(d) => {
                    if d.scanned >= DIAGNOSIS_WINDOW {
                        break;
                    }
                    observe(d, r, |r| validity(i, r));
                }
                Phase::Mismatch(m) => {
                    let genuine_follows = r.seq == m.at.seq
                        && r.prev_hash == m.at.prev_hash
                        && r.hash == m.signed_head
                        && validity(i, r);
                    self.problem = Some(if genuine_follows {
                        Problem {
                            kind: ProblemKind::Inserted,
                            seq: m.at.seq,
                            id: m.at.id.clone(),
                            found_seq: None,
                            range: None,
                            detail: format!(
                                "this record takes the place of the record that the {} names, which follows it (record {})",
                                m.what, r.entry.id
                            ),
                        }
                    } else {
                        rewritten(m)
                    });
                    self.phase = Phase::Done;
                }
                Phase::Scan => {
                    let ok = validity(i, r);
                    let flaw = match flaws.peek() {
                        Some((at, _)) if *at == i => flaws.next().map(|(_, f)| f.as_str()),
                        _ => None,
                    };
                    // In the scan every earlier record of this slice was accepted.
                    let before = i.checked_sub(1).map(|j| &records[j]);
                    if self.scan(r, before, ok, flaw) {
                        last_accepted = Some(i);
                    }
                }
            }
        }
        if let (Some(i), Some(p)) = (last_accepted, self.prev.as_mut()) {
            p.id = Some(records[i].entry.id.clone());
        }
    }

    /// Check `r` against its predecessor (`before`: the previous record when it is in the same
    /// slice; its id is then current, while `self.prev.id` is only brought up to date per slice).
    /// Returns whether `r` was accepted as the new predecessor.
    fn scan(
        &mut self,
        r: &AuditRecord,
        before: Option<&AuditRecord>,
        valid: bool,
        flaw: Option<&str>,
    ) -> bool {
        if self.prev.is_none() && self.start_after_pruned(r).is_none() {
            return false;
        }
        let Some(p) = self.prev.as_mut() else {
            return false;
        };
        if !p.extended_by(r, valid) {
            let mut p = p.clone();
            if let Some(b) = before {
                p.id = Some(b.entry.id.clone());
            }
            self.diagnose(p, suspect(r, valid));
            return false;
        }
        // `r` becomes the predecessor, updated in place: no allocation per record.
        p.seq = r.seq;
        p.hash = r.hash;
        p.prev_hash = r.prev_hash;
        p.confirmed = false;
        if self.first_seq.is_none() {
            self.first_seq = Some(r.seq);
            self.start = Some(StartAnchor::Genesis);
        }
        if let Some(flaw) = flaw {
            self.problem = Some(Problem {
                kind: ProblemKind::Modified,
                seq: r.seq,
                id: Some(r.entry.id.clone()),
                found_seq: None,
                range: None,
                detail: format!("the stored row disagrees with the hashed record: {flaw}"),
            });
            self.phase = Phase::Done;
            return false;
        }
        // Checkpoints and the expected head at this record.
        self.skip_checkpoints_before(r.seq);
        let mut confirmed = false;
        let mut mismatch = None;
        while let Some(cp) = self.checkpoints.get(self.next_cp) {
            if cp.seq != r.seq {
                break;
            }
            self.next_cp += 1;
            if let Err(e) = self.keys.verify(cp) {
                self.problem = Some(bad_checkpoint(cp.seq, &e.to_string()));
                self.phase = Phase::Done;
                return false;
            }
            if cp.head != r.hash {
                mismatch = Some((cp.head, "signed checkpoint"));
                break;
            }
            self.matched += 1;
            self.last_cp_seq = Some(cp.seq);
            self.anchor_seq = cp.seq;
            confirmed = true;
        }
        if let (None, Some(h)) = (mismatch, self.options.expect_head) {
            if h.seq == r.seq {
                if h.hash == r.hash {
                    self.expected_found = true;
                    self.anchor_seq = self.anchor_seq.max(r.seq);
                    confirmed = true;
                } else {
                    mismatch = Some((h.hash, "expected head"));
                }
            }
        }
        let Some(p) = self.prev.as_mut() else {
            return false;
        };
        p.confirmed = confirmed;
        if let Some((signed_head, what)) = mismatch {
            let mut at = p.clone();
            at.id = Some(r.entry.id.clone());
            self.phase = Phase::Mismatch(Box::new(Mismatch {
                at,
                signed_head,
                since: self.anchor_seq + 1,
                what,
            }));
        }
        true
    }

    /// The first record of a log that may start after removed records: the link before it,
    /// anchored by a checkpoint on `seq - 1` when there is one. `None` when that checkpoint
    /// refutes it (the problem is then set).
    fn start_after_pruned(&mut self, r: &AuditRecord) -> Option<Link> {
        self.first_seq = Some(r.seq);
        if r.seq == 1 && r.prev_hash == GENESIS {
            self.start = Some(StartAnchor::Genesis);
            self.prev = Some(Link::genesis());
            return self.prev.clone();
        }
        self.skip_checkpoints_before(r.seq - 1);
        let mut before = Link {
            seq: r.seq - 1,
            hash: r.prev_hash,
            prev_hash: GENESIS,
            id: None,
            confirmed: false,
        };
        match self
            .checkpoints
            .get(self.next_cp)
            .filter(|c| c.seq == r.seq - 1)
        {
            Some(cp) => {
                self.next_cp += 1;
                if let Err(e) = self.keys.verify(cp) {
                    self.problem = Some(bad_checkpoint(cp.seq, &e.to_string()));
                    self.phase = Phase::Done;
                    return None;
                }
                if cp.head != r.prev_hash {
                    self.problem = Some(Problem {
                        kind: ProblemKind::Modified,
                        seq: r.seq,
                        id: Some(r.entry.id.clone()),
                        found_seq: None,
                        range: None,
                        detail: format!(
                            "the first record does not link to the signed checkpoint at seq {}",
                            cp.seq
                        ),
                    });
                    self.phase = Phase::Done;
                    return None;
                }
                self.matched += 1;
                self.last_cp_seq = Some(cp.seq);
                self.anchor_seq = cp.seq;
                before.confirmed = true;
                self.start = Some(StartAnchor::Checkpoint);
            }
            None => {
                self.anchor_seq = r.seq - 1;
                self.start = Some(StartAnchor::Unanchored);
            }
        }
        self.prev = Some(before.clone());
        Some(before)
    }

    fn skip_checkpoints_before(&mut self, seq: i64) {
        while self
            .checkpoints
            .get(self.next_cp)
            .is_some_and(|c| c.seq < seq)
        {
            self.next_cp += 1;
        }
    }

    fn diagnose(&mut self, p: Link, x: Suspect) {
        self.phase = Phase::Diagnose(Box::new(Diagnosis {
            p,
            x,
            next: None,
            continuation: None,
            x_again: false,
            scanned: 0,
        }));
    }

    /// The report. Pending classification is settled with what was seen.
    pub fn finish(mut self) -> VerifyReport {
        self.flush();
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Diagnose(d) => self.problem = Some(classify(&d)),
            Phase::Mismatch(m) => self.problem = Some(rewritten(&m)),
            Phase::Scan => self.problem = self.check_end(),
            Phase::Done => {}
        }
        let intact = self.problem.is_none();
        let last = self.prev.as_ref().filter(|p| p.id.is_some() && intact);
        let last_seq = last.map(|p| p.seq);
        let unprotected = match last_seq {
            Some(l) => (l - self.anchor_seq).max(0) as u64,
            None => 0,
        };
        VerifyReport {
            ok: intact,
            records: self.records,
            first_seq: self.first_seq,
            last_seq,
            head: last.map(|p| p.hash),
            start: self.start,
            checkpoints: self.checkpoints.len() as u64,
            checkpoints_matched: self.matched,
            last_checkpoint_seq: self.last_cp_seq,
            expected_head_found: self.options.expect_head.map(|_| self.expected_found),
            unprotected_tail: if intact { unprotected } else { 0 },
            problem: self.problem,
        }
    }

    /// After the last record of an intact chain: checkpoints or an expected head beyond it mean
    /// the end was cut off.
    fn check_end(&mut self) -> Option<Problem> {
        let last = self.prev.as_ref().map_or(0, |p| p.seq);
        if let Some(cp) = self.checkpoints[self.next_cp.min(self.checkpoints.len())..]
            .iter()
            .find(|c| c.seq > last)
        {
            if let Err(e) = self.keys.verify(cp) {
                return Some(bad_checkpoint(cp.seq, &e.to_string()));
            }
            return Some(truncated(last, cp.seq, "a signed checkpoint"));
        }
        match self.options.expect_head {
            Some(h) if h.seq > last => Some(truncated(last, h.seq, "the expected head")),
            _ => None,
        }
    }
}

fn suspect(r: &AuditRecord, valid: bool) -> Suspect {
    Suspect {
        seq: Some(r.seq),
        id: Some(r.entry.id.clone()),
        hash: Some(r.hash),
        prev_hash: Some(r.prev_hash),
        valid,
        unreadable: None,
    }
}

fn observe(d: &mut Diagnosis, r: &AuditRecord, mut valid: impl FnMut(&AuditRecord) -> bool) {
    d.scanned += 1;
    let links_p = r.seq == d.p.seq + 1 && r.prev_hash == d.p.hash;
    let links_x = match (d.x.seq, d.x.hash) {
        (Some(s), Some(h)) => r.seq == s + 1 && r.prev_hash == h,
        _ => false,
    };
    let same_as_x = d.x.hash == Some(r.hash);
    // Hash only the few records whose outcome depends on it.
    let ok = (links_p || links_x || same_as_x) && valid(r);
    if d.next.is_none() {
        d.next = Some((links_x && ok, links_p && ok));
    }
    if links_p && ok && d.continuation.is_none() {
        d.continuation = Some((d.scanned, r.entry.id.clone()));
    }
    if same_as_x && ok {
        d.x_again = true;
    }
}

fn classify(d: &Diagnosis) -> Problem {
    let p = &d.p;
    let x = &d.x;
    let pos = p.seq + 1;
    let problem = |kind, seq, id: Option<String>, detail: String| Problem {
        kind,
        seq,
        found_seq: x.seq.filter(|s| *s != seq && kind != ProblemKind::Deleted),
        id,
        range: None,
        detail,
    };
    let after = |c: &(u64, String)| {
        format!(
            "the chain continues intact {} record(s) later with record {}",
            c.0, c.1
        )
    };
    if !x.valid {
        let why = match &x.unreadable {
            Some(u) => format!("it cannot be read ({u})"),
            None => "its content does not match its hash".to_owned(),
        };
        return match &d.continuation {
            Some(c) => problem(
                ProblemKind::Inserted,
                pos,
                x.id.clone(),
                format!("a foreign record sits here: {why}, and {}", after(c)),
            ),
            None => problem(ProblemKind::Modified, pos, x.id.clone(), why),
        };
    }
    let (Some(x_seq), Some(x_prev)) = (x.seq, x.prev_hash) else {
        return problem(
            ProblemKind::Modified,
            pos,
            x.id.clone(),
            "unreadable".into(),
        );
    };
    if x.hash == Some(p.hash) {
        return problem(
            ProblemKind::Inserted,
            pos,
            x.id.clone(),
            "a second copy of the record before it".into(),
        );
    }
    if x_seq == p.seq && x_prev == p.prev_hash {
        // Two records claim the same place. The one the chain continues from is genuine.
        let continues_from_x = matches!(d.next, Some((true, _)));
        return if continues_from_x && !p.confirmed {
            problem(
                ProblemKind::Inserted,
                p.seq,
                p.id.clone(),
                format!(
                    "two records claim seq {}; the chain continues from the other one (record {})",
                    p.seq,
                    x.id.as_deref().unwrap_or("?")
                ),
            )
        } else {
            let tail = if d.next.is_none() && !p.confirmed {
                " (the log ends here, so which of the two is genuine cannot be told)"
            } else {
                ""
            };
            problem(
                ProblemKind::Inserted,
                p.seq,
                x.id.clone(),
                format!(
                    "two records claim seq {}; the chain continues from the other one (record {}){tail}",
                    p.seq,
                    p.id.as_deref().unwrap_or("?")
                ),
            )
        };
    }
    if let Some(c) = &d.continuation {
        return if x_seq <= p.seq || d.x_again {
            problem(
                ProblemKind::Inserted,
                pos,
                x.id.clone(),
                format!("a copy of the record at seq {x_seq}; {}", after(c)),
            )
        } else {
            problem(
                ProblemKind::Reordered,
                pos,
                x.id.clone(),
                format!(
                    "record seq {x_seq} comes where seq {pos} belongs; seq {pos} (record {}) comes {} record(s) later",
                    c.1, c.0
                ),
            )
        };
    }
    if x_seq == pos {
        return if matches!(d.next, Some((true, _))) && !p.confirmed {
            problem(
                ProblemKind::Modified,
                p.seq,
                p.id.clone(),
                format!(
                    "rewritten with a recomputed hash: the next record (record {}) links to a different hash",
                    x.id.as_deref().unwrap_or("?")
                ),
            )
        } else {
            problem(
                ProblemKind::Modified,
                pos,
                x.id.clone(),
                "replaced: it does not link to the record before it".into(),
            )
        };
    }
    if x_seq > pos {
        let mut pr = problem(
            ProblemKind::Deleted,
            pos,
            x.id.clone(),
            format!(
                "records seq {pos}..={} are missing before this record",
                x_seq - 1
            ),
        );
        pr.range = Some(SeqRange {
            from: pos,
            to: x_seq - 1,
        });
        return pr;
    }
    problem(
        ProblemKind::Inserted,
        pos,
        x.id.clone(),
        format!("a copy of the earlier record at seq {x_seq}"),
    )
}

fn rewritten(m: &Mismatch) -> Problem {
    Problem {
        kind: ProblemKind::Rewritten,
        seq: m.at.seq,
        id: m.at.id.clone(),
        found_seq: None,
        range: Some(SeqRange {
            from: m.since,
            to: m.at.seq,
        }),
        detail: format!(
            "the {} at seq {} has hash {}, the record has another: records in seq {}..={} were rewritten with recomputed hashes",
            m.what, m.at.seq, m.signed_head, m.since, m.at.seq
        ),
    }
}

fn bad_checkpoint(seq: i64, why: &str) -> Problem {
    Problem {
        kind: ProblemKind::BadCheckpoint,
        seq,
        id: None,
        found_seq: None,
        range: None,
        detail: format!("{why} (a forged or altered checkpoint)"),
    }
}

fn truncated(last: i64, to: i64, what: &str) -> Problem {
    Problem {
        kind: ProblemKind::Truncated,
        seq: last + 1,
        id: None,
        found_seq: None,
        range: Some(SeqRange { from: last + 1, to }),
        detail: format!(
            "the log ends at seq {last}, but {what} names seq {to}: at least records {}..={to} were removed",
            last + 1
        ),
    }
}

/// Whether each record's hash matches its content, hashed on up to `threads` threads.
fn hashes_valid(records: &[AuditRecord], threads: usize) -> Vec<bool> {
    fn run(records: &[AuditRecord], out: &mut [bool]) {
        let mut scratch = Vec::with_capacity(1024);
        for (r, o) in records.iter().zip(out) {
            *o = hash_matches(r, &mut scratch);
        }
    }
    let mut out = vec![false; records.len()];
    let threads = threads.clamp(1, records.len().div_ceil(1024).max(1));
    if threads == 1 {
        run(records, &mut out);
        return out;
    }
    let per = records.len().div_ceil(threads);
    std::thread::scope(|s| {
        for (rs, os) in records.chunks(per).zip(out.chunks_mut(per)) {
            s.spawn(move || run(rs, os));
        }
    });
    out
}

fn hash_matches(r: &AuditRecord, scratch: &mut Vec<u8>) -> bool {
    canonical::hash_with(r.seq, &r.entry, &r.prev_hash, scratch) == r.hash
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
