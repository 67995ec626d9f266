//! Benchmark of audit-chain verification over 100,000 realistic records (disclosures with a
//! pseudonym, trace ids, a covenant reference and field lists; ~0.9 KB canonical each) with a
//! signed checkpoint every 1,000. Target: ≥ 1,000,000 records/s on the 2-core reference machine.
//!
//! * `verify/100k` — `verify_slice`: hash every record (hand-written canonical encoder, SHA-256)
//!   on all cores, check the chain and the checkpoints' signatures;
//! * `verify/100k-1-thread` — the same on one thread;
//! * `export/100k` — from JSON Lines text: strict parsing plus verification (what
//!   `poortwachter audit verify --export` does, minus disk reads);
//! * `hash-reference/10k` — the old way of hashing (`policy::canonical_json` through
//!   `serde_json::Value`), for comparison.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gateway::audit::checkpoint::{Checkpoint, CheckpointKeys, CheckpointSigner};
use gateway::audit::record::{AuditEntry, AuditKind, AuditRecord, Outcome, WithheldName, GENESIS};
use gateway::audit::verify::{verify_slice, VerifyOptions};
use gateway::audit::verify_sources::{checkpoint_line, verify_export};
use policy::Sha256Hash;

const RECORDS: usize = 100_000;

fn entry(n: usize) -> AuditEntry {
    let h = |salt: &str| Sha256Hash::of(format!("{salt}{n}").as_bytes()).hex();
    let permit = !n.is_multiple_of(4);
    AuditEntry {
        id: format!("dsc_{}", &h("id")[..26]),
        kind: Some(AuditKind::Disclosure),
        time: format!(
            "2026-03-01T10:{:02}:{:02}.{:06}Z",
            n / 60 % 60,
            n % 60,
            n % 1_000_000
        ),
        trace_id: Some(h("trace")[..32].to_owned()),
        span_id: Some(h("span")[..16].to_owned()),
        requester_oin: Some("00000001823288444000".into()),
        requester_person: Some("sdd-klantmanager-0815".into()),
        source_oin: Some("00000001003214345000".into()),
        subject_pseudonym: Some(h("subject")),
        purpose: Some("job-mediation".into()),
        legal_basis: Some("consent".into()),
        covenant: Some(format!(
            "drechtsteden-max-ww@1#{}",
            Sha256Hash::of(b"covenant")
        )),
        consent_id: permit.then(|| format!("consent_{}", &h("consent")[..22])),
        consent_token: None,
        actor: None,
        fields_released: if permit {
            [
                "available_hours_per_week",
                "own_transport",
                "childcare_arranged",
                "job_ready",
                "wage_value_band",
            ]
            .map(String::from)
            .to_vec()
        } else {
            vec![]
        },
        fields_withheld: vec![
            WithheldName {
                field: "cv".into(),
                reason: "consent-required".into(),
            },
            WithheldName {
                field: "debt_assistance".into(),
                reason: "field-not-granted".into(),
            },
        ],
        decision: Some(if permit {
            Outcome::Permit
        } else {
            Outcome::Refuse
        }),
        reason: (!permit).then(|| "consent-required".into()),
        processing_activity: None,
        foreign_span_id: None,
        live: None,
    }
}

fn fixture() -> (Vec<AuditRecord>, Vec<Checkpoint>, CheckpointKeys) {
    let signer = CheckpointSigner::generate().expect("key");
    let mut prev = GENESIS;
    let log: Vec<AuditRecord> = (1..=RECORDS)
        .map(|n| {
            let r = AuditRecord::chain(n as i64, entry(n), prev);
            prev = r.hash;
            r
        })
        .collect();
    let checkpoints = (1..=RECORDS / 1000)
        .map(|k| {
            let seq = k * 1000;
            signer.sign(seq as i64, log[seq - 1].hash, "2026-03-01T11:00:00Z".into())
        })
        .collect();
    let keys = CheckpointKeys::new([signer.public_key().clone()]);
    (log, checkpoints, keys)
}

fn bench(c: &mut Criterion) {
    let (log, checkpoints, keys) = fixture();
    let bytes: usize = log
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            gateway::audit::canonical::encode_hashed(r.seq, &r.entry, &r.prev_hash, &mut out);
            out.len()
        })
        .sum();
    eprintln!(
        "{} records, {} canonical bytes on average, {} threads available",
        RECORDS,
        bytes / RECORDS,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.sample_size(20);
    g.bench_function("100k", |b| {
        b.iter(|| {
            let report = verify_slice(&log, &checkpoints, &keys, &VerifyOptions::default());
            assert!(report.ok);
            black_box(report)
        })
    });
    g.bench_function("100k-1-thread", |b| {
        let one = VerifyOptions {
            threads: 1,
            ..Default::default()
        };
        b.iter(|| black_box(verify_slice(&log, &checkpoints, &keys, &one)))
    });
    g.finish();

    let mut text = String::new();
    for r in &log {
        text.push_str(&serde_json::to_string(r).expect("json"));
        text.push('\n');
    }
    for cp in &checkpoints {
        text.push_str(&checkpoint_line(cp));
        text.push('\n');
    }
    let mut g = c.benchmark_group("export");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.sample_size(10);
    g.bench_function("100k", |b| {
        b.iter(|| {
            let report = verify_export(
                std::io::Cursor::new(text.as_bytes()),
                keys.clone(),
                VerifyOptions::default(),
                |_| {},
            )
            .expect("reads");
            assert!(report.ok);
            black_box(report)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("hash-reference");
    g.throughput(Throughput::Elements(10_000));
    g.sample_size(10);
    g.bench_function("10k", |b| {
        #[derive(serde::Serialize)]
        struct Hashed<'a> {
            seq: i64,
            #[serde(flatten)]
            entry: &'a AuditEntry,
            prev_hash: &'a Sha256Hash,
        }
        b.iter(|| {
            for r in &log[..10_000] {
                let h = Sha256Hash::of(&policy::canonical_json(&Hashed {
                    seq: r.seq,
                    entry: &r.entry,
                    prev_hash: &r.prev_hash,
                }));
                black_box(h == r.hash);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
