//! Benchmark of `decide` against a large snapshot: 100 covenants × 10 grants over the Max WW
//! catalogue, and 10,000 consents spread over 2,000 subjects. Target: under 2 µs per decision.
//!
//! The requester is party to 10 of the covenants and named in their 100 grants; the grant each
//! request is decided under is the last of those 100, so the grant lookup scans its whole list.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::ops::Range;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use policy::{
    decide, AdminState, Bsn, CatalogueDocument, ConsentBook, ConsentClaims, ConsentRecord,
    Covenant, CovenantEntry, CovenantSet, Decision, DisclosureRequest, Evidence, FieldCatalogue,
    FieldName, Grant, LegalBasis, Oin, Party, PartyRole, RefusalReason, Snapshot,
};

const CATALOGUE_JSON: &str = include_str!("../../schemas/field-catalogue.json");
const COVENANTS: usize = 100;
const GRANTS_PER_COVENANT: usize = 10;
const SUBJECTS: usize = 2_000;
const CONSENTS_PER_SUBJECT: usize = 5;
/// The covenants the requester is party to (and recipient in every grant of).
const REQUESTER_COVENANTS: Range<usize> = 90..100;
/// The covenant and grant every request below is decided under: the requester's last grant.
const TARGET_COVENANT: usize = 99;
const TARGET_GRANT: usize = 8;
const SUBJECT_WITH_CONSENT: usize = 1_234;
const SUBJECT_WITH_REVOKED_CONSENT: usize = 1_500;

fn org(i: usize) -> Oin {
    format!("{:020}", 1_000_000_000_000u64 + i as u64)
        .parse()
        .unwrap()
}

/// The requesting organisation (org 0).
fn requester() -> Oin {
    org(0)
}

fn source_of(covenant: usize) -> Oin {
    org(1 + covenant % 50)
}

fn first_recipient_of(covenant: usize) -> Oin {
    if REQUESTER_COVENANTS.contains(&covenant) {
        requester()
    } else {
        org(51 + covenant % 30)
    }
}

fn covenant_id(i: usize) -> String {
    format!("covenant-{i:03}")
}

/// Ten purposes per covenant, shared by every tenth covenant: the requester's 100 grants all
/// have distinct purposes.
fn purpose(covenant: usize, grant: usize) -> String {
    format!("purpose-{}-{grant}", covenant % 10)
}

/// The first `n` valid BSNs from 100000000 upwards.
fn bsns(n: usize) -> Vec<Bsn> {
    (100_000_000u32..)
        .filter_map(|i| i.to_string().parse().ok())
        .take(n)
        .collect()
}

fn catalogue() -> FieldCatalogue {
    let doc = serde_json::from_str::<CatalogueDocument>(CATALOGUE_JSON).unwrap();
    FieldCatalogue::new(doc).unwrap()
}

/// Ten granted fields per grant, a different window of the non-special fields each time.
fn grant_fields(catalogue: &FieldCatalogue, covenant: usize, grant: usize) -> Vec<FieldName> {
    let ordinary: Vec<FieldName> = catalogue
        .fields()
        .filter(|f| !f.special_category)
        .map(|f| f.name.clone())
        .collect();
    let start = (covenant + grant) % ordinary.len();
    ordinary
        .iter()
        .cycle()
        .skip(start)
        .take(10)
        .cloned()
        .collect()
}

fn covenant(catalogue: &FieldCatalogue, i: usize) -> Covenant {
    let party = |oin: Oin, role: PartyRole| Party {
        name: format!("organisation {oin}"),
        oin,
        role,
    };
    let second_recipient = org(81 + i % 19);
    let grants = (0..GRANTS_PER_COVENANT)
        .map(|j| {
            let consent_required = j % 2 == 0;
            Grant {
                purpose: purpose(i, j).parse().unwrap(),
                source: source_of(i),
                recipients: vec![first_recipient_of(i), second_recipient.clone()],
                fields: grant_fields(catalogue, i, j),
                legal_basis: if consent_required {
                    LegalBasis::Consent
                } else {
                    LegalBasis::PublicTask
                },
                basis_text: "AVG art. 6(1)(a)".into(),
                consent_required,
                special_categories: false,
                retention_days: 90,
                processing_activity: None,
                roles: Vec::new(),
                delivery: Default::default(),
                norms: Default::default(),
            }
        })
        .collect();
    Covenant {
        id: covenant_id(i).parse().unwrap(),
        version: 1,
        title: format!("Covenant {i}"),
        region: "Drechtsteden".into(),
        parties: vec![
            party(source_of(i), PartyRole::Source),
            party(first_recipient_of(i), PartyRole::Recipient),
            party(second_recipient, PartyRole::Recipient),
        ],
        valid_from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        valid_until: NaiveDate::from_ymd_opt(2027, 12, 31).unwrap(),
        grants,
    }
}

fn consent(
    n: usize,
    subject: Bsn,
    covenant: usize,
    grant: usize,
    recipient: Oin,
    fields: Vec<FieldName>,
    revoked: bool,
) -> ConsentRecord {
    ConsentRecord {
        claims: ConsentClaims {
            iss: source_of(covenant),
            sub: subject,
            aud: "poortwachter-bench".into(),
            jti: format!("consent-{n:05}").parse().unwrap(),
            iat: 1_790_000_000,
            nbf: 1_790_000_000,
            exp: 1_830_000_000,
            purpose: purpose(covenant, grant).parse().unwrap(),
            recipients: vec![recipient],
            fields,
            covenant: covenant_id(covenant).parse().unwrap(),
            evidence: Evidence {
                method: "signed-paper-form".into(),
                document_sha256: "00".repeat(32),
                recorded_by: "adviser".into(),
            },
        },
        revoked,
    }
}

struct World {
    covenants: CovenantSet,
    consents: ConsentBook,
    subjects: Vec<Bsn>,
    now: DateTime<Utc>,
}

fn world() -> World {
    let catalogue = catalogue();
    let entries: Vec<CovenantEntry> = (0..COVENANTS)
        .map(|i| {
            let c = covenant(&catalogue, i);
            let signed: BTreeSet<Oin> = c.parties.iter().map(|p| p.oin.clone()).collect();
            CovenantEntry::new(c, AdminState::Open, signed)
        })
        .collect();
    let subjects = bsns(SUBJECTS);
    let mut records = Vec::with_capacity(SUBJECTS * CONSENTS_PER_SUBJECT);
    for (k, &subject) in subjects.iter().enumerate() {
        for m in 0..CONSENTS_PER_SUBJECT {
            let n = records.len();
            let (cov, grant) = (k % COVENANTS, (2 * m) % GRANTS_PER_COVENANT);
            let special =
                (k == SUBJECT_WITH_CONSENT || k == SUBJECT_WITH_REVOKED_CONSENT) && m == 0;
            let record = if special {
                // The consent the request relies on (or would, were it not revoked).
                let fields = grant_fields(&catalogue, TARGET_COVENANT, TARGET_GRANT)
                    .into_iter()
                    .take(8)
                    .collect();
                consent(
                    n,
                    subject,
                    TARGET_COVENANT,
                    TARGET_GRANT,
                    requester(),
                    fields,
                    k == SUBJECT_WITH_REVOKED_CONSENT,
                )
            } else {
                let fields = grant_fields(&catalogue, cov, grant);
                consent(
                    n,
                    subject,
                    cov,
                    grant,
                    first_recipient_of(cov),
                    fields,
                    n % 7 == 3,
                )
            };
            records.push(record);
        }
    }
    assert_eq!(records.len(), 10_000);
    let consents = ConsentBook::new(records);
    World {
        covenants: CovenantSet::new(catalogue, entries),
        consents,
        subjects,
        now: Utc.with_ymd_and_hms(2027, 3, 1, 12, 0, 0).unwrap(),
    }
}

fn request(
    world: &World,
    subject: usize,
    purpose: &str,
    fields: Vec<FieldName>,
) -> DisclosureRequest {
    DisclosureRequest {
        requester: requester(),
        subject: world.subjects[subject],
        purpose: purpose.parse().unwrap(),
        fields,
        actor: None,
    }
}

fn bench_decide(c: &mut Criterion) {
    let world = world();
    let snapshot = Snapshot {
        covenants: &world.covenants,
        consents: &world.consents,
    };
    assert_eq!(world.covenants.entries().len(), COVENANTS);
    assert_eq!(world.consents.len(), SUBJECTS * CONSENTS_PER_SUBJECT);

    let target_purpose = purpose(TARGET_COVENANT, TARGET_GRANT);
    let granted = grant_fields(world.covenants.catalogue(), TARGET_COVENANT, TARGET_GRANT);
    let five: Vec<FieldName> = granted.iter().take(5).cloned().collect();

    let permit_named = request(&world, SUBJECT_WITH_CONSENT, &target_purpose, five.clone());
    // Every field of the grant, named (a request naming none releases nothing).
    let permit_all = request(
        &world,
        SUBJECT_WITH_CONSENT,
        &target_purpose,
        granted.clone(),
    );
    let refuse_revoked = request(
        &world,
        SUBJECT_WITH_REVOKED_CONSENT,
        &target_purpose,
        five.clone(),
    );
    let refuse_purpose = request(&world, SUBJECT_WITH_CONSENT, "debt-counselling", five);

    // Each case must take the path its name says, or the numbers mean nothing.
    match decide(&permit_named, &snapshot, world.now) {
        Decision::Permit(p) => {
            assert_eq!(p.released.len(), 5);
            assert_eq!(p.basis.covenant.id.as_str(), covenant_id(TARGET_COVENANT));
        }
        other => panic!("expected a permit, got {other:?}"),
    }
    match decide(&permit_all, &snapshot, world.now) {
        Decision::Permit(p) => {
            assert_eq!(p.released.len(), 8);
            assert_eq!(p.withheld.len(), 2);
        }
        other => panic!("expected a permit, got {other:?}"),
    }
    assert_eq!(
        decide(&refuse_revoked, &snapshot, world.now).refusal_reason(),
        Some(RefusalReason::ConsentRevoked)
    );
    assert_eq!(
        decide(&refuse_purpose, &snapshot, world.now).refusal_reason(),
        Some(RefusalReason::PurposeNotGranted)
    );

    let mut group = c.benchmark_group("decide");
    for (name, req) in [
        ("permit/5-named-fields", &permit_named),
        ("permit/all-fields", &permit_all),
        ("refuse/consent-revoked", &refuse_revoked),
        ("refuse/purpose-not-granted", &refuse_purpose),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| decide(black_box(req), black_box(&snapshot), black_box(world.now)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decide);
criterion_main!(benches);
