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

use super::canonical;
use super::checkpoint::{Checkpoint, CheckpointKeys};
use super::record::{AuditRecord, GENESIS};
use super::verify_diagnosis::{
    bad_checkpoint, classify, observe, rewritten, suspect, truncated, Diagnosis, Link, Mismatch,
    Suspect,
};
pub use super::verify_report::{
    Head, HeadParseError, Problem, ProblemKind, SeqRange, StartAnchor, VerifyOptions, VerifyReport,
};

/// Records handed to the parallel hashing step at once by the streaming interface.
const CHUNK: usize = 32 * 1024;
/// How far past the first broken record the classification looks (records).
const DIAGNOSIS_WINDOW: u64 = 1_000_000;

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
