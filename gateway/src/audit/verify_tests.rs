//! Tests of the verifier: a clean log verifies, and a randomized tamper test — over a
//! 10,000-record log with real chaining and signed checkpoints, well over 1,000 mutations of every
//! class, each of which must be detected, classified and pinned to the right record.

use policy::Sha256Hash;

use super::*;
use crate::audit::checkpoint::CheckpointSigner;
use crate::audit::record::{AuditEntry, AuditKind, ConsentTokenFacts, Outcome, WithheldName};

/// SplitMix64: a small deterministic generator, so a failure is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }
    fn bytes(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes()[..chunk.len()]);
        }
        out
    }
}

const KINDS: [AuditKind; 5] = [
    AuditKind::Disclosure,
    AuditKind::ConsentRegistered,
    AuditKind::HandoverStored,
    AuditKind::AuditRead,
    AuditKind::ConsentRegistrationRefused,
];

/// What a refused consent token left in its record (as `ops::consent` writes it).
fn token_facts(rng: &mut Rng) -> ConsentTokenFacts {
    let verified = rng.next().is_multiple_of(2);
    ConsentTokenFacts {
        alg: Some("ES256".into()),
        kid: Some("uwv-consent-1".into()),
        iss: Some("00000001003214345000".into()),
        jti: verified.then(|| format!("consent_{:x}", rng.next())),
        signature: if verified { "verified" } else { "not-verified" }.into(),
        defect: (!verified).then(|| "bad-signature".into()),
    }
}

fn entry(n: u64, rng: &mut Rng) -> AuditEntry {
    let permit = !rng.next().is_multiple_of(3);
    let kind = KINDS[(n % KINDS.len() as u64) as usize];
    AuditEntry {
        id: format!("dsc_{n:05}_{:08x}", rng.next() as u32),
        kind: Some(kind),
        time: format!("2026-03-01T10:{:02}:{:02}.{:06}Z", n / 60 % 60, n % 60, n),
        trace_id: Some(format!("{:032x}", u128::from(rng.next()))),
        span_id: Some(format!("{:016x}", rng.next())),
        requester_oin: Some("00000001823288444000".into()),
        requester_person: Some("sdd-klantmanager-0815".into()),
        source_oin: Some("00000001003214345000".into()),
        subject_pseudonym: Some(hex::encode(rng.bytes())),
        purpose: Some("job-mediation".into()),
        legal_basis: Some("consent".into()),
        covenant: Some(format!(
            "drechtsteden-max-ww@1#{}",
            Sha256Hash::of(b"covenant")
        )),
        consent_id: permit.then(|| format!("consent_{:x}", rng.next())),
        consent_token: (kind == AuditKind::ConsentRegistrationRefused).then(|| token_facts(rng)),
        fields_released: if permit {
            vec!["own_transport".into(), "job_ready".into()]
        } else {
            vec![]
        },
        fields_withheld: vec![WithheldName {
            field: "cv".into(),
            reason: "consent-required".into(),
        }],
        decision: Some(if permit {
            Outcome::Permit
        } else {
            Outcome::Refuse
        }),
        reason: (!permit).then(|| "consent-required".into()),
        processing_activity: (kind == AuditKind::Disclosure && permit)
            .then(|| "https://register.example/pa/max-ww".into()),
        foreign_span_id: n.is_multiple_of(2).then(|| format!("{:016x}", n + 1)),
        // Issue 16: a mix of records with a verified actor, with none sent, and without the
        // member (written before it existed).
        actor: match n % 3 {
            0 => None,
            1 => Some(crate::audit::record::ActorFacts::none()),
            _ => Some(crate::audit::record::ActorFacts {
                assertion: "verified".into(),
                iss: Some("https://idp.sdd.example".into()),
                sub: Some(format!("emp-{:04}", rng.next() % 10_000)),
                role: Some("team-max-ww".into()),
                defect: None,
            }),
        },
        live: None,
    }
}

struct Fixture {
    log: Vec<AuditRecord>,
    checkpoints: Vec<Checkpoint>,
    keys: CheckpointKeys,
    signer: CheckpointSigner,
}

/// `n` chained records with a checkpoint every 1,000 up to 9,000 and one more at 9,437 (a timer
/// checkpoint), so the records after 9,437 are the unprotected tail.
fn fixture(n: usize) -> Fixture {
    let mut rng = Rng(7);
    let signer = CheckpointSigner::generate().expect("key");
    let mut log = Vec::with_capacity(n);
    let mut prev = GENESIS;
    for seq in 1..=n as i64 {
        let r = AuditRecord::chain(seq, entry(seq as u64, &mut rng), prev);
        prev = r.hash;
        log.push(r);
    }
    let mut checkpoints: Vec<Checkpoint> = (1..=9)
        .map(|k| k * 1000)
        .chain([9437])
        .filter(|s| *s <= n as i64)
        .map(|s| signer.sign(s, log[s as usize - 1].hash, "2026-03-01T11:00:00Z".into()))
        .collect();
    // Stored order is not significant.
    checkpoints.reverse();
    Fixture {
        log,
        checkpoints,
        keys: CheckpointKeys::new([signer.public_key().clone()]),
        signer,
    }
}

fn rechain_from(log: &mut [AuditRecord], from: usize) {
    let mut prev = if from == 0 {
        GENESIS
    } else {
        log[from - 1].hash
    };
    for r in &mut log[from..] {
        r.prev_hash = prev;
        r.hash = AuditRecord::compute_hash(r.seq, &r.entry, &r.prev_hash);
        prev = r.hash;
    }
}

#[test]
fn a_clean_log_verifies_with_every_checkpoint_matched() {
    let fx = fixture(10_000);
    for threads in [1, 2, 3] {
        let report = verify_slice(
            &fx.log,
            &fx.checkpoints,
            &fx.keys,
            &VerifyOptions {
                threads,
                ..Default::default()
            },
        );
        assert!(report.ok, "{report:?}");
        assert_eq!(report.records, 10_000);
        assert_eq!((report.first_seq, report.last_seq), (Some(1), Some(10_000)));
        assert_eq!(report.head, Some(fx.log[9_999].hash));
        assert_eq!(report.checkpoints_matched, 10);
        assert_eq!(report.last_checkpoint_seq, Some(9437));
        assert_eq!(report.unprotected_tail, 10_000 - 9437);
        assert_eq!(report.start, Some(StartAnchor::Genesis));
    }
    // The streaming interface (small chunks through `push`) agrees.
    let report = verify_records(
        fx.log.iter().cloned(),
        &fx.checkpoints,
        &fx.keys,
        &VerifyOptions::default(),
    );
    assert!(report.ok);
    // An expected head that is there is confirmed and closes the tail.
    let head = Head {
        seq: 10_000,
        hash: fx.log[9_999].hash,
    };
    let report = verify_slice(
        &fx.log,
        &fx.checkpoints,
        &fx.keys,
        &VerifyOptions {
            expect_head: Some(head),
            ..Default::default()
        },
    );
    assert!(report.ok);
    assert_eq!(report.expected_head_found, Some(true));
    assert_eq!(report.unprotected_tail, 0);
    assert_eq!(head.to_string().parse::<Head>(), Ok(head));
}

#[test]
fn an_empty_log_verifies_and_an_empty_log_with_a_checkpoint_is_truncated() {
    let fx = fixture(10);
    let report = verify_slice(&[], &[], &fx.keys, &VerifyOptions::default());
    assert!(report.ok);
    let cp = fx.signer.sign(5, fx.log[4].hash, "t".into());
    let report = verify_slice(&[], &[cp], &fx.keys, &VerifyOptions::default());
    let p = report.problem.expect("truncated");
    assert_eq!((p.kind, p.seq), (ProblemKind::Truncated, 1));
}

#[test]
fn a_pruned_prefix_is_refused_by_default_and_anchored_by_a_checkpoint_when_allowed() {
    let fx = fixture(3_000);
    let tail = &fx.log[1000..];
    let strict = verify_slice(tail, &fx.checkpoints, &fx.keys, &VerifyOptions::default());
    let p = strict.problem.expect("deleted");
    assert_eq!((p.kind, p.seq), (ProblemKind::Deleted, 1));
    let allow = VerifyOptions {
        allow_pruned_prefix: true,
        ..Default::default()
    };
    let report = verify_slice(tail, &fx.checkpoints, &fx.keys, &allow);
    assert!(report.ok, "{report:?}");
    assert_eq!(report.start, Some(StartAnchor::Checkpoint));
    assert_eq!(report.first_seq, Some(1001));
    let report = verify_slice(&fx.log[1500..], &fx.checkpoints, &fx.keys, &allow);
    assert!(report.ok);
    assert_eq!(report.start, Some(StartAnchor::Unanchored));
}

#[test]
fn a_flawed_row_is_reported_as_modified_once_the_chain_reaches_it() {
    let fx = fixture(100);
    let mut v = Verifier::new(
        fx.checkpoints.clone(),
        fx.keys.clone(),
        VerifyOptions::default(),
    );
    for (i, r) in fx.log.iter().enumerate() {
        if i == 41 {
            v.push_flawed(r.clone(), "column `purpose`".into());
        } else {
            v.push(r.clone());
        }
    }
    let p = v.finish().problem.expect("flaw found");
    assert_eq!(
        (p.kind, p.seq, p.id.as_deref()),
        (
            ProblemKind::Modified,
            42,
            Some(fx.log[41].entry.id.as_str())
        )
    );
    assert!(p.detail.contains("purpose"), "{}", p.detail);
}

/// What a mutation must produce.
struct Expect {
    class: &'static str,
    kinds: &'static [ProblemKind],
    /// The record the report must name (`None`: no record to name).
    id: Option<String>,
    /// The chain position, when it is determined.
    seq: Option<i64>,
    /// For rewrites: the position of the change, which must lie in the reported range.
    within: Option<i64>,
    options: VerifyOptions,
}

impl Expect {
    fn new(class: &'static str, kinds: &'static [ProblemKind]) -> Expect {
        Expect {
            class,
            kinds,
            id: None,
            seq: None,
            within: None,
            options: VerifyOptions::default(),
        }
    }
    fn id(mut self, id: &str) -> Self {
        self.id = Some(id.to_owned());
        self
    }
    fn seq(mut self, seq: i64) -> Self {
        self.seq = Some(seq);
        self
    }
}

/// The working copy of the log and, in lockstep, whether each record's hash matches its content.
/// Every record a mutation creates or changes is hashed for real; untouched records keep the
/// flag of the original (valid). A wrong flag could only cause a missed or misplaced detection,
/// never a false pass.
struct Work {
    log: Vec<AuditRecord>,
    valid: Vec<bool>,
}

impl Work {
    fn len(&self) -> usize {
        self.log.len()
    }
    fn set(&mut self, i: usize, r: AuditRecord) -> AuditRecord {
        self.valid[i] = r.hash_is_valid();
        std::mem::replace(&mut self.log[i], r)
    }
    /// Change record `i` in place with `f`, and re-check it.
    fn edit(&mut self, i: usize, f: impl FnOnce(&mut AuditRecord)) -> AuditRecord {
        let old = self.log[i].clone();
        f(&mut self.log[i]);
        self.valid[i] = self.log[i].hash_is_valid();
        old
    }
    fn insert(&mut self, i: usize, r: AuditRecord) {
        self.valid.insert(i, r.hash_is_valid());
        self.log.insert(i, r);
    }
    fn remove(&mut self, i: usize) -> AuditRecord {
        self.valid.remove(i);
        self.log.remove(i)
    }
    fn drain(&mut self, i: usize, len: usize) -> Vec<AuditRecord> {
        self.valid.drain(i..i + len);
        self.log.drain(i..i + len).collect()
    }
    fn splice(&mut self, i: usize, rs: Vec<AuditRecord>) {
        self.valid
            .splice(i..i, rs.iter().map(AuditRecord::hash_is_valid));
        self.log.splice(i..i, rs);
    }
    fn swap(&mut self, i: usize, j: usize) {
        self.valid.swap(i, j);
        self.log.swap(i, j);
    }
    fn split_off(&mut self, at: usize) -> Vec<AuditRecord> {
        self.valid.truncate(at);
        self.log.split_off(at)
    }
    fn extend(&mut self, rs: Vec<AuditRecord>) {
        self.valid.extend(rs.iter().map(AuditRecord::hash_is_valid));
        self.log.extend(rs);
    }
    /// Recompute `prev_hash` and `hash` from `from` on (what an attacker with the format does).
    fn rechain_from(&mut self, from: usize) {
        rechain_from(&mut self.log, from);
        // Valid by construction: each hash was just computed from its record.
        self.valid[from..].iter_mut().for_each(|v| *v = true);
    }
}

/// How to put the working log back after a mutation; applied in order.
enum Undo {
    Set(usize, Box<AuditRecord>),
    Remove(usize),
    Insert(usize, Vec<AuditRecord>),
    Swap(usize, usize),
    Move {
        from: usize,
        to: usize,
    },
    Extend(Vec<AuditRecord>),
    /// Restore `seq`, `prev_hash` and `hash` from the original, from this index on.
    Resync(usize),
}

impl Undo {
    fn apply(self, w: &mut Work, original: &[AuditRecord]) {
        match self {
            Undo::Set(i, r) => {
                w.set(i, *r);
            }
            Undo::Remove(i) => {
                w.remove(i);
            }
            Undo::Insert(i, rs) => w.splice(i, rs),
            Undo::Swap(i, j) => w.swap(i, j),
            Undo::Move { from, to } => {
                let r = w.remove(from);
                w.insert(to, r);
            }
            Undo::Extend(rs) => w.extend(rs),
            Undo::Resync(from) => {
                for (r, o) in w.log[from..].iter_mut().zip(&original[from..]) {
                    r.seq = o.seq;
                    r.prev_hash = o.prev_hash;
                    r.hash = o.hash;
                }
                w.valid[from..].iter_mut().for_each(|v| *v = true);
            }
        }
    }
}

use ProblemKind::*;

/// Apply mutation number `k` (the class is `k % CLASSES`) to `w`/`cps`; say what to expect and
/// push how to undo it.
const CLASSES: usize = 16;

fn mutate(
    k: usize,
    rng: &mut Rng,
    fx: &Fixture,
    w: &mut Work,
    cps: &mut Vec<Checkpoint>,
    undo: &mut Vec<Undo>,
) -> Expect {
    let n = w.len();
    let last_cp = 9437usize;
    match k % CLASSES {
        0 => {
            // Change one member of one record, leaving its hash.
            let i = rng.range(0, n);
            let what = rng.next() % 9;
            let other = hex::encode(rng.bytes());
            let old = w.edit(i, |r| match what {
                0 => r.entry.id.push('x'),
                1 => r.entry.time = "2026-03-01T09:00:00.000000Z".into(),
                2 => r.entry.purpose = Some("bijstand-intake".into()),
                3 => r.entry.fields_released.push("cv".into()),
                4 => {
                    r.entry.decision = Some(match r.entry.decision {
                        Some(Outcome::Permit) => Outcome::Refuse,
                        _ => Outcome::Permit,
                    })
                }
                5 => r.entry.subject_pseudonym = Some(other),
                6 => r.entry.trace_id = None,
                7 => r.entry.fields_withheld.clear(),
                // The facts of a refused consent token: added, dropped or edited.
                _ => {
                    r.entry.consent_token = match r.entry.consent_token.take() {
                        None => Some(ConsentTokenFacts {
                            alg: None,
                            kid: None,
                            iss: None,
                            jti: None,
                            signature: "not-verified".into(),
                            defect: Some("malformed".into()),
                        }),
                        Some(facts) if facts.jti.is_some() => None,
                        Some(facts) => Some(ConsentTokenFacts {
                            signature: "verified".into(),
                            ..facts
                        }),
                    }
                }
            });
            undo.push(Undo::Set(i, Box::new(old)));
            Expect::new("modify", &[Modified])
                .id(&w.log[i].entry.id)
                .seq(i as i64 + 1)
        }
        1 => {
            // Change the stored hash, the link or the sequence number.
            let i = rng.range(0, n);
            let what = rng.next() % 3;
            let bytes = rng.bytes();
            let step = rng.range(1, 5) as i64;
            let old = w.edit(i, |r| match what {
                0 => r.hash = Sha256Hash(bytes),
                1 => r.prev_hash = Sha256Hash(bytes),
                _ => r.seq += step,
            });
            undo.push(Undo::Set(i, Box::new(old)));
            Expect::new("modify-chain-fields", &[Modified])
                .id(&w.log[i].entry.id)
                .seq(i as i64 + 1)
        }
        2 => {
            // Change a record and recompute its own hash (not its successor's link). Not the last
            // two: with nothing after it, a replaced last record and a rehashed one before it
            // look the same.
            let i = rng.range(0, n - 2);
            let old = w.edit(i, |r| {
                r.entry.reason = Some("edited".into());
                r.hash = AuditRecord::compute_hash(r.seq, &r.entry, &r.prev_hash);
            });
            undo.push(Undo::Set(i, Box::new(old)));
            // On a checkpointed record the checkpoint catches it first.
            Expect::new("modify-rehash", &[Modified, Rewritten])
                .id(&w.log[i].entry.id)
                .seq(i as i64 + 1)
        }
        3 => {
            // Delete a run of 1–5 records (not reaching the end: that is truncation).
            let len = rng.range(1, 6);
            let i = rng.range(0, n - len);
            let after = w.log[i + len].entry.id.clone();
            undo.push(Undo::Insert(i, w.drain(i, len)));
            Expect::new("delete", &[Deleted])
                .id(&after)
                .seq(i as i64 + 1)
        }
        4 => {
            // Insert a copy of another record anywhere (a replay).
            let j = rng.range(0, n);
            let at = rng.range(0, n + 1);
            w.insert(at, w.log[j].clone());
            undo.push(Undo::Remove(at));
            Expect::new("insert-copy", &[Inserted]).id(&w.log[at].entry.id)
        }
        5 => {
            // Insert a forged record with a made-up hash (not at the end).
            let at = rng.range(0, n);
            let mut f = w.log[at].clone();
            f.entry.id = format!("forged_{k}");
            f.hash = Sha256Hash(rng.bytes());
            w.insert(at, f);
            undo.push(Undo::Remove(at));
            Expect::new("insert-forged", &[Inserted])
                .id(&format!("forged_{k}"))
                .seq(at as i64 + 1)
        }
        6 => {
            // Insert a competently forged record: right seq, right link, right hash — in front of
            // the genuine one at that seq.
            let at = rng.range(1, n - 1);
            let mut e = w.log[at].entry.clone();
            e.id = format!("forged_{k}");
            e.fields_released.push("cv".into());
            let f = AuditRecord::chain(w.log[at].seq, e, w.log[at - 1].hash);
            w.insert(at, f);
            undo.push(Undo::Remove(at));
            Expect::new("insert-chained-before", &[Inserted])
                .id(&format!("forged_{k}"))
                .seq(at as i64 + 1)
        }
        7 => {
            // The same forgery placed after the genuine record.
            let at = rng.range(1, n - 1);
            let mut e = w.log[at].entry.clone();
            e.id = format!("forged_{k}");
            let f = AuditRecord::chain(w.log[at].seq, e, w.log[at - 1].hash);
            w.insert(at + 1, f);
            undo.push(Undo::Remove(at + 1));
            Expect::new("insert-chained-after", &[Inserted])
                .id(&format!("forged_{k}"))
                .seq(at as i64 + 1)
        }
        8 => {
            // Swap two records (adjacent or far apart).
            let i = rng.range(0, n - 1);
            let j = if rng.next().is_multiple_of(3) {
                i + 1
            } else {
                rng.range(i + 1, n)
            };
            w.swap(i, j);
            undo.push(Undo::Swap(i, j));
            Expect::new("swap", &[Reordered])
                .id(&w.log[i].entry.id)
                .seq(i as i64 + 1)
        }
        9 => {
            // Move a record later: the first record out of place is its successor.
            let i = rng.range(0, n - 2);
            let to = rng.range(i + 2, n);
            let r = w.remove(i);
            w.insert(to, r);
            undo.push(Undo::Move { from: to, to: i });
            Expect::new("move-later", &[Reordered])
                .id(&w.log[i].entry.id)
                .seq(i as i64 + 1)
        }
        10 => {
            // Move a record earlier.
            let j = rng.range(1, n);
            let to = rng.range(0, j);
            let r = w.remove(j);
            w.insert(to, r);
            undo.push(Undo::Move { from: to, to: j });
            Expect::new("move-earlier", &[Reordered])
                .id(&w.log[to].entry.id)
                .seq(to as i64 + 1)
        }
        11 => {
            // Cut the end back to before the last checkpoint.
            let keep = rng.range(0, last_cp);
            undo.push(Undo::Extend(w.split_off(keep)));
            Expect::new("truncate-before-checkpoint", &[Truncated]).seq(keep as i64 + 1)
        }
        12 => {
            // Cut the end after the last checkpoint: only an external head shows it.
            let keep = rng.range(last_cp, n);
            let head = Head {
                seq: n as i64,
                hash: w.log[n - 1].hash,
            };
            undo.push(Undo::Extend(w.split_off(keep)));
            let mut e = Expect::new("truncate-after-checkpoint", &[Truncated]).seq(keep as i64 + 1);
            e.options.expect_head = Some(head);
            e
        }
        13 => {
            // Rewrite from some record on, recomputing every hash after it.
            let i = rng.range(0, n);
            let head = Head {
                seq: n as i64,
                hash: w.log[n - 1].hash,
            };
            let old = w.edit(i, |r| r.entry.purpose = Some("rewritten".into()));
            w.rechain_from(i);
            undo.push(Undo::Set(i, Box::new(old)));
            undo.push(Undo::Resync(i));
            let mut e = Expect::new("rewrite", &[Rewritten]);
            e.within = Some(i as i64 + 1);
            if i >= last_cp {
                e.options.expect_head = Some(head);
            }
            e
        }
        14 => {
            // Alter a checkpoint, or add one signed with another key.
            let c = rng.range(0, cps.len());
            let seq = match rng.next() % 3 {
                0 => {
                    cps[c].head = Sha256Hash(rng.bytes());
                    cps[c].seq
                }
                1 => {
                    cps[c].time = "2030-01-01T00:00:00Z".into();
                    cps[c].seq
                }
                _ => {
                    let other = CheckpointSigner::generate().expect("key");
                    let s = rng.range(1, n + 1);
                    cps.push(other.sign(s as i64, w.log[s - 1].hash, "t".into()));
                    s as i64
                }
            };
            Expect::new("bad-checkpoint", &[BadCheckpoint]).seq(seq)
        }
        _ => {
            // Delete a record and renumber and rehash everything after it: a deletion hidden
            // behind a re-sequenced tail is still a rewrite that the next checkpoint sees.
            let i = rng.range(0, last_cp - 1);
            let removed = w.remove(i);
            for r in &mut w.log[i..] {
                r.seq -= 1;
            }
            w.rechain_from(i);
            undo.push(Undo::Insert(i, vec![removed]));
            undo.push(Undo::Resync(i + 1));
            let head = Head {
                seq: n as i64,
                hash: fx.log[n - 1].hash,
            };
            let mut e = Expect::new("delete-and-resequence", &[Rewritten]);
            e.within = Some(i as i64 + 1);
            e.options.expect_head = Some(head);
            e
        }
    }
}

#[test]
fn randomized_tampering_of_every_class_is_detected_and_pinned_to_the_right_record() {
    let fx = fixture(10_000);
    let seed = 0x5eed_0001;
    let mut rng = Rng(seed);
    let rounds = CLASSES * 70;
    let mut per_class = std::collections::BTreeMap::<&str, usize>::new();
    // One working copy, put back after each mutation (cloning and rehashing 10,000 records per
    // round would dominate the run time of an unoptimised test build).
    let mut w = Work {
        valid: fx.log.iter().map(AuditRecord::hash_is_valid).collect(),
        log: fx.log.clone(),
    };
    assert!(w.valid.iter().all(|v| *v));
    let mut undo = Vec::new();
    for k in 0..rounds {
        let mut cps = fx.checkpoints.clone();
        let expect = mutate(k, &mut rng, &fx, &mut w, &mut cps, &mut undo);
        let mut v = Verifier::new(cps, fx.keys.clone(), expect.options.clone());
        v.check_hashed(&w.log, &[], &w.valid);
        let report = v.finish();
        let ctx = format!(
            "mutation {k} ({}), seed {seed:#x}: {report:?}",
            expect.class
        );
        let p = report
            .problem
            .as_ref()
            .unwrap_or_else(|| panic!("undetected: {ctx}"));
        assert!(!report.ok, "{ctx}");
        assert!(expect.kinds.contains(&p.kind), "wrong class: {ctx}");
        if let Some(id) = &expect.id {
            assert_eq!(p.id.as_ref(), Some(id), "wrong record: {ctx}");
        }
        if let Some(seq) = expect.seq {
            assert_eq!(p.seq, seq, "wrong position: {ctx}");
        }
        if let Some(at) = expect.within {
            let r = p.range.unwrap_or_else(|| panic!("no range: {ctx}"));
            assert!(r.from <= at && at <= r.to, "change outside range: {ctx}");
        }
        *per_class.entry(expect.class).or_default() += 1;
        for step in undo.drain(..) {
            step.apply(&mut w, &fx.log);
        }
    }
    assert!(w.log == fx.log, "every mutation was undone");
    assert!(w.valid.iter().all(|v| *v));
    assert_eq!(per_class.len(), CLASSES);
    assert!(per_class.values().sum::<usize>() >= 1000);
    // The same verifier with its own hashing (the path production uses) on a sample.
    for k in 0..CLASSES {
        let mut cps = fx.checkpoints.clone();
        let expect = mutate(k, &mut rng, &fx, &mut w, &mut cps, &mut undo);
        let report = verify_slice(&w.log, &cps, &fx.keys, &expect.options);
        let p = report.problem.expect("detected with real hashing");
        assert!(expect.kinds.contains(&p.kind), "{}: {p}", expect.class);
        if let Some(id) = &expect.id {
            assert_eq!(p.id.as_ref(), Some(id), "{}: {p}", expect.class);
        }
        for step in undo.drain(..) {
            step.apply(&mut w, &fx.log);
        }
    }
}

#[test]
fn truncation_after_the_last_checkpoint_is_not_detectable_without_an_external_head() {
    // The documented limit: stated here so that it cannot silently change.
    let fx = fixture(10_000);
    let cut = &fx.log[..9_800];
    let report = verify_slice(cut, &fx.checkpoints, &fx.keys, &VerifyOptions::default());
    assert!(report.ok);
    assert_eq!(report.unprotected_tail, 9_800 - 9437);
}
