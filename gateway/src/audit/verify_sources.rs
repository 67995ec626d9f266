//! Feeding the verifier from where audit records live: the database (every column of every row
//! must agree with the hashed record) and JSON Lines exports (records, checkpoint lines and
//! ignored `meta` lines). Records are parsed strictly — an unknown or duplicate member is a
//! change outside the hash, so it is reported — and in parallel, page by page, in constant memory.
//!
//! # Export format (JSON Lines)
//! * a record: the `AuditRecord` object exactly as stored (`{"seq":…,"id":…,…,"prev_hash":…,"hash":…}`);
//! * a checkpoint: `{"checkpoint":{"seq":…,"head":…,"time":…,"key_id":…,"signature":…}}`
//!   (see [`checkpoint_line`]), anywhere in the file;
//! * metadata: `{"meta":…}`, not verified and ignored;
//! * empty lines are ignored.

use std::borrow::Cow;
use std::io::{BufRead, Seek, SeekFrom};

use policy::Sha256Hash;
use serde::{Deserialize, Serialize};

use super::canonical;
use super::checkpoint::{Checkpoint, CheckpointKeys};
use super::record::{
    ActorFacts, AuditEntry, AuditKind, AuditRecord, ConsentTokenFacts, LiveFacts, Outcome,
    WithheldName,
};
use super::verify::{Problem, ProblemKind, Verifier, VerifyOptions, VerifyReport};
use crate::store::{AuditRow, Store, StoreError};

/// Rows read from the database per page.
const PAGE: i64 = 16 * 1024;
/// Export lines parsed per batch.
const LINES: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("the verification task failed")]
    Task,
}

/// The exact serialised shape of an `AuditRecord`, with nothing else allowed. The hashes are
/// borrowed from the text while parsing (they are fixed-size and end up as bytes).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRecord<'a> {
    seq: i64,
    id: String,
    kind: Option<AuditKind>,
    time: String,
    trace_id: Option<String>,
    span_id: Option<String>,
    requester_oin: Option<String>,
    requester_person: Option<String>,
    source_oin: Option<String>,
    subject_pseudonym: Option<String>,
    purpose: Option<String>,
    legal_basis: Option<String>,
    covenant: Option<String>,
    consent_id: Option<String>,
    /// Absent on most records; present it must be an object (an added `null` would be a change
    /// outside the hash, since the hash is taken over the record without the member).
    #[serde(default, deserialize_with = "present")]
    consent_token: Option<Option<ConsentTokenFacts>>,
    fields_released: Vec<String>,
    fields_withheld: Vec<WithheldName>,
    decision: Option<Outcome>,
    reason: Option<String>,
    /// Absent on records without one; present it must be a string (as `consent_token`).
    #[serde(default, deserialize_with = "present")]
    processing_activity: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    foreign_span_id: Option<Option<String>>,
    /// Issue 16: absent on records before it and on records that are not system calls; present
    /// it must be an object (like `consent_token`).
    #[serde(default, deserialize_with = "present")]
    actor: Option<Option<ActorFacts>>,
    /// Live disclosures only; like `consent_token`, present it must be an object.
    #[serde(default, deserialize_with = "present")]
    live: Option<Option<LiveFacts>>,
    #[serde(borrow)]
    prev_hash: Cow<'a, str>,
    #[serde(borrow)]
    hash: Cow<'a, str>,
}

/// A member that may be absent (`None`, by `default`) but, when present, may be `null`
/// (`Some(None)`, refused by [`parse_record`]) or a value.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Parse one stored record strictly (unknown or duplicate members are refused).
pub fn parse_record(text: &str) -> Result<AuditRecord, String> {
    let w: WireRecord = serde_json::from_str(text).map_err(|e| {
        // Keep the category and position, never the content.
        let msg = e.to_string();
        let what = msg.split(" at line").next().unwrap_or("malformed");
        let what = if what.contains("unknown field") {
            "an unknown member"
        } else if what.contains("duplicate field") {
            "a duplicate member"
        } else {
            "not a well-formed record"
        };
        format!("{what} (column {})", e.column())
    })?;
    let hash = |h: &str, name: &str| {
        Sha256Hash::parse(h).ok_or_else(|| format!("not a well-formed record (`{name}`)"))
    };
    let consent_token = match w.consent_token {
        None => None,
        Some(None) => return Err("not a well-formed record (`consent_token` is null)".into()),
        Some(facts) => facts,
    };
    let absent_or_string = |member: Option<Option<String>>, name: &str| match member {
        None => Ok(None),
        Some(None) => Err(format!("not a well-formed record (`{name}` is null)")),
        Some(value) => Ok(value),
    };
    let processing_activity = absent_or_string(w.processing_activity, "processing_activity")?;
    let foreign_span_id = absent_or_string(w.foreign_span_id, "foreign_span_id")?;
    let actor = match w.actor {
        None => None,
        Some(None) => return Err("not a well-formed record (`actor` is null)".into()),
        Some(facts) => facts,
    };
    let live = match w.live {
        None => None,
        Some(None) => return Err("not a well-formed record (`live` is null)".into()),
        Some(facts) => facts,
    };
    let prev_hash = hash(&w.prev_hash, "prev_hash")?;
    let own_hash = hash(&w.hash, "hash")?;
    // A struct literal without `..`, so a new `AuditEntry` field must be added here too.
    Ok(AuditRecord {
        seq: w.seq,
        entry: AuditEntry {
            id: w.id,
            kind: w.kind,
            time: w.time,
            trace_id: w.trace_id,
            span_id: w.span_id,
            requester_oin: w.requester_oin,
            requester_person: w.requester_person,
            source_oin: w.source_oin,
            subject_pseudonym: w.subject_pseudonym,
            purpose: w.purpose,
            legal_basis: w.legal_basis,
            covenant: w.covenant,
            consent_id: w.consent_id,
            consent_token,
            fields_released: w.fields_released,
            fields_withheld: w.fields_withheld,
            decision: w.decision,
            reason: w.reason,
            processing_activity,
            foreign_span_id,
            actor,
            live,
        },
        prev_hash,
        hash: own_hash,
    })
}

/// The first column of a stored row that disagrees with its hashed record.
pub fn row_flaw(row: &AuditRow, r: &AuditRecord) -> Option<String> {
    let e = &r.entry;
    let kind = e.kind.map_or("unknown", AuditKind::as_str);
    let actor_sub = e.actor.as_ref().and_then(|a| a.sub.as_ref());
    let checks: [(&str, bool); 13] = [
        ("seq", row.seq == r.seq),
        ("id", row.id == e.id),
        ("time", row.time == e.time),
        ("kind", row.kind == kind),
        ("requester_oin", row.requester_oin == e.requester_oin),
        ("source_oin", row.source_oin == e.source_oin),
        (
            "subject_pseudonym",
            row.subject_pseudonym == e.subject_pseudonym,
        ),
        ("purpose", row.purpose == e.purpose),
        (
            "decision",
            row.decision.as_deref() == e.decision.map(Outcome::as_str),
        ),
        ("reason", row.reason == e.reason),
        ("actor_sub", row.actor_sub.as_ref() == actor_sub),
        (
            "prev_hash",
            Sha256Hash::parse(&row.prev_hash) == Some(r.prev_hash),
        ),
        ("hash", Sha256Hash::parse(&row.hash) == Some(r.hash)),
    ];
    checks
        .iter()
        .find(|(_, ok)| !ok)
        .map(|(col, _)| format!("column `{col}`"))
}

// Records are nearly every item: boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Parsed {
    /// A record, whether its hash matches its content, and what its stored row gets wrong.
    Record(AuditRecord, bool, Option<String>),
    Unreadable {
        seq: Option<i64>,
        id: Option<String>,
        detail: String,
    },
    Skip,
}

/// Map `items` with `f` on up to `threads` threads, keeping order; each thread has an encoding
/// buffer for hashing.
fn par_map<T: Sync, U: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T, &mut Vec<u8>) -> U + Sync,
) -> Vec<U> {
    let run = |part: &[T]| {
        let mut scratch = Vec::with_capacity(1024);
        part.iter().map(|t| f(t, &mut scratch)).collect::<Vec<U>>()
    };
    let threads = threads.clamp(1, items.len().div_ceil(512).max(1));
    if threads == 1 {
        return run(items);
    }
    let per = items.len().div_ceil(threads);
    let run = &run;
    std::thread::scope(|s| {
        let parts: Vec<_> = items
            .chunks(per)
            .map(|part| s.spawn(move || run(part)))
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

fn threads(options: &VerifyOptions) -> usize {
    match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Parse a stored record and hash it (in the parsing thread).
fn parse_and_hash(text: &str, scratch: &mut Vec<u8>) -> Result<(AuditRecord, bool), String> {
    let r = parse_record(text)?;
    let valid = canonical::hash_with(r.seq, &r.entry, &r.prev_hash, scratch) == r.hash;
    Ok((r, valid))
}

/// Hand parsed items to the verifier in order: runs of records at once (already hashed),
/// unreadable entries one by one.
fn feed(verifier: &mut Verifier, parsed: Vec<Parsed>) {
    let mut records = Vec::with_capacity(parsed.len());
    let mut valid = Vec::with_capacity(parsed.len());
    let mut flaws = Vec::new();
    for p in parsed {
        match p {
            Parsed::Record(r, ok, flaw) => {
                if let Some(f) = flaw {
                    flaws.push((records.len(), f));
                }
                records.push(r);
                valid.push(ok);
            }
            Parsed::Unreadable { seq, id, detail } => {
                verifier.check_hashed(&records, &flaws, &valid);
                records.clear();
                valid.clear();
                flaws.clear();
                verifier.push_unreadable(seq, id, detail);
            }
            Parsed::Skip => {}
        }
    }
    verifier.check_hashed(&records, &flaws, &valid);
}

/// A report that stops before reading any record.
fn refused(problem: Problem, checkpoints: u64) -> VerifyReport {
    VerifyReport {
        ok: false,
        records: 0,
        first_seq: None,
        last_seq: None,
        head: None,
        start: None,
        checkpoints,
        checkpoints_matched: 0,
        last_checkpoint_seq: None,
        expected_head_found: None,
        unprotected_tail: 0,
        problem: Some(problem),
    }
}

fn unreadable_checkpoint(seq: i64, detail: String) -> Problem {
    Problem {
        kind: ProblemKind::BadCheckpoint,
        seq,
        id: None,
        found_seq: None,
        range: None,
        detail,
    }
}

/// Verify the audit log in `store` with its stored checkpoints. `progress` is called with the
/// number of records read after each page. CPU work runs on blocking threads.
pub async fn verify_store(
    store: &Store,
    keys: CheckpointKeys,
    options: VerifyOptions,
    mut progress: impl FnMut(u64) + Send,
) -> Result<VerifyReport, SourceError> {
    let rows = store.audit_checkpoint_rows(i64::MIN, i64::MAX).await?;
    let mut checkpoints = Vec::with_capacity(rows.len());
    for row in &rows {
        match row.parse() {
            Ok(cp) => checkpoints.push(cp),
            Err(detail) => {
                return Ok(refused(
                    unreadable_checkpoint(row.seq, detail),
                    rows.len() as u64,
                ))
            }
        }
    }
    let threads = threads(&options);
    let mut verifier = Verifier::new(checkpoints, keys, options);
    let mut after = i64::MIN;
    loop {
        let rows = store.audit_rows(after, PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        verifier = tokio::task::spawn_blocking(move || {
            let parsed = par_map(&rows, threads, |row, scratch| {
                match parse_and_hash(&row.record, scratch) {
                    Ok((r, valid)) => {
                        let flaw = row_flaw(row, &r);
                        Parsed::Record(r, valid, flaw)
                    }
                    Err(detail) => Parsed::Unreadable {
                        seq: Some(row.seq),
                        id: Some(row.id.clone()),
                        detail: format!("the stored record is {detail}"),
                    },
                }
            });
            feed(&mut verifier, parsed);
            verifier
        })
        .await
        .map_err(|_| SourceError::Task)?;
        progress(verifier.records_seen());
        if !verifier.wants_more() {
            break;
        }
    }
    tokio::task::spawn_blocking(move || verifier.finish())
        .await
        .map_err(|_| SourceError::Task)
}

/// A checkpoint line of an export: `{"checkpoint":{…}}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointLine {
    checkpoint: Checkpoint,
}

/// The export line for a checkpoint.
pub fn checkpoint_line(cp: &Checkpoint) -> String {
    serde_json::to_string(&CheckpointLine {
        checkpoint: cp.clone(),
    })
    .unwrap_or_default()
}

fn line_kind(line: &str) -> LineKind {
    let t = line.trim_start();
    if t.is_empty() {
        LineKind::Empty
    } else if t.starts_with("{\"checkpoint\"") {
        LineKind::Checkpoint
    } else if t.starts_with("{\"meta\"") {
        LineKind::Meta
    } else {
        LineKind::Record
    }
}

enum LineKind {
    Empty,
    Checkpoint,
    Meta,
    Record,
}

/// Verify a JSON Lines export (see the module docs for its format). Reads the input twice: first
/// for the checkpoints (which may come anywhere), then the records. `progress` receives the
/// bytes read in the second pass.
pub fn verify_export<R: BufRead + Seek>(
    mut input: R,
    keys: CheckpointKeys,
    options: VerifyOptions,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, SourceError> {
    let mut checkpoints = Vec::new();
    let mut line = String::new();
    let mut line_no = 0u64;
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            break;
        }
        line_no += 1;
        if let LineKind::Checkpoint = line_kind(&line) {
            match serde_json::from_str::<CheckpointLine>(&line) {
                Ok(c) => checkpoints.push(c.checkpoint),
                Err(_) => {
                    return Ok(refused(
                        unreadable_checkpoint(
                            0,
                            format!("line {line_no}: not a well-formed checkpoint"),
                        ),
                        checkpoints.len() as u64 + 1,
                    ))
                }
            }
        }
    }
    input.seek(SeekFrom::Start(0))?;
    let threads = threads(&options);
    let mut verifier = Verifier::new(checkpoints, keys, options);
    let mut bytes = 0u64;
    // One buffer per batch of lines, and each line's (number, start, end) in it.
    let mut text = String::with_capacity(LINES * 1024);
    let mut lines: Vec<(u64, usize, usize)> = Vec::with_capacity(LINES);
    line_no = 0;
    loop {
        let start = text.len();
        let n = input.read_line(&mut text)?;
        if n > 0 {
            bytes += n as u64;
            line_no += 1;
            lines.push((line_no, start, text.len()));
        }
        if (n == 0 && !lines.is_empty()) || lines.len() >= LINES {
            let parsed = par_map(&lines, threads, |&(no, a, b), scratch| {
                let line = &text[a..b];
                match line_kind(line) {
                    LineKind::Record => match parse_and_hash(line, scratch) {
                        Ok((r, valid)) => Parsed::Record(r, valid, None),
                        Err(detail) => Parsed::Unreadable {
                            seq: None,
                            id: None,
                            detail: format!("line {no} is {detail}"),
                        },
                    },
                    _ => Parsed::Skip,
                }
            });
            lines.clear();
            text.clear();
            feed(&mut verifier, parsed);
            progress(bytes);
            if !verifier.wants_more() {
                break;
            }
        }
        if n == 0 {
            break;
        }
    }
    Ok(verifier.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::checkpoint::CheckpointSigner;
    use crate::audit::record::GENESIS;

    fn record(seq: i64, prev: Sha256Hash) -> AuditRecord {
        AuditRecord::chain(
            seq,
            AuditEntry {
                id: format!("dsc_{seq}"),
                kind: Some(AuditKind::Disclosure),
                time: "2026-01-01T00:00:00.000000Z".into(),
                purpose: Some("job-mediation".into()),
                fields_released: vec!["own_transport".into()],
                fields_withheld: vec![WithheldName {
                    field: "cv".into(),
                    reason: "consent-required".into(),
                }],
                decision: Some(Outcome::Permit),
                ..Default::default()
            },
            prev,
        )
    }

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|s| {
                let r = record(s, prev);
                prev = r.hash;
                r
            })
            .collect()
    }

    #[test]
    fn strict_parse_reads_what_serde_writes_and_refuses_extra_members() {
        let r = record(3, GENESIS);
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(parse_record(&text).unwrap(), r);
        let extra = text.replacen('{', "{\"note\":\"x\",", 1);
        assert!(parse_record(&extra).unwrap_err().contains("unknown member"));
        let dup = text.replacen('{', "{\"id\":\"other\",", 1);
        assert!(parse_record(&dup).unwrap_err().contains("duplicate"));
    }

    #[test]
    fn consent_token_facts_round_trip_and_an_added_null_is_refused() {
        let mut entry = record(1, GENESIS).entry;
        entry.kind = Some(AuditKind::ConsentRegistrationRefused);
        entry.consent_token = Some(ConsentTokenFacts {
            alg: Some("none".into()),
            kid: None,
            iss: Some("00000001003214345000".into()),
            jti: None,
            signature: "not-verified".into(),
            defect: Some("algorithm-not-allowed".into()),
        });
        let r = AuditRecord::chain(1, entry, GENESIS);
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"consent_token\":{"));
        let back = parse_record(&text).unwrap();
        assert_eq!(back, r);
        assert!(back.hash_is_valid());

        // A record without facts has no member at all, and an added `null` is a change.
        let plain = record(2, GENESIS);
        let text = serde_json::to_string(&plain).unwrap();
        assert!(!text.contains("consent_token"));
        let with_null = text.replacen('{', "{\"consent_token\":null,", 1);
        assert!(parse_record(&with_null)
            .unwrap_err()
            .contains("consent_token"));
    }

    #[test]
    fn export_with_checkpoints_at_the_end_verifies_and_a_changed_line_is_named() {
        let signer = CheckpointSigner::generate().unwrap();
        let keys = CheckpointKeys::new([signer.public_key().clone()]);
        let records = chain(50);
        let cp = signer.sign(40, records[39].hash, "2026-01-01T00:00:00Z".into());
        let mut text = String::from("{\"meta\":{\"exported\":\"now\"}}\n");
        for r in &records {
            text.push_str(&serde_json::to_string(r).unwrap());
            text.push('\n');
        }
        text.push_str(&checkpoint_line(&cp));
        text.push('\n');
        let report = verify_export(
            std::io::Cursor::new(text.clone()),
            keys.clone(),
            VerifyOptions::default(),
            |_| {},
        )
        .unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.checkpoints_matched, 1);
        assert_eq!(report.unprotected_tail, 10);

        let tampered = text.replace("\"id\":\"dsc_17\"", "\"id\":\"dsc_17x\"");
        let report = verify_export(
            std::io::Cursor::new(tampered),
            keys.clone(),
            VerifyOptions::default(),
            |_| {},
        )
        .unwrap();
        let p = report.problem.unwrap();
        assert_eq!((p.kind, p.seq), (ProblemKind::Modified, 17));

        // Cutting the file before the checkpointed record is truncation.
        let mut cut = String::new();
        for r in &records[..30] {
            cut.push_str(&serde_json::to_string(r).unwrap());
            cut.push('\n');
        }
        cut.push_str(&checkpoint_line(&cp));
        let report = verify_export(
            std::io::Cursor::new(cut),
            keys,
            VerifyOptions::default(),
            |_| {},
        )
        .unwrap();
        let p = report.problem.unwrap();
        assert_eq!(p.kind, ProblemKind::Truncated, "{p}");
    }
}
