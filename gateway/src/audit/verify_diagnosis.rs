//! The verifier's account of a break in the chain: the last record it accepted, the first that
//! did not extend it, what follows, and the break classified as a [`Problem`]. Pure: it reads only
//! the records it is shown, never storage.

use policy::Sha256Hash;

use super::record::{AuditRecord, GENESIS};
use super::verify_report::{Problem, ProblemKind, SeqRange};

/// The last record accepted into the chain.
#[derive(Debug, Clone)]
pub(super) struct Link {
    pub(super) seq: i64,
    pub(super) hash: Sha256Hash,
    pub(super) prev_hash: Sha256Hash,
    pub(super) id: Option<String>,
    /// Its hash is vouched for by a signed checkpoint, the expected head or genesis.
    pub(super) confirmed: bool,
}

impl Link {
    pub(super) fn genesis() -> Link {
        Link {
            seq: 0,
            hash: GENESIS,
            prev_hash: GENESIS,
            id: None,
            confirmed: true,
        }
    }

    pub(super) fn extended_by(&self, r: &AuditRecord, valid: bool) -> bool {
        valid && r.seq == self.seq + 1 && r.prev_hash == self.hash
    }
}

/// The first record that did not extend the chain.
#[derive(Debug, Clone)]
pub(super) struct Suspect {
    pub(super) seq: Option<i64>,
    pub(super) id: Option<String>,
    pub(super) hash: Option<Sha256Hash>,
    pub(super) prev_hash: Option<Sha256Hash>,
    pub(super) valid: bool,
    pub(super) unreadable: Option<String>,
}

/// What the records after the suspect show.
#[derive(Debug)]
pub(super) struct Diagnosis {
    pub(super) p: Link,
    pub(super) x: Suspect,
    /// The record right after the suspect: (it extends the suspect, it extends `p`).
    pub(super) next: Option<(bool, bool)>,
    /// The first later record that extends `p`: (records after the suspect, its id).
    pub(super) continuation: Option<(u64, String)>,
    /// A later valid record has the suspect's hash (the suspect is a copy).
    pub(super) x_again: bool,
    pub(super) scanned: u64,
}

/// A record at a checkpoint's seq with another hash; the next record decides whether it is an
/// intruder (the genuine one follows) or the log was rewritten.
#[derive(Debug)]
pub(super) struct Mismatch {
    pub(super) at: Link,
    pub(super) signed_head: Sha256Hash,
    pub(super) since: i64,
    pub(super) what: &'static str,
}

pub(super) fn suspect(r: &AuditRecord, valid: bool) -> Suspect {
    Suspect {
        seq: Some(r.seq),
        id: Some(r.entry.id.clone()),
        hash: Some(r.hash),
        prev_hash: Some(r.prev_hash),
        valid,
        unreadable: None,
    }
}

pub(super) fn observe(
    d: &mut Diagnosis,
    r: &AuditRecord,
    mut valid: impl FnMut(&AuditRecord) -> bool,
) {
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

pub(super) fn classify(d: &Diagnosis) -> Problem {
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

pub(super) fn rewritten(m: &Mismatch) -> Problem {
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

pub(super) fn bad_checkpoint(seq: i64, why: &str) -> Problem {
    Problem {
        kind: ProblemKind::BadCheckpoint,
        seq,
        id: None,
        found_seq: None,
        range: None,
        detail: format!("{why} (a forged or altered checkpoint)"),
    }
}

pub(super) fn truncated(last: i64, to: i64, what: &str) -> Problem {
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
