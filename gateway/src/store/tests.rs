//! Store tests run against every backend: SQLite always, PostgreSQL when
//! `POORTWACHTER_TEST_POSTGRES_URL` names a server (each test in a database of its own). With
//! `POORTWACHTER_REQUIRE_POSTGRES=1` a missing server fails the tests instead of skipping it.

use std::sync::Arc;

use super::{
    AuditSelect, CheckpointSign, ConsentRow, CovenantSignatureRow, CovenantVersionRow, HandoverRow,
    Store, StoreError,
};
use crate::audit::checkpoint::{CheckpointKeys, CheckpointSigner};
use crate::audit::record::{AuditEntry, AuditKind, AuditRecord, Outcome, GENESIS};
use crate::config::{DatabaseSection, SslMode};
use crate::crypto::Sealed;

/// One backend under test: its URL, and the temporary directory that holds a SQLite file.
struct TestDb {
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    async fn open(&self) -> Store {
        Store::open(&section(&self.url, 4))
            .await
            .expect("store opens")
    }
}

/// The database section for a test URL: a PostgreSQL test server is reached over TLS
/// (verify-full) when `POORTWACHTER_TEST_POSTGRES_CA` names its CA (as `tests/run-all.sh` does),
/// otherwise in plaintext, which only a server on loopback accepts.
fn section(url: &str, max_connections: u32) -> DatabaseSection {
    let mut database = DatabaseSection::new(url);
    database.max_connections = max_connections;
    if database.is_postgres() {
        match std::env::var_os("POORTWACHTER_TEST_POSTGRES_CA") {
            Some(ca) => database.sslrootcert = Some(ca.into()),
            None => database.sslmode = SslMode::Disable,
        }
    }
    database
}

/// A fresh, empty database on the PostgreSQL server named by the environment, if any.
async fn fresh_postgres() -> Option<String> {
    let Ok(admin) = std::env::var("POORTWACHTER_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("POORTWACHTER_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "POORTWACHTER_REQUIRE_POSTGRES=1 but POORTWACHTER_TEST_POSTGRES_URL is not set"
        );
        return None;
    };
    use sqlx::Connection;
    let name = format!(
        "pw_unit_{}",
        hex::encode(crate::crypto::random_bytes(8).unwrap())
    );
    let options = super::postgres::connect_options(&section(&admin, 1)).expect("test server URL");
    let mut conn = sqlx::PgConnection::connect_with(&options)
        .await
        .expect("the test PostgreSQL server accepts connections");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("test database created");
    let base = admin.split('?').next().unwrap_or(&admin);
    let (server, _) = base.rsplit_once('/').expect("URL has a database path");
    Some(format!("{server}/{name}"))
}

/// Every backend available here, each with a fresh database.
async fn backends() -> Vec<TestDb> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut all = vec![TestDb {
        url: format!("sqlite://{}/t.db", dir.path().display()),
        _dir: Some(dir),
    }];
    if let Some(url) = fresh_postgres().await {
        all.push(TestDb { url, _dir: None });
    }
    all
}

fn sealed(tag: u8) -> Sealed {
    Sealed {
        wrapped_key: vec![tag, 0, 255],
        ciphertext: vec![tag; 40],
    }
}

fn consent(jti: &str, subject: &str) -> ConsentRow {
    ConsentRow {
        jti: jti.into(),
        issuer_oin: "00000001003214345000".into(),
        subject_pseudonym: subject.into(),
        purpose: "job-mediation".into(),
        covenant_id: "drechtsteden-max-ww".into(),
        not_before: 10,
        expires_at: 1_000,
        registered_at: 11,
        revoked_at: None,
        sealed: sealed(1),
    }
}

fn handover(subject: &str, consent: Option<&str>, expires_at: i64) -> HandoverRow {
    HandoverRow {
        purpose: "job-mediation".into(),
        subject_pseudonym: subject.into(),
        source_oin: "00000001003214345000".into(),
        covenant_id: "drechtsteden-max-ww".into(),
        consent_jti: consent.map(Into::into),
        stored_at: 12,
        expires_at,
        sealed: sealed(2),
    }
}

#[tokio::test]
async fn consents_and_handovers_round_trip_and_revocation_destroys_the_records() {
    for db in backends().await {
        let store = db.open().await;
        store.ping().await.unwrap();
        store.insert_consent(&consent("c1", "p1")).await.unwrap();
        store.insert_consent(&consent("c0", "p1")).await.unwrap();
        assert!(matches!(
            store.insert_consent(&consent("c1", "p2")).await,
            Err(StoreError::Duplicate)
        ));
        let got = store.consent("c1").await.unwrap().expect("stored");
        assert_eq!(got.sealed, sealed(1));
        assert_eq!((got.not_before, got.revoked_at), (10, None));
        let jtis: Vec<String> = store
            .consents_for_subject("p1")
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.jti)
            .collect();
        assert_eq!(jtis, ["c0", "c1"], "{}", db.url);

        store
            .put_handover(&handover("p1", Some("c1"), 500))
            .await
            .unwrap();
        let mut replaced = handover("p1", Some("c1"), 600);
        replaced.sealed = sealed(3);
        store.put_handover(&replaced).await.unwrap();
        store.put_handover(&handover("p2", None, 50)).await.unwrap();
        let h = store
            .handover("job-mediation", "p1", "00000001003214345000")
            .await
            .unwrap()
            .expect("stored");
        assert_eq!((h.expires_at, h.sealed), (600, sealed(3)));

        assert_eq!(store.revoke_consent("c1", 99).await.unwrap(), Some(1));
        assert_eq!(store.revoke_consent("c1", 100).await.unwrap(), None);
        assert_eq!(
            store.consent("c1").await.unwrap().unwrap().revoked_at,
            Some(99)
        );
        assert!(store
            .handover("job-mediation", "p1", "00000001003214345000")
            .await
            .unwrap()
            .is_none());
        assert_eq!(store.sweep_handovers(50).await.unwrap(), 1);
        assert_eq!(store.sweep_handovers(50).await.unwrap(), 0);
    }
}

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

/// Twenty chained records: requesters A, B, U in a fixed pattern.
async fn with_records(store: &Store) {
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
}

fn seqs(records: &[AuditRecord]) -> Vec<i64> {
    records.iter().map(|r| r.seq).collect()
}

#[tokio::test]
async fn party_scope_matches_requester_or_source_only() {
    for db in backends().await {
        let store = db.open().await;
        with_records(&store).await;
        let a = AuditSelect {
            party: Some("A".into()),
            ..Default::default()
        };
        let got = store.audit_select(&a, 100).await.unwrap();
        assert!(got
            .iter()
            .all(|r| r.entry.requester_oin.as_deref() == Some("A")));
        assert_eq!(got.len(), 10, "{}", db.url);
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
}

#[tokio::test]
async fn filters_combine_and_pages_follow_the_cursor() {
    for db in backends().await {
        let store = db.open().await;
        with_records(&store).await;
        let refusals = AuditSelect {
            decision: Some("refuse".into()),
            reason: Some("consent-required".into()),
            time_from: Some("2026-11-05T00:00:00.000000Z".into()),
            time_to: Some("2026-11-14T00:00:00.000000Z".into()),
            ..Default::default()
        };
        let got = store.audit_select(&refusals, 100).await.unwrap();
        assert_eq!(seqs(&got), vec![5, 6, 9, 10, 13], "{}", db.url);
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
}

#[tokio::test]
async fn values_are_bound_not_spliced() {
    for db in backends().await {
        let store = db.open().await;
        with_records(&store).await;
        let hostile = AuditSelect {
            purpose: Some("x' OR '1'='1".into()),
            ..Default::default()
        };
        assert!(store.audit_select(&hostile, 100).await.unwrap().is_empty());
        let hostile = AuditSelect {
            purpose: Some("$1".into()),
            reason: Some("?".into()),
            ..Default::default()
        };
        assert!(store.audit_select(&hostile, 100).await.unwrap().is_empty());
    }
}

/// Writers on separate connection pools (as two gateway instances would be) append concurrently;
/// the result is one chain: every seq once, each record linked to the one before, every
/// checkpoint over the record it names, and everything verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_chained_appends_from_separate_pools_form_one_unforked_chain() {
    for db in backends().await {
        let signer = Arc::new(CheckpointSigner::generate().unwrap());
        let mut tasks = Vec::new();
        for writer in 0..4 {
            let store = db.open().await;
            let signer = signer.clone();
            tasks.push(tokio::spawn(async move {
                let sign: &CheckpointSign = &(Arc::new(move |seq, head| {
                    signer.sign(seq, head, "2026-11-01T00:00:00Z".into())
                }) as CheckpointSign);
                let mut written = Vec::new();
                for batch in 0..15 {
                    let entries: Vec<AuditEntry> = (0..=(batch % 3))
                        .map(|k| AuditEntry {
                            id: format!("w{writer}-b{batch}-{k}"),
                            ..Default::default()
                        })
                        .collect();
                    let done = store.append_chained(&entries, 7, sign).await.unwrap();
                    written.extend(done.records.into_iter().map(|r| (r.seq, r.entry.id)));
                    if batch % 5 == 4 {
                        store.checkpoint_head(sign).await.unwrap();
                    }
                }
                written
            }));
        }
        let mut written = Vec::new();
        for t in tasks {
            written.extend(t.await.unwrap());
        }
        written.sort();
        let store = db.open().await;
        let records = store.audit_records(0, 10_000).await.unwrap();
        assert_eq!(records.len(), 4 * 30, "{}", db.url);
        let mut prev = GENESIS;
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.seq, i as i64 + 1);
            assert_eq!(
                r.prev_hash, prev,
                "record {} links to its predecessor",
                r.seq
            );
            assert!(r.hash_is_valid());
            assert_eq!(
                written[i],
                (r.seq, r.entry.id.clone()),
                "writer saw its seq"
            );
            prev = r.hash;
        }
        // A checkpoint is written in the commit that brings the records no checkpoint covers to 7
        // or more, and every commit here adds at most 3: so, however the writers interleave (and
        // the explicit checkpoints fall), at most 9 records lie between two checkpoints and at most
        // 6 after the last. (A count like "at least 120 / 7 checkpoints" does not follow from that
        // and failed now and then.)
        let checkpoints = store.audit_checkpoints(0, i64::MAX).await.unwrap();
        let mut covered = 0;
        for cp in &checkpoints {
            assert!(
                cp.seq > covered && cp.seq - covered <= 9,
                "checkpoint at {} after one at {covered} ({})",
                cp.seq,
                db.url
            );
            assert_eq!(cp.head, records[cp.seq as usize - 1].hash);
            covered = cp.seq;
        }
        assert!(120 - covered <= 6, "last checkpoint at {covered}");
        let report = crate::audit::verify_sources::verify_store(
            &store,
            CheckpointKeys::new([signer.public_key().clone()]),
            Default::default(),
            |_| {},
        )
        .await
        .unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.last_seq, Some(120));
    }
}

#[tokio::test]
async fn read_only_store_reads_the_log_but_cannot_write_it() {
    for db in backends().await {
        let store = db.open().await;
        with_records(&store).await;
        let ro = Store::open_read_only(&section(&db.url, 1)).await.unwrap();
        assert_eq!(ro.audit_count().await.unwrap(), 20);
        assert!(ro.audit_hash_at(20).await.unwrap().is_some());
        let more = AuditRecord::chain(21, entry(21, "A", None, Outcome::Permit), GENESIS);
        assert!(ro.append_audit(&[more]).await.is_err(), "{}", db.url);
        let signer = Arc::new(CheckpointSigner::generate().unwrap());
        let sign: CheckpointSign =
            Arc::new(move |seq, head| signer.sign(seq, head, "2026-11-01T00:00:00Z".into()));
        let chained = ro
            .append_chained(&[entry(21, "A", None, Outcome::Permit)], 100, &sign)
            .await;
        assert!(chained.is_err(), "{}", db.url);
        assert!(ro.checkpoint_head(&sign).await.is_err(), "{}", db.url);
        assert_eq!(store.audit_count().await.unwrap(), 20);
    }
}

/// An in-memory SQLite database would be a different, empty database for every connection (the
/// direct reads, the audit writer, the pool): refused with a message that says what to use.
#[tokio::test]
async fn an_in_memory_sqlite_url_is_refused_with_a_clear_error() {
    for url in ["sqlite::memory:", "sqlite://file.db?mode=memory"] {
        let err = Store::open(&section(url, 1)).await.unwrap_err();
        assert!(matches!(err, StoreError::InMemory), "{url}: {err}");
        assert!(err.to_string().contains("name a file"), "{err}");
    }
}

fn version_row(id: &str, version: u32) -> CovenantVersionRow {
    CovenantVersionRow {
        covenant_id: id.parse().unwrap(),
        version,
        document: "{}".into(),
        hash: policy::Sha256Hash::of(b"{}"),
        admin: policy::AdminState::Open,
        created_at: 1,
        updated_at: 1,
    }
}

#[tokio::test]
async fn every_covenant_change_moves_the_generation_and_nothing_else_does() {
    for db in backends().await {
        let store = db.open().await;
        let g0 = store.covenant_generation().await.unwrap();
        store
            .insert_covenant_version(&version_row("pilot", 1), &[])
            .await
            .unwrap();
        let g1 = store.covenant_generation().await.unwrap();
        assert!(g1 > g0, "{}", db.url);
        let sig = CovenantSignatureRow {
            covenant_id: "pilot".parse().unwrap(),
            version: 1,
            party: "00000001003214345000".parse().unwrap(),
            jws: "a..b".into(),
            signed_at: 2,
        };
        assert!(store.add_covenant_signature_if_absent(&sig).await.unwrap());
        let g2 = store.covenant_generation().await.unwrap();
        assert!(g2 > g1);
        assert!(!store.add_covenant_signature_if_absent(&sig).await.unwrap());
        assert_eq!(store.covenant_generation().await.unwrap(), g2, "no change");
        assert!(store.put_covenant_signature(&sig).await.unwrap());
        let g3 = store.covenant_generation().await.unwrap();
        assert!(g3 > g2);
        let changed = store
            .set_covenant_admin_state(
                &"pilot".parse().unwrap(),
                &[policy::AdminState::Open],
                policy::AdminState::Suspended,
                3,
            )
            .await
            .unwrap();
        assert_eq!(changed, 1);
        let g4 = store.covenant_generation().await.unwrap();
        assert!(g4 > g3);
        store.insert_consent(&consent("c", "p")).await.unwrap();
        store.append_audit(&[]).await.unwrap();
        assert_eq!(store.covenant_generation().await.unwrap(), g4);
        let versions = store.covenant_versions(None).await.unwrap();
        assert_eq!(versions[0].admin, policy::AdminState::Suspended);
        assert_eq!(store.covenant_signatures(None).await.unwrap().len(), 1);
    }
}

/// Audit retention deletes only a prefix that ends at a checkpointed record older than the cut;
/// what is left starts at that record and verifies as a pruned log.
#[tokio::test]
async fn pruning_keeps_the_checkpointed_record_and_the_rest_verifies() {
    for db in backends().await {
        let store = db.open().await;
        let signer = Arc::new(CheckpointSigner::generate().unwrap());
        let signs = signer.clone();
        let sign: &CheckpointSign =
            &(Arc::new(move |seq, head| signs.sign(seq, head, "2026-11-01T00:00:00Z".into()))
                as CheckpointSign);
        for i in 0..12 {
            let time = if i < 8 {
                "2020-01-01T00:00:00.000000Z"
            } else {
                "2026-11-01T00:00:00.000000Z"
            };
            let entry = AuditEntry {
                id: format!("p{i}"),
                time: time.into(),
                ..Default::default()
            };
            store.append_chained(&[entry], 3, sign).await.unwrap();
        }
        // Checkpoints at 3, 6, 9, 12; records 1..=8 are old: the anchor is 6.
        let anchor = store
            .audit_prune_anchor("2025-01-01T00:00:00.000000Z")
            .await
            .unwrap();
        assert_eq!(anchor, Some(6), "{}", db.url);
        assert_eq!(store.prune_audit_before(6).await.unwrap(), 5);
        let left = store.audit_records(0, 100).await.unwrap();
        assert_eq!(left.first().map(|r| r.seq), Some(6));
        assert_eq!(left.len(), 7);
        let options = crate::audit::verify::VerifyOptions {
            allow_pruned_prefix: true,
            ..Default::default()
        };
        let report = crate::audit::verify_sources::verify_store(
            &store,
            CheckpointKeys::new([signer.public_key().clone()]),
            options,
            |_| {},
        )
        .await
        .unwrap();
        assert!(report.ok, "{}: {report:?}", db.url);
    }
}
