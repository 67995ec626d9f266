//! Random worlds for the property tests: a few covenant versions with random parties, grants,
//! signatures, states and validity; random consents (revoked or not, in or out of time, for
//! random purposes, recipients, covenants and fields); random requests; and an independent reading
//! of which covenant version is in force. Shared by `properties.rs` and `agreement.rs`.

// Each test crate uses its own subset of these.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::LazyLock;

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use policy::{
    AdminState, CatalogueDocument, ConsentClaims, ConsentRecord, Covenant, CovenantEntry,
    CovenantState, DisclosureRequest, Evidence, FieldCatalogue, FieldName, Grant, LegalBasis, Oin,
    Party, PartyRole,
};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};

pub const CATALOGUE_JSON: &str = include_str!("../../../schemas/field-catalogue.json");

/// Few organisations, subjects, purposes and covenant ids, so that random parts often match.
pub const ORGS: [&str; 3] = [
    "00000001003214345000",
    "00000001823288444000",
    "00000001999999999000",
];
pub const SUBJECTS: [&str; 2] = ["111222333", "123456782"];
pub const PURPOSES: [&str; 2] = ["job-mediation", "bijstand-intake"];
pub const COVENANT_IDS: [&str; 2] = ["drechtsteden-max-ww", "rijnmond-max-ww"];
/// A well-formed field name that is not in the catalogue.
pub const UNKNOWN_FIELD: &str = "shoe_size";
pub const DAY: i64 = 86_400;

pub static CATALOGUE: LazyLock<FieldCatalogue> = LazyLock::new(|| {
    let doc = serde_json::from_str::<CatalogueDocument>(CATALOGUE_JSON).unwrap();
    FieldCatalogue::new(doc).unwrap()
});

pub static CATALOGUED: LazyLock<Vec<FieldName>> =
    LazyLock::new(|| CATALOGUE.fields().map(|f| f.name.clone()).collect());

/// Catalogued fields plus one unknown one: what a request may name.
pub static REQUESTABLE: LazyLock<Vec<FieldName>> = LazyLock::new(|| {
    let mut all = CATALOGUED.clone();
    all.push(UNKNOWN_FIELD.parse().unwrap());
    all
});

/// Midnight UTC, 1 January 2027: dates and times are generated around it.
pub fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
}

pub fn base_date() -> NaiveDate {
    base().date_naive()
}

pub fn shift(date: NaiveDate, days: i64) -> NaiveDate {
    if days >= 0 {
        date + Days::new(days.unsigned_abs())
    } else {
        date - Days::new(days.unsigned_abs())
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

pub fn oin() -> impl Strategy<Value = Oin> {
    select(ORGS.to_vec()).prop_map(|s| s.parse().unwrap())
}

pub fn orgs(min: usize) -> impl Strategy<Value = Vec<Oin>> {
    subsequence(ORGS.to_vec(), min..=ORGS.len())
        .prop_map(|v| v.into_iter().map(|s| s.parse().unwrap()).collect())
}

pub fn catalogued_fields() -> impl Strategy<Value = Vec<FieldName>> {
    subsequence(CATALOGUED.clone(), 0..=CATALOGUED.len())
}

pub fn legal_basis() -> impl Strategy<Value = LegalBasis> {
    prop_oneof![
        Just(LegalBasis::Consent),
        Just(LegalBasis::LegalObligation),
        Just(LegalBasis::PublicTask),
    ]
}

pub fn grant() -> impl Strategy<Value = Grant> {
    (
        select(PURPOSES.to_vec()),
        oin(),
        orgs(1),
        catalogued_fields(),
        legal_basis(),
        any::<bool>(),
        any::<bool>(),
        1u32..400,
    )
        .prop_map(
            |(
                purpose,
                source,
                recipients,
                fields,
                legal_basis,
                consent_required,
                special,
                days,
            )| {
                Grant {
                    purpose: purpose.parse().unwrap(),
                    source,
                    recipients,
                    fields,
                    legal_basis,
                    basis_text: "generated".into(),
                    consent_required,
                    special_categories: special,
                    retention_days: days,
                    processing_activity: None,
                    roles: Vec::new(),
                    delivery: Default::default(),
                    norms: Default::default(),
                }
            },
        )
}

pub fn admin_state() -> impl Strategy<Value = AdminState> {
    prop_oneof![
        10 => Just(AdminState::Open),
        1 => Just(AdminState::Suspended),
        1 => Just(AdminState::Terminated),
    ]
}

/// One covenant version. Grants may name non-parties (the covenant need not pass `validate`):
/// `decide` must stay safe on any snapshot. Most versions are signed by every party, some by a
/// random set of organisations.
pub fn covenant_entry() -> impl Strategy<Value = CovenantEntry> {
    (
        select(COVENANT_IDS.to_vec()),
        1u32..=3,
        orgs(2),
        prop::collection::vec(grant(), 1..5),
        -300i64..30,
        60i64..900,
        admin_state(),
        prop::bool::weighted(0.8),
        orgs(0),
    )
        .prop_map(
            |(id, version, parties, grants, from, length, admin, all_sign, extra)| {
                let valid_from = shift(base_date(), from);
                let covenant = Covenant {
                    id: id.parse().unwrap(),
                    version,
                    title: format!("{id} v{version}"),
                    region: "Drechtsteden".into(),
                    parties: parties
                        .iter()
                        .map(|oin| Party {
                            oin: oin.clone(),
                            name: format!("org {oin}"),
                            role: PartyRole::SourceAndRecipient,
                        })
                        .collect(),
                    valid_from,
                    valid_until: shift(valid_from, length),
                    grants,
                };
                let mut signed: BTreeSet<Oin> = extra.into_iter().collect();
                if all_sign {
                    signed.extend(parties);
                }
                CovenantEntry::new(covenant, admin, signed)
            },
        )
}

/// A few covenant versions, at most one per `id@version`.
pub fn covenant_entries() -> impl Strategy<Value = Vec<CovenantEntry>> {
    prop::collection::vec(covenant_entry(), 1..5).prop_map(|entries| {
        let mut seen = BTreeSet::new();
        entries
            .into_iter()
            .filter(|e| seen.insert((e.covenant.id.clone(), e.covenant.version)))
            .collect()
    })
}

pub fn consent() -> impl Strategy<Value = ConsentRecord> {
    (
        (oin(), select(SUBJECTS.to_vec()), select(PURPOSES.to_vec())),
        (orgs(1), catalogued_fields(), select(COVENANT_IDS.to_vec())),
        (-200 * DAY..30 * DAY, 30 * DAY..400 * DAY, 0..10 * DAY),
        prop::bool::weighted(0.25),
    )
        .prop_map(
            |((iss, sub, purpose), (recipients, fields, covenant), (nbf, length, age), revoked)| {
                let nbf = base().timestamp() + nbf;
                ConsentRecord {
                    claims: ConsentClaims {
                        iss,
                        sub: sub.parse().unwrap(),
                        aud: "poortwachter-test".into(),
                        // Replaced by a unique id in `consents()`.
                        jti: "unset".parse().unwrap(),
                        iat: nbf - age,
                        nbf,
                        exp: nbf + length,
                        purpose: purpose.parse().unwrap(),
                        recipients,
                        fields,
                        covenant: covenant.parse().unwrap(),
                        evidence: Evidence {
                            method: "signed-paper-form".into(),
                            document_sha256: "00".repeat(32),
                            recorded_by: "adviser".into(),
                        },
                    },
                    revoked,
                }
            },
        )
}

/// Consents with unique ids (`jti` is unique per issuer in practice; here globally).
pub fn consents() -> impl Strategy<Value = Vec<ConsentRecord>> {
    prop::collection::vec(consent(), 0..12).prop_map(|mut records| {
        for (i, r) in records.iter_mut().enumerate() {
            r.claims.jti = format!("consent-{i}").parse().unwrap();
        }
        records
    })
}

pub fn request() -> impl Strategy<Value = DisclosureRequest> {
    (
        oin(),
        select(SUBJECTS.to_vec()),
        select(PURPOSES.to_vec()),
        prop_oneof![
            1 => Just(Vec::new()),
            3 => prop::collection::vec(select(REQUESTABLE.clone()), 1..7),
        ],
    )
        .prop_map(|(requester, subject, purpose, fields)| DisclosureRequest {
            requester,
            subject: subject.parse().unwrap(),
            purpose: purpose.parse().unwrap(),
            fields,
            actor: None,
        })
}

/// Whether `entry` is the version of its covenant in force on `today`: active itself, and no
/// higher version of the same covenant active.
pub fn in_force(entries: &[CovenantEntry], entry: &CovenantEntry, today: NaiveDate) -> bool {
    entry.state_on(today) == CovenantState::Active
        && !entries.iter().any(|o| {
            o.covenant.id == entry.covenant.id
                && o.covenant.version > entry.covenant.version
                && o.state_on(today) == CovenantState::Active
        })
}
