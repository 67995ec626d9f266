//! Unit tests of `decide`, covenant validation and the canonical covenant hash, against the real
//! Max WW catalogue and the Drechtsteden example documents in `schemas/`.
//!
//! Every refusal and withheld reason is asserted exactly, with the exact field sets, so a change
//! in behaviour fails a test.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use policy::{
    decide, AdminState, Basis, CatalogueDocument, ConsentBook, ConsentClaims, ConsentRecord,
    Covenant, CovenantEntry, CovenantSet, Decision, DisclosureRequest, DocumentFormat,
    FieldCatalogue, FieldName, Grant, LegalBasis, Oin, Party, PartyRole, Permit, Refusal,
    RefusalReason, Snapshot, Withheld, WithheldReason,
};

const CATALOGUE_JSON: &str = include_str!("../../schemas/field-catalogue.json");
const COVENANT_TOML: &str = include_str!("../../schemas/examples/covenant-drechtsteden.toml");
const COVENANT_JSON: &str = include_str!("../../schemas/examples/covenant-drechtsteden.json");
const CONSENT_JSON: &str = include_str!("../../schemas/examples/consent-claims.json");

/// UWV: the source in the example covenant.
const UWV: &str = "00000001003214345000";
/// Sociale Dienst Drechtsteden: the recipient in the example covenant.
const SDD: &str = "00000001823288444000";
/// An organisation that is party to nothing in the example.
const OUTSIDER: &str = "00000001999999999000";
/// The subject of the example consent.
const CLIENT: &str = "111222333";
/// Another valid BSN.
const OTHER_CLIENT: &str = "123456782";
/// The `jti` of the example consent.
const CONSENT_ID: &str = "consent-2026-0001";

/// The fields the example consent names, in the job-mediation grant's order.
const CONSENTED: [&str; 9] = [
    "available_hours_per_week",
    "own_transport",
    "driving_licence",
    "childcare_arranged",
    "education_level",
    "job_ready",
    "wage_value_band",
    "ww_end_date",
    "adviser_contact",
];

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn oin(s: &str) -> Oin {
    s.parse().unwrap()
}

fn field(s: &str) -> FieldName {
    s.parse().unwrap()
}

fn fields(names: &[&str]) -> Vec<FieldName> {
    names.iter().map(|n| field(n)).collect()
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// Noon UTC on `day`.
fn at(day: &str) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date(day).and_hms_opt(12, 0, 0).unwrap())
}

/// Inside the example covenant's validity (2026–2027) and the example consent's
/// (2026-11-18 .. 2027-11-18).
fn now() -> DateTime<Utc> {
    at("2027-03-01")
}

fn catalogue() -> FieldCatalogue {
    let doc = serde_json::from_str::<CatalogueDocument>(CATALOGUE_JSON).unwrap();
    FieldCatalogue::new(doc).unwrap()
}

/// The register entry the example covenant's job-mediation grant names.
const MAX_WW_ACTIVITY: &str =
    "https://register.drechtsteden.example/verwerkingsactiviteiten/max-ww-bemiddeling";

fn example_covenant() -> Covenant {
    Covenant::parse(COVENANT_TOML, DocumentFormat::Toml).unwrap()
}

fn example_consent() -> ConsentClaims {
    serde_json::from_str(CONSENT_JSON).unwrap()
}

fn valid(claims: ConsentClaims) -> ConsentRecord {
    ConsentRecord {
        claims,
        revoked: false,
    }
}

fn revoked(claims: ConsentClaims) -> ConsentRecord {
    ConsentRecord {
        claims,
        revoked: true,
    }
}

fn signed_by_all(covenant: &Covenant) -> BTreeSet<Oin> {
    covenant.parties.iter().map(|p| p.oin.clone()).collect()
}

/// A covenant version that every party has signed and nobody suspended.
fn open_signed(covenant: Covenant) -> CovenantEntry {
    let signed = signed_by_all(&covenant);
    CovenantEntry::new(covenant, AdminState::Open, signed)
}

fn request(requester: &str, purpose: &str, asked: &[&str]) -> DisclosureRequest {
    DisclosureRequest {
        requester: oin(requester),
        subject: CLIENT.parse().unwrap(),
        purpose: purpose.parse().unwrap(),
        fields: fields(asked),
        actor: None,
    }
}

fn run(
    entries: Vec<CovenantEntry>,
    consents: Vec<ConsentRecord>,
    request: &DisclosureRequest,
    now: DateTime<Utc>,
) -> Decision {
    let covenants = CovenantSet::new(catalogue(), entries);
    let consents = ConsentBook::new(consents);
    let snapshot = Snapshot {
        covenants: &covenants,
        consents: &consents,
    };
    decide(request, &snapshot, now)
}

/// The example world: covenant v1 signed by both parties, the example consent on record.
fn run_example(request: &DisclosureRequest) -> Decision {
    run(
        vec![open_signed(example_covenant())],
        vec![valid(example_consent())],
        request,
        now(),
    )
}

fn job_mediation_basis(covenant: &Covenant, consent: Option<&str>) -> Basis {
    Basis {
        covenant: covenant.reference(),
        source: oin(UWV),
        legal_basis: LegalBasis::Consent,
        consent: consent.map(|c| c.parse().unwrap()),
        retention_days: 90,
        processing_activity: Some(MAX_WW_ACTIVITY.into()),
        delivery: Default::default(),
        norms: Default::default(),
    }
}

fn withheld(name: &str, reason: WithheldReason) -> Withheld {
    Withheld {
        field: field(name),
        reason,
    }
}

fn expect_permit(decision: Decision) -> Permit {
    match decision {
        Decision::Permit(p) => p,
        Decision::Refuse(r) => panic!("expected a permit, got {r:?}"),
    }
}

fn expect_refusal(decision: Decision) -> Refusal {
    match decision {
        Decision::Refuse(r) => r,
        Decision::Permit(p) => panic!("expected a refusal, got {p:?}"),
    }
}

/// A refusal before any grant was found: no basis, nothing withheld.
fn assert_bare_refusal(decision: Decision, reason: RefusalReason) {
    assert_eq!(
        expect_refusal(decision),
        Refusal {
            reason,
            basis: None,
            withheld: Vec::new(),
        }
    );
}

/// A refusal at the consent step of the job-mediation grant: basis without consent.
fn assert_consent_refusal(decision: Decision, reason: RefusalReason) {
    assert_eq!(
        expect_refusal(decision),
        Refusal {
            reason,
            basis: Some(job_mediation_basis(&example_covenant(), None)),
            withheld: Vec::new(),
        }
    );
}

/// A job-mediation request for three fields the example consent names.
fn job_mediation_request() -> DisclosureRequest {
    request(
        SDD,
        "job-mediation",
        &["available_hours_per_week", "job_ready", "ww_end_date"],
    )
}

/// A small covenant between UWV and SDD with one grant, valid through 2026–2027.
fn covenant_with_grant(id: &str, grant: Grant) -> Covenant {
    Covenant {
        id: id.parse().unwrap(),
        version: 1,
        title: format!("Test covenant {id}"),
        region: "Drechtsteden".into(),
        parties: vec![
            Party {
                oin: oin(UWV),
                name: "UWV".into(),
                role: PartyRole::Source,
            },
            Party {
                oin: oin(SDD),
                name: "Sociale Dienst Drechtsteden".into(),
                role: PartyRole::Recipient,
            },
        ],
        valid_from: date("2026-01-01"),
        valid_until: date("2027-12-31"),
        grants: vec![grant],
    }
}

fn legal_obligation_grant(purpose: &str, granted: &[&str], special: bool) -> Grant {
    Grant {
        purpose: purpose.parse().unwrap(),
        source: oin(UWV),
        recipients: vec![oin(SDD)],
        fields: fields(granted),
        legal_basis: LegalBasis::LegalObligation,
        basis_text: "Participatiewet art. 64".into(),
        consent_required: false,
        special_categories: special,
        retention_days: 30,
        processing_activity: None,
        roles: Vec::new(),
        delivery: Default::default(),
        norms: Default::default(),
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures are what they claim to be
// ---------------------------------------------------------------------------------------------

#[test]
fn example_fixtures_parse_and_the_example_consent_is_valid_at_the_test_time() {
    let consent = example_consent();
    assert!(consent.in_validity(now().timestamp()));
    assert_eq!(consent.fields, fields(&CONSENTED));
    assert_eq!(
        open_signed(example_covenant()).state_on(now().date_naive()),
        policy::CovenantState::Active
    );
    let catalogue = catalogue();
    assert!(catalogue.is_special(&field("mental_health_complaints")));
    assert!(catalogue.is_special(&field("addiction_treatment_history")));
    assert!(!catalogue.contains(&field("shoe_size")));
}

#[test]
fn refusal_and_withheld_reasons_have_stable_strings() {
    let refusals: Vec<&str> = RefusalReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        refusals,
        [
            "no-active-covenant",
            "purpose-not-granted",
            "consent-required",
            "consent-revoked",
            "consent-expired",
            "field-not-granted",
            "actor-required",
            "role-not-granted",
        ]
    );
    for reason in RefusalReason::ALL {
        assert_eq!(
            serde_json::to_value(reason).unwrap(),
            serde_json::Value::from(reason.as_str())
        );
    }
    let withheld = [
        (WithheldReason::UnknownField, "unknown-field"),
        (WithheldReason::FieldNotGranted, "field-not-granted"),
        (
            WithheldReason::SpecialCategoryNotGranted,
            "special-category-not-granted",
        ),
        (
            WithheldReason::SpecialCategoryNotConsented,
            "special-category-not-consented",
        ),
        (
            WithheldReason::ConsentDoesNotCover,
            "consent-does-not-cover-field",
        ),
    ];
    for (reason, text) in withheld {
        assert_eq!(reason.as_str(), text);
        assert_eq!(reason.to_string(), text);
        assert_eq!(
            serde_json::to_value(reason).unwrap(),
            serde_json::Value::from(text)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Permits and their basis
// ---------------------------------------------------------------------------------------------

#[test]
fn consented_fields_are_released_in_request_order() {
    let permit = expect_permit(run_example(&request(
        SDD,
        "job-mediation",
        &["ww_end_date", "available_hours_per_week", "job_ready"],
    )));
    assert_eq!(
        permit.released,
        fields(&["ww_end_date", "available_hours_per_week", "job_ready"])
    );
    assert_eq!(permit.withheld, Vec::new());
}

#[test]
fn permit_names_covenant_id_version_hash_legal_basis_and_consent_id() {
    let covenant = example_covenant();
    let permit = expect_permit(run_example(&job_mediation_request()));
    assert_eq!(
        permit.basis,
        job_mediation_basis(&covenant, Some(CONSENT_ID))
    );
    assert_eq!(
        permit.basis.covenant.to_string(),
        format!("drechtsteden-max-ww@1#{}", covenant.canonical_hash())
    );
    assert!(permit
        .basis
        .covenant
        .to_string()
        .starts_with("drechtsteden-max-ww@1#sha256:"));
    assert_eq!(permit.basis.legal_basis.as_str(), "consent");
    assert_eq!(
        permit.basis.consent.as_ref().map(|c| c.as_str()),
        Some(CONSENT_ID)
    );
}

#[test]
fn empty_field_list_releases_nothing_even_with_a_consent() {
    let refusal = expect_refusal(run_example(&request(SDD, "job-mediation", &[])));
    assert_eq!(refusal.reason, RefusalReason::FieldNotGranted);
    assert_eq!(refusal.withheld, Vec::new());
    let covenant = example_covenant();
    assert_eq!(
        refusal.basis,
        Some(job_mediation_basis(&covenant, Some(CONSENT_ID)))
    );
}

#[test]
fn empty_field_list_under_legal_obligation_releases_nothing() {
    let refusal = expect_refusal(run(
        vec![open_signed(example_covenant())],
        vec![],
        &request(SDD, "bijstand-intake", &[]),
        now(),
    ));
    assert_eq!(refusal.reason, RefusalReason::FieldNotGranted);
    assert_eq!(refusal.withheld, Vec::new());
}

#[test]
fn repeated_request_fields_are_released_once() {
    let permit = expect_permit(run_example(&request(
        SDD,
        "job-mediation",
        &["job_ready", "job_ready", "cv", "cv", "ww_end_date"],
    )));
    assert_eq!(permit.released, fields(&["job_ready", "ww_end_date"]));
    assert_eq!(
        permit.withheld,
        vec![withheld("cv", WithheldReason::ConsentDoesNotCover)]
    );
}

#[test]
fn bijstand_intake_under_legal_obligation_needs_no_consent() {
    let covenant = example_covenant();
    let permit = expect_permit(run(
        vec![open_signed(covenant.clone())],
        vec![],
        &request(SDD, "bijstand-intake", &["ww_end_date", "adviser_contact"]),
        now(),
    ));
    assert_eq!(permit.released, fields(&["ww_end_date", "adviser_contact"]));
    assert_eq!(permit.withheld, Vec::new());
    assert_eq!(
        permit.basis,
        Basis {
            covenant: covenant.reference(),
            source: oin(UWV),
            legal_basis: LegalBasis::LegalObligation,
            consent: None,
            retention_days: 365,
            processing_activity: Some(
                "https://register.drechtsteden.example/verwerkingsactiviteiten/bijstand-intake"
                    .into()
            ),
            delivery: Default::default(),
            norms: Default::default(),
        }
    );
}

#[test]
fn bijstand_intake_is_not_blocked_by_a_revoked_consent() {
    let mut claims = example_consent();
    claims.purpose = "bijstand-intake".parse().unwrap();
    let permit = expect_permit(run(
        vec![open_signed(example_covenant())],
        vec![revoked(claims)],
        &request(SDD, "bijstand-intake", &["ww_end_date"]),
        now(),
    ));
    assert_eq!(permit.released, fields(&["ww_end_date"]));
    assert_eq!(permit.basis.consent, None);
}

// ---------------------------------------------------------------------------------------------
// no-active-covenant
// ---------------------------------------------------------------------------------------------

#[test]
fn no_covenant_at_all_is_refused_with_no_active_covenant() {
    assert_bare_refusal(
        run(
            vec![],
            vec![valid(example_consent())],
            &job_mediation_request(),
            now(),
        ),
        RefusalReason::NoActiveCovenant,
    );
}

#[test]
fn suspended_covenant_is_refused_with_no_active_covenant() {
    let covenant = example_covenant();
    let signed = signed_by_all(&covenant);
    assert_bare_refusal(
        run(
            vec![CovenantEntry::new(covenant, AdminState::Suspended, signed)],
            vec![valid(example_consent())],
            &job_mediation_request(),
            now(),
        ),
        RefusalReason::NoActiveCovenant,
    );
}

#[test]
fn terminated_covenant_is_refused_with_no_active_covenant() {
    let covenant = example_covenant();
    let signed = signed_by_all(&covenant);
    assert_bare_refusal(
        run(
            vec![CovenantEntry::new(covenant, AdminState::Terminated, signed)],
            vec![valid(example_consent())],
            &job_mediation_request(),
            now(),
        ),
        RefusalReason::NoActiveCovenant,
    );
}

#[test]
fn expired_covenant_is_refused_with_no_active_covenant() {
    let mut covenant = example_covenant();
    covenant.valid_until = date("2027-02-28");
    assert_bare_refusal(
        run(
            vec![open_signed(covenant)],
            vec![valid(example_consent())],
            &job_mediation_request(),
            now(),
        ),
        RefusalReason::NoActiveCovenant,
    );
}

#[test]
fn covenant_is_in_force_through_its_last_day_and_not_after() {
    let mut covenant = example_covenant();
    covenant.valid_until = date("2027-03-01");
    let entries = vec![open_signed(covenant)];
    let last_moment = Utc.with_ymd_and_hms(2027, 3, 1, 23, 59, 59).unwrap();
    let next_day = Utc.with_ymd_and_hms(2027, 3, 2, 0, 0, 0).unwrap();
    assert!(run(
        entries.clone(),
        vec![valid(example_consent())],
        &job_mediation_request(),
        last_moment
    )
    .is_permit());
    assert_bare_refusal(
        run(
            entries,
            vec![valid(example_consent())],
            &job_mediation_request(),
            next_day,
        ),
        RefusalReason::NoActiveCovenant,
    );
}

#[test]
fn covenant_not_yet_valid_is_refused_with_no_active_covenant() {
    let mut covenant = example_covenant();
    covenant.valid_from = date("2027-03-02");
    assert_bare_refusal(
        run(
            vec![open_signed(covenant)],
            vec![valid(example_consent())],
            &job_mediation_request(),
            now(),
        ),
        RefusalReason::NoActiveCovenant,
    );
}

#[test]
fn covenant_not_signed_by_every_party_is_refused_with_no_active_covenant() {
    let covenant = example_covenant();
    let only_uwv: BTreeSet<Oin> = [oin(UWV)].into();
    assert_bare_refusal(
        run(
            vec![CovenantEntry::new(
                covenant.clone(),
                AdminState::Open,
                only_uwv,
            )],
            vec![valid(example_consent())],
            &job_mediation_request(),
            now(),
        ),
        RefusalReason::NoActiveCovenant,
    );
    let only_sdd: BTreeSet<Oin> = [oin(SDD)].into();
    assert_bare_refusal(
        run(
            vec![CovenantEntry::new(covenant, AdminState::Open, only_sdd)],
            vec![valid(example_consent())],
            &job_mediation_request(),
            now(),
        ),
        RefusalReason::NoActiveCovenant,
    );
}

#[test]
fn signature_by_a_non_party_does_not_complete_a_covenant() {
    let signed: BTreeSet<Oin> = [oin(UWV), oin(OUTSIDER)].into();
    assert_bare_refusal(
        run(
            vec![CovenantEntry::new(
                example_covenant(),
                AdminState::Open,
                signed,
            )],
            vec![valid(example_consent())],
            &job_mediation_request(),
            now(),
        ),
        RefusalReason::NoActiveCovenant,
    );
}

#[test]
fn requester_not_a_party_is_refused_with_no_active_covenant() {
    assert_bare_refusal(
        run_example(&request(OUTSIDER, "job-mediation", &["job_ready"])),
        RefusalReason::NoActiveCovenant,
    );
}

#[test]
fn grant_naming_a_non_party_recipient_releases_nothing_to_it() {
    // An (invalid) covenant between UWV and SDD whose grant names an outsider as recipient; the
    // outsider is party to another, active covenant. It never signed the first one, so that one
    // must not be a basis for anything it asks.
    let mut leaky = covenant_with_grant(
        "leaky",
        legal_obligation_grant("bijstand-intake", &["ww_end_date"], false),
    );
    leaky.grants[0].recipients.push(oin(OUTSIDER));
    let mut own = covenant_with_grant(
        "own",
        legal_obligation_grant("job-mediation", &["job_ready"], false),
    );
    own.parties[1].oin = oin(OUTSIDER);
    own.grants[0].recipients = vec![oin(OUTSIDER)];
    let decision = run(
        vec![open_signed(leaky), open_signed(own)],
        vec![],
        &request(OUTSIDER, "bijstand-intake", &["ww_end_date"]),
        now(),
    );
    assert_bare_refusal(decision, RefusalReason::PurposeNotGranted);
}

// ---------------------------------------------------------------------------------------------
// purpose-not-granted
// ---------------------------------------------------------------------------------------------

#[test]
fn purpose_outside_every_grant_is_refused_with_purpose_not_granted() {
    assert_bare_refusal(
        run_example(&request(SDD, "debt-counselling", &["job_ready"])),
        RefusalReason::PurposeNotGranted,
    );
}

#[test]
fn party_that_is_only_a_source_is_refused_with_purpose_not_granted() {
    // UWV is party to the covenant but only ever the source: it may not pull data back.
    assert_bare_refusal(
        run_example(&request(UWV, "job-mediation", &["job_ready"])),
        RefusalReason::PurposeNotGranted,
    );
}

// ---------------------------------------------------------------------------------------------
// Consent: required, revoked, expired, and consents that do not count
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_consent_is_refused_with_consent_required() {
    assert_consent_refusal(
        run(
            vec![open_signed(example_covenant())],
            vec![],
            &job_mediation_request(),
            now(),
        ),
        RefusalReason::ConsentRequired,
    );
}

#[test]
fn revoked_consent_is_refused_with_consent_revoked() {
    assert_consent_refusal(
        run(
            vec![open_signed(example_covenant())],
            vec![revoked(example_consent())],
            &job_mediation_request(),
            now(),
        ),
        RefusalReason::ConsentRevoked,
    );
}

#[test]
fn expired_consent_is_refused_with_consent_expired() {
    let consent = example_consent();
    // `exp` is exclusive: the consent is no longer valid at that very second.
    let at_exp = Utc.timestamp_opt(consent.exp, 0).unwrap();
    assert_consent_refusal(
        run(
            vec![open_signed(example_covenant())],
            vec![valid(consent.clone())],
            &job_mediation_request(),
            at_exp,
        ),
        RefusalReason::ConsentExpired,
    );
    let just_before = Utc.timestamp_opt(consent.exp - 1, 0).unwrap();
    assert!(run(
        vec![open_signed(example_covenant())],
        vec![valid(consent)],
        &job_mediation_request(),
        just_before,
    )
    .is_permit());
}

#[test]
fn consent_not_yet_valid_is_refused_with_consent_expired() {
    let consent = example_consent();
    let before_nbf = Utc.timestamp_opt(consent.nbf - 1, 0).unwrap();
    assert_consent_refusal(
        run(
            vec![open_signed(example_covenant())],
            vec![valid(consent.clone())],
            &job_mediation_request(),
            before_nbf,
        ),
        RefusalReason::ConsentExpired,
    );
    let at_nbf = Utc.timestamp_opt(consent.nbf, 0).unwrap();
    assert!(run(
        vec![open_signed(example_covenant())],
        vec![valid(consent)],
        &job_mediation_request(),
        at_nbf,
    )
    .is_permit());
}

#[test]
fn lapsed_consent_is_reported_over_a_revoked_one() {
    let lapsed = example_consent();
    let mut withdrawn = example_consent();
    withdrawn.jti = "consent-2026-0002".parse().unwrap();
    withdrawn.exp += 10_000_000;
    let after_first = Utc.timestamp_opt(lapsed.exp + 1, 0).unwrap();
    assert_consent_refusal(
        run(
            vec![open_signed(example_covenant())],
            vec![revoked(withdrawn), valid(lapsed)],
            &job_mediation_request(),
            after_first,
        ),
        RefusalReason::ConsentExpired,
    );
}

#[test]
fn a_new_consent_after_a_revoked_one_is_used() {
    let old = example_consent();
    let mut new = example_consent();
    new.jti = "consent-2027-0001".parse().unwrap();
    new.iat += 1;
    let permit = expect_permit(run(
        vec![open_signed(example_covenant())],
        vec![revoked(old), valid(new)],
        &job_mediation_request(),
        now(),
    ));
    assert_eq!(
        permit.basis.consent.as_ref().map(|c| c.as_str()),
        Some("consent-2027-0001")
    );
    assert_eq!(
        permit.released,
        fields(&["available_hours_per_week", "job_ready", "ww_end_date"])
    );
}

#[test]
fn a_newer_narrower_consent_supersedes_an_older_broader_one() {
    // The client's latest word for this purpose and covenant counts, even when it covers less:
    // only its fields are released, the rest is withheld as not covered.
    let broad = example_consent();
    let mut narrow = example_consent();
    narrow.jti = "consent-narrow".parse().unwrap();
    narrow.iat += 100;
    narrow.fields = fields(&["job_ready"]);
    let permit = expect_permit(run(
        vec![open_signed(example_covenant())],
        vec![valid(broad), valid(narrow)],
        &job_mediation_request(),
        now(),
    ));
    assert_eq!(
        permit.basis,
        job_mediation_basis(&example_covenant(), Some("consent-narrow"))
    );
    assert_eq!(permit.released, fields(&["job_ready"]));
    assert_eq!(
        permit.withheld,
        vec![
            withheld(
                "available_hours_per_week",
                WithheldReason::ConsentDoesNotCover
            ),
            withheld("ww_end_date", WithheldReason::ConsentDoesNotCover),
        ]
    );
}

#[test]
fn among_consents_issued_at_the_same_second_the_greatest_jti_is_used() {
    let mut a = example_consent();
    a.jti = "consent-a".parse().unwrap();
    a.fields = fields(&["available_hours_per_week", "job_ready", "ww_end_date"]);
    let mut b = example_consent();
    b.jti = "consent-b".parse().unwrap();
    b.fields = fields(&["job_ready"]);
    for consents in [
        vec![valid(a.clone()), valid(b.clone())],
        vec![valid(b.clone()), valid(a.clone())],
    ] {
        let permit = expect_permit(run(
            vec![open_signed(example_covenant())],
            consents,
            &job_mediation_request(),
            now(),
        ));
        assert_eq!(
            permit.basis.consent.as_ref().map(|c| c.as_str()),
            Some("consent-b")
        );
        assert_eq!(permit.released, fields(&["job_ready"]));
    }
}

#[test]
fn a_newer_consent_to_another_recipient_supersedes_and_does_not_count_for_this_one() {
    // The older consent names SDD, the newer one only an outsider: the newer one is current, and
    // for SDD it does not count — as with a consent to another recipient alone.
    let older = example_consent();
    let mut newer = example_consent();
    newer.jti = "consent-elsewhere".parse().unwrap();
    newer.iat += 100;
    newer.recipients = vec![oin(OUTSIDER)];
    assert_consent_refusal(
        run(
            vec![open_signed(example_covenant())],
            vec![valid(older), valid(newer)],
            &job_mediation_request(),
            now(),
        ),
        RefusalReason::ConsentRequired,
    );
}

#[test]
fn a_revoked_or_lapsed_consent_to_another_recipient_is_not_reported() {
    let mut elsewhere = example_consent();
    elsewhere.recipients = vec![oin(OUTSIDER)];
    assert_consent_refusal(
        run(
            vec![open_signed(example_covenant())],
            vec![revoked(elsewhere.clone())],
            &job_mediation_request(),
            now(),
        ),
        RefusalReason::ConsentRequired,
    );
    assert_consent_refusal(
        run(
            vec![open_signed(example_covenant())],
            vec![valid(elsewhere.clone())],
            &job_mediation_request(),
            Utc.timestamp_opt(elsewhere.exp, 0).unwrap(),
        ),
        RefusalReason::ConsentRequired,
    );
}

#[test]
fn when_the_current_consent_names_another_recipient_a_revoked_one_naming_the_requester_is_reported()
{
    let withdrawn = example_consent();
    let mut elsewhere = example_consent();
    elsewhere.jti = "consent-elsewhere".parse().unwrap();
    elsewhere.recipients = vec![oin(OUTSIDER)];
    assert_consent_refusal(
        run(
            vec![open_signed(example_covenant())],
            vec![revoked(withdrawn), valid(elsewhere)],
            &job_mediation_request(),
            now(),
        ),
        RefusalReason::ConsentRevoked,
    );
}

/// The example world with one altered consent instead of the example one: must not count.
fn assert_consent_does_not_count(alter: impl FnOnce(&mut ConsentClaims)) {
    let mut claims = example_consent();
    alter(&mut claims);
    assert_consent_refusal(
        run(
            vec![open_signed(example_covenant())],
            vec![valid(claims)],
            &job_mediation_request(),
            now(),
        ),
        RefusalReason::ConsentRequired,
    );
}

#[test]
fn consent_for_another_purpose_does_not_count() {
    assert_consent_does_not_count(|c| c.purpose = "bijstand-intake".parse().unwrap());
}

#[test]
fn consent_for_another_recipient_does_not_count() {
    assert_consent_does_not_count(|c| c.recipients = vec![oin(OUTSIDER)]);
}

#[test]
fn consent_under_another_covenant_does_not_count() {
    assert_consent_does_not_count(|c| c.covenant = "rotterdam-max-ww".parse().unwrap());
}

#[test]
fn consent_of_another_subject_does_not_count() {
    assert_consent_does_not_count(|c| c.sub = OTHER_CLIENT.parse().unwrap());
}

#[test]
fn consent_issued_by_a_non_party_does_not_count() {
    assert_consent_does_not_count(|c| c.iss = oin(OUTSIDER));
}

#[test]
fn revoked_or_lapsed_consent_of_another_subject_is_not_reported() {
    // Another person's consent history must not change the answer about this one.
    let mut other = example_consent();
    other.sub = OTHER_CLIENT.parse().unwrap();
    assert_consent_refusal(
        run(
            vec![open_signed(example_covenant())],
            vec![revoked(other)],
            &job_mediation_request(),
            now(),
        ),
        RefusalReason::ConsentRequired,
    );
}

// ---------------------------------------------------------------------------------------------
// Per-field withholding and field-not-granted
// ---------------------------------------------------------------------------------------------

#[test]
fn each_withheld_field_carries_its_own_reason() {
    let permit = expect_permit(run_example(&request(
        SDD,
        "job-mediation",
        &[
            "shoe_size",
            "available_hours_per_week",
            "partner_income_above_norm",
            "mental_health_complaints",
            "cv",
            "addiction_treatment_history",
        ],
    )));
    assert_eq!(permit.released, fields(&["available_hours_per_week"]));
    assert_eq!(
        permit.withheld,
        vec![
            withheld("shoe_size", WithheldReason::UnknownField),
            withheld("partner_income_above_norm", WithheldReason::FieldNotGranted),
            withheld(
                "mental_health_complaints",
                WithheldReason::SpecialCategoryNotConsented
            ),
            withheld("cv", WithheldReason::ConsentDoesNotCover),
            withheld(
                "addiction_treatment_history",
                WithheldReason::FieldNotGranted
            ),
        ]
    );
    assert_eq!(
        permit.basis,
        job_mediation_basis(&example_covenant(), Some(CONSENT_ID))
    );
}

#[test]
fn only_ungranted_fields_is_refused_with_field_not_granted() {
    let refusal = expect_refusal(run_example(&request(
        SDD,
        "job-mediation",
        &["partner_income_above_norm", "shoe_size"],
    )));
    assert_eq!(
        refusal,
        Refusal {
            reason: RefusalReason::FieldNotGranted,
            basis: Some(job_mediation_basis(&example_covenant(), Some(CONSENT_ID))),
            withheld: vec![
                withheld("partner_income_above_norm", WithheldReason::FieldNotGranted),
                withheld("shoe_size", WithheldReason::UnknownField),
            ],
        }
    );
}

#[test]
fn only_fields_the_consent_does_not_cover_is_refused_with_consent_required() {
    let refusal = expect_refusal(run_example(&request(
        SDD,
        "job-mediation",
        &["cv", "mental_health_complaints"],
    )));
    assert_eq!(
        refusal,
        Refusal {
            reason: RefusalReason::ConsentRequired,
            basis: Some(job_mediation_basis(&example_covenant(), Some(CONSENT_ID))),
            withheld: vec![
                withheld("cv", WithheldReason::ConsentDoesNotCover),
                withheld(
                    "mental_health_complaints",
                    WithheldReason::SpecialCategoryNotConsented
                ),
            ],
        }
    );
}

#[test]
fn uncovered_and_ungranted_fields_together_are_refused_with_field_not_granted() {
    let refusal = expect_refusal(run_example(&request(
        SDD,
        "job-mediation",
        &["cv", "partner_income_above_norm"],
    )));
    assert_eq!(refusal.reason, RefusalReason::FieldNotGranted);
    assert_eq!(
        refusal.withheld,
        vec![
            withheld("cv", WithheldReason::ConsentDoesNotCover),
            withheld("partner_income_above_norm", WithheldReason::FieldNotGranted),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Special categories (GDPR art. 9)
// ---------------------------------------------------------------------------------------------

#[test]
fn special_category_is_released_with_grant_allowance_and_a_consent_naming_it() {
    let mut claims = example_consent();
    claims.fields.push(field("mental_health_complaints"));
    let permit = expect_permit(run(
        vec![open_signed(example_covenant())],
        vec![valid(claims)],
        &request(
            SDD,
            "job-mediation",
            &["mental_health_complaints", "job_ready"],
        ),
        now(),
    ));
    assert_eq!(
        permit.released,
        fields(&["mental_health_complaints", "job_ready"])
    );
    assert_eq!(permit.withheld, Vec::new());
}

#[test]
fn special_category_without_grant_allowance_is_withheld_even_when_consented() {
    let covenant = covenant_with_grant(
        "no-art9",
        legal_obligation_grant(
            "bijstand-intake",
            &["ww_end_date", "addiction_treatment_history"],
            false,
        ),
    );
    let mut claims = example_consent();
    claims.covenant = "no-art9".parse().unwrap();
    claims.purpose = "bijstand-intake".parse().unwrap();
    claims.fields = fields(&["ww_end_date", "addiction_treatment_history"]);
    let permit = expect_permit(run(
        vec![open_signed(covenant)],
        vec![valid(claims)],
        &request(
            SDD,
            "bijstand-intake",
            &["ww_end_date", "addiction_treatment_history"],
        ),
        now(),
    ));
    assert_eq!(permit.released, fields(&["ww_end_date"]));
    assert_eq!(
        permit.withheld,
        vec![withheld(
            "addiction_treatment_history",
            WithheldReason::SpecialCategoryNotGranted
        )]
    );
}

#[test]
fn special_category_alone_without_grant_allowance_is_refused_with_field_not_granted() {
    let covenant = covenant_with_grant(
        "no-art9",
        legal_obligation_grant(
            "bijstand-intake",
            &["ww_end_date", "addiction_treatment_history"],
            false,
        ),
    );
    let refusal = expect_refusal(run(
        vec![open_signed(covenant)],
        vec![],
        &request(SDD, "bijstand-intake", &["addiction_treatment_history"]),
        now(),
    ));
    assert_eq!(refusal.reason, RefusalReason::FieldNotGranted);
    assert_eq!(
        refusal.withheld,
        vec![withheld(
            "addiction_treatment_history",
            WithheldReason::SpecialCategoryNotGranted
        )]
    );
}

/// A legal-obligation covenant whose grant allows special categories (art. 9(2)(b) style).
fn art9_legal_obligation_covenant() -> Covenant {
    covenant_with_grant(
        "art9",
        legal_obligation_grant(
            "bijstand-intake",
            &["ww_end_date", "mental_health_complaints"],
            true,
        ),
    )
}

fn art9_consent() -> ConsentClaims {
    let mut claims = example_consent();
    claims.covenant = "art9".parse().unwrap();
    claims.purpose = "bijstand-intake".parse().unwrap();
    claims.fields = fields(&["mental_health_complaints"]);
    claims
}

fn art9_request() -> DisclosureRequest {
    request(
        SDD,
        "bijstand-intake",
        &["ww_end_date", "mental_health_complaints"],
    )
}

#[test]
fn special_category_under_a_no_consent_grant_still_needs_a_consent_naming_it() {
    let permit = expect_permit(run(
        vec![open_signed(art9_legal_obligation_covenant())],
        vec![],
        &art9_request(),
        now(),
    ));
    assert_eq!(permit.released, fields(&["ww_end_date"]));
    assert_eq!(
        permit.withheld,
        vec![withheld(
            "mental_health_complaints",
            WithheldReason::SpecialCategoryNotConsented
        )]
    );
    assert_eq!(permit.basis.consent, None);
}

#[test]
fn special_category_under_a_no_consent_grant_is_released_with_a_consent_naming_it() {
    let permit = expect_permit(run(
        vec![open_signed(art9_legal_obligation_covenant())],
        vec![valid(art9_consent())],
        &art9_request(),
        now(),
    ));
    assert_eq!(
        permit.released,
        fields(&["ww_end_date", "mental_health_complaints"])
    );
    assert_eq!(permit.withheld, Vec::new());
    assert_eq!(
        permit.basis.consent.as_ref().map(|c| c.as_str()),
        Some(CONSENT_ID)
    );
    assert_eq!(permit.basis.legal_basis, LegalBasis::LegalObligation);
}

#[test]
fn special_category_is_withheld_when_its_consent_is_revoked_expired_or_mismatched() {
    let consent = art9_consent();
    let mut other_recipient = art9_consent();
    other_recipient.recipients = vec![oin(OUTSIDER)];
    let mut other_purpose = art9_consent();
    other_purpose.purpose = "job-mediation".parse().unwrap();
    let cases = [
        (revoked(consent.clone()), now()),
        (
            valid(consent.clone()),
            Utc.timestamp_opt(consent.exp, 0).unwrap(),
        ),
        (valid(other_recipient), now()),
        (valid(other_purpose), now()),
    ];
    for (record, when) in cases {
        let permit = expect_permit(run(
            vec![open_signed(art9_legal_obligation_covenant())],
            vec![record.clone()],
            &art9_request(),
            when,
        ));
        assert_eq!(permit.released, fields(&["ww_end_date"]), "{record:?}");
        assert_eq!(
            permit.withheld,
            vec![withheld(
                "mental_health_complaints",
                WithheldReason::SpecialCategoryNotConsented
            )],
            "{record:?}"
        );
        assert_eq!(permit.basis.consent, None);
    }
}

#[test]
fn special_category_alone_without_consent_is_refused_with_consent_required() {
    let refusal = expect_refusal(run(
        vec![open_signed(art9_legal_obligation_covenant())],
        vec![],
        &request(SDD, "bijstand-intake", &["mental_health_complaints"]),
        now(),
    ));
    assert_eq!(refusal.reason, RefusalReason::ConsentRequired);
    assert_eq!(
        refusal.withheld,
        vec![withheld(
            "mental_health_complaints",
            WithheldReason::SpecialCategoryNotConsented
        )]
    );
}

// ---------------------------------------------------------------------------------------------
// Amendments
// ---------------------------------------------------------------------------------------------

/// Version 2 of the example: the bijstand-intake grant also carries `earlier_bijstand`.
fn amendment() -> Covenant {
    let mut v2 = example_covenant();
    v2.version = 2;
    v2.grants[1].fields.push(field("earlier_bijstand"));
    v2
}

fn intake_request() -> DisclosureRequest {
    request(SDD, "bijstand-intake", &["ww_end_date", "earlier_bijstand"])
}

#[test]
fn fully_signed_amendment_takes_over_from_version_one() {
    let v2 = amendment();
    let permit = expect_permit(run(
        vec![open_signed(example_covenant()), open_signed(v2.clone())],
        vec![],
        &intake_request(),
        now(),
    ));
    assert_eq!(
        permit.released,
        fields(&["ww_end_date", "earlier_bijstand"])
    );
    assert_eq!(permit.basis.covenant, v2.reference());
    assert_eq!(permit.basis.covenant.version, 2);
    assert_ne!(
        permit.basis.covenant.hash,
        example_covenant().canonical_hash()
    );
}

#[test]
fn amendment_takes_over_whatever_order_versions_are_loaded_in() {
    let v2 = amendment();
    let permit = expect_permit(run(
        vec![open_signed(v2.clone()), open_signed(example_covenant())],
        vec![],
        &intake_request(),
        now(),
    ));
    assert_eq!(permit.basis.covenant, v2.reference());
}

#[test]
fn amendment_not_signed_by_every_party_does_not_displace_version_one() {
    let v1 = example_covenant();
    let only_uwv: BTreeSet<Oin> = [oin(UWV)].into();
    let permit = expect_permit(run(
        vec![
            open_signed(v1.clone()),
            CovenantEntry::new(amendment(), AdminState::Open, only_uwv),
        ],
        vec![],
        &intake_request(),
        now(),
    ));
    assert_eq!(permit.basis.covenant, v1.reference());
    assert_eq!(permit.released, fields(&["ww_end_date"]));
    assert_eq!(
        permit.withheld,
        vec![withheld(
            "earlier_bijstand",
            WithheldReason::FieldNotGranted
        )]
    );
}

#[test]
fn amendment_not_yet_valid_does_not_displace_version_one() {
    let v1 = example_covenant();
    let mut v2 = amendment();
    v2.valid_from = date("2027-06-01");
    let permit = expect_permit(run(
        vec![open_signed(v1.clone()), open_signed(v2)],
        vec![],
        &intake_request(),
        now(),
    ));
    assert_eq!(permit.basis.covenant, v1.reference());
}

#[test]
fn grant_dropped_by_an_amendment_is_no_longer_available() {
    let mut v2 = example_covenant();
    v2.version = 2;
    v2.grants.truncate(1);
    assert_bare_refusal(
        run(
            vec![open_signed(example_covenant()), open_signed(v2)],
            vec![],
            &request(SDD, "bijstand-intake", &["ww_end_date"]),
            now(),
        ),
        RefusalReason::PurposeNotGranted,
    );
}

#[test]
fn consent_given_under_version_one_still_counts_under_version_two() {
    let v2 = amendment();
    let permit = expect_permit(run(
        vec![open_signed(example_covenant()), open_signed(v2.clone())],
        vec![valid(example_consent())],
        &job_mediation_request(),
        now(),
    ));
    assert_eq!(permit.basis.covenant, v2.reference());
    assert_eq!(
        permit.basis.consent.as_ref().map(|c| c.as_str()),
        Some(CONSENT_ID)
    );
}

// ---------------------------------------------------------------------------------------------
// Covenant validation
// ---------------------------------------------------------------------------------------------

fn problem_paths(covenant: &Covenant) -> Vec<String> {
    covenant
        .validate(&catalogue())
        .into_iter()
        .map(|p| p.path)
        .collect()
}

fn only_problem(covenant: &Covenant) -> policy::CovenantProblem {
    let mut problems = covenant.validate(&catalogue());
    assert_eq!(problems.len(), 1, "{problems:?}");
    problems.remove(0)
}

#[test]
fn example_covenant_validates_clean_in_toml_and_json() {
    let catalogue = catalogue();
    assert_eq!(example_covenant().validate(&catalogue), Vec::new());
    let json = Covenant::parse(COVENANT_JSON, DocumentFormat::Json).unwrap();
    assert_eq!(json.validate(&catalogue), Vec::new());
}

#[test]
fn grant_field_not_in_catalogue_is_found_at_its_path() {
    let mut covenant = example_covenant();
    covenant.grants[0].fields[2] = field("shoe_size");
    let problem = only_problem(&covenant);
    assert_eq!(problem.path, "grants[0].fields[2]");
    assert!(problem.message.contains("shoe_size"), "{problem}");
    assert!(
        problem.message.contains("not in the field catalogue"),
        "{problem}"
    );
}

#[test]
fn grant_source_that_is_not_a_party_is_found_at_its_path() {
    let mut covenant = example_covenant();
    covenant.grants[1].source = oin(OUTSIDER);
    let problem = only_problem(&covenant);
    assert_eq!(problem.path, "grants[1].source");
    assert!(problem.message.contains(OUTSIDER), "{problem}");
    assert!(problem.message.contains("not a party"), "{problem}");
}

#[test]
fn grant_recipient_that_is_not_a_party_is_found_at_its_path() {
    let mut covenant = example_covenant();
    covenant.grants[0].recipients.push(oin(OUTSIDER));
    let problem = only_problem(&covenant);
    assert_eq!(problem.path, "grants[0].recipients[1]");
    assert!(problem.message.contains(OUTSIDER), "{problem}");
    assert!(problem.message.contains("not a party"), "{problem}");
}

#[test]
fn valid_until_before_valid_from_is_found_at_its_path() {
    let mut covenant = example_covenant();
    covenant.valid_until = date("2025-12-31");
    let problem = only_problem(&covenant);
    assert_eq!(problem.path, "valid_until");
    assert!(problem.message.contains("2025-12-31"), "{problem}");
    assert!(problem.message.contains("before valid_from"), "{problem}");
}

#[test]
fn special_category_field_in_a_grant_without_special_categories_is_found_at_its_path() {
    let mut covenant = example_covenant();
    covenant.grants[0].special_categories = false;
    let problem = only_problem(&covenant);
    // `mental_health_complaints` is the 14th field of the job-mediation grant.
    assert_eq!(problem.path, "grants[0].fields[13]");
    assert!(
        problem.message.contains("mental_health_complaints"),
        "{problem}"
    );
    assert!(problem.message.contains("special_categories"), "{problem}");
}

#[test]
fn several_problems_are_each_reported_at_their_path() {
    let mut covenant = example_covenant();
    covenant.valid_until = date("2025-12-31");
    covenant.grants[0].fields[0] = field("shoe_size");
    covenant.grants[0].special_categories = false;
    covenant.grants[0].recipients.push(oin(OUTSIDER));
    covenant.grants[1].source = oin(OUTSIDER);
    assert_eq!(
        problem_paths(&covenant),
        [
            "valid_until",
            "grants[0].recipients[1]",
            "grants[0].fields[0]",
            "grants[0].fields[13]",
            "grants[1].source",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Canonical hash
// ---------------------------------------------------------------------------------------------

#[test]
fn toml_and_json_examples_have_the_same_canonical_hash() {
    let toml = Covenant::parse(COVENANT_TOML, DocumentFormat::Toml).unwrap();
    let json = Covenant::parse(COVENANT_JSON, DocumentFormat::Json).unwrap();
    assert_eq!(toml, json);
    assert_eq!(toml.canonical_bytes(), json.canonical_bytes());
    assert_eq!(toml.canonical_hash(), json.canonical_hash());
}

#[test]
fn canonical_form_sorts_keys_writes_defaults_and_has_no_whitespace() {
    let bytes = example_covenant().canonical_bytes();
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("{\"grants\":[{\"basis_text\":"), "{text}");
    assert!(
        text.ends_with("\"valid_until\":\"2027-12-31\",\"version\":1}"),
        "{text}"
    );
    assert!(text.contains("\"special_categories\":false"));
    assert!(text.contains("\"id\":\"drechtsteden-max-ww\",\"parties\":[{\"name\":\"UWV\","));
    assert!(!text.contains('\n'));
}

#[test]
fn reordered_keys_and_changed_whitespace_keep_the_hash() {
    let expected = example_covenant().canonical_hash();
    let value: serde_json::Value = serde_json::from_str(COVENANT_JSON).unwrap();
    let compact = serde_json::to_string(&value).unwrap();
    let pretty = serde_json::to_string_pretty(&value).unwrap();
    for text in [compact, pretty] {
        let covenant = Covenant::parse(&text, DocumentFormat::Json).unwrap();
        assert_eq!(covenant.canonical_hash(), expected);
    }
    // TOML with tighter spacing, extra blank lines and different comments.
    let reformatted = COVENANT_TOML
        .replace(" = ", "=")
        .replace("# ", "#  ")
        .replace("\n[[", "\n\n\n[[");
    assert_ne!(reformatted, COVENANT_TOML);
    let covenant = Covenant::parse(&reformatted, DocumentFormat::Toml).unwrap();
    assert_eq!(covenant.canonical_hash(), expected);
    // Top-level keys moved around in TOML.
    let moved = COVENANT_TOML.replace(
        "id = \"drechtsteden-max-ww\"\nversion = 1\n",
        "version = 1\nid = \"drechtsteden-max-ww\"\n",
    );
    assert_ne!(moved, COVENANT_TOML);
    let covenant = Covenant::parse(&moved, DocumentFormat::Toml).unwrap();
    assert_eq!(covenant.canonical_hash(), expected);
}

#[test]
fn an_omitted_default_hashes_like_the_default_written_out() {
    let mut value: serde_json::Value = serde_json::from_str(COVENANT_JSON).unwrap();
    let grant = value["grants"][1].as_object_mut().unwrap();
    assert_eq!(grant.remove("special_categories"), Some(false.into()));
    let text = serde_json::to_string(&value).unwrap();
    let covenant = Covenant::parse(&text, DocumentFormat::Json).unwrap();
    assert_eq!(
        covenant.canonical_hash(),
        example_covenant().canonical_hash()
    );
}

/// Every leaf of a JSON value, as a path of object keys and array indices.
fn leaf_paths(value: &serde_json::Value, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let mut p = prefix.clone();
                p.push(k.clone());
                leaf_paths(v, p, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let mut p = prefix.clone();
                p.push(i.to_string());
                leaf_paths(v, p, out);
            }
        }
        _ => out.push(prefix),
    }
}

fn leaf_mut<'a>(value: &'a mut serde_json::Value, path: &[String]) -> &'a mut serde_json::Value {
    path.iter().fold(value, |v, key| match v {
        serde_json::Value::Array(items) => &mut items[key.parse::<usize>().unwrap()],
        other => &mut other[key.as_str()],
    })
}

/// Candidate replacements for a leaf that keep the document parseable for at least one of them.
fn mutations(leaf: &serde_json::Value) -> Vec<serde_json::Value> {
    use serde_json::Value;
    match leaf {
        Value::Bool(b) => vec![Value::Bool(!b)],
        Value::Number(n) => vec![Value::from(n.as_u64().unwrap() + 1)],
        Value::String(s) => {
            let mut out = Vec::new();
            // An OIN: change its last digit.
            if s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()) {
                let last = if s.ends_with('0') { '1' } else { '0' };
                out.push(Value::from(format!("{}{last}", &s[..19])));
            }
            // A date: one day later.
            if let Ok(d) = s.parse::<NaiveDate>() {
                out.push(Value::from((d + chrono::Days::new(1)).to_string()));
            }
            // Enumerations (party role, legal basis).
            for alt in ["observer", "source", "public-task", "consent"] {
                if s != alt {
                    out.push(Value::from(alt));
                }
            }
            // Names and free text.
            out.push(Value::from(format!("{s}-x")));
            out
        }
        other => panic!("unexpected leaf {other}"),
    }
}

#[test]
fn changing_any_single_value_changes_the_hash() {
    let original: serde_json::Value = serde_json::from_str(COVENANT_JSON).unwrap();
    let original_hash = example_covenant().canonical_hash();
    let mut paths = Vec::new();
    leaf_paths(&original, Vec::new(), &mut paths);
    // 6 top-level scalars, 2 parties × 3, two grants of 8 scalars (processing_activity
    // included), 1 recipient and 14 or 2 fields.
    assert_eq!(paths.len(), 6 + 2 * 3 + (8 + 1 + 14) + (8 + 1 + 2));
    let mut seen = BTreeSet::new();
    for path in &paths {
        let leaf = leaf_mut(&mut original.clone(), path).clone();
        let mutated = mutations(&leaf).into_iter().find_map(|replacement| {
            let mut doc = original.clone();
            *leaf_mut(&mut doc, path) = replacement;
            Covenant::parse(&doc.to_string(), DocumentFormat::Json).ok()
        });
        let covenant =
            mutated.unwrap_or_else(|| panic!("no parseable mutation of {}", path.join(".")));
        let hash = covenant.canonical_hash();
        assert_ne!(
            hash,
            original_hash,
            "changing {} kept the hash",
            path.join(".")
        );
        assert!(
            seen.insert(hash),
            "two mutations collided at {}",
            path.join(".")
        );
    }
}

#[test]
fn reordering_an_array_changes_the_hash() {
    let original = example_covenant();
    let mut fields_swapped = original.clone();
    fields_swapped.grants[0].fields.swap(0, 1);
    let mut parties_swapped = original.clone();
    parties_swapped.parties.swap(0, 1);
    let mut grants_swapped = original.clone();
    grants_swapped.grants.swap(0, 1);
    for changed in [fields_swapped, parties_swapped, grants_swapped] {
        assert_ne!(changed.canonical_hash(), original.canonical_hash());
    }
}

#[test]
fn example_covenant_hash_is_pinned() {
    // Parties sign this exact value; a change to the canonical form would void every signature.
    assert_eq!(
        example_covenant().reference().to_string(),
        "drechtsteden-max-ww@1#sha256:2904396c5abbf9793e894c932cede27b4add2e4c95228cca37372bfce618ed1c"
    );
}

#[test]
fn a_covenant_without_processing_activities_keeps_the_hash_it_had_before_they_existed() {
    // The example covenant as it was signed before grants could name a processing activity: the
    // member is absent from the canonical form, so that signature still holds.
    let mut covenant = example_covenant();
    for grant in &mut covenant.grants {
        grant.processing_activity = None;
    }
    assert_eq!(
        covenant.reference().to_string(),
        "drechtsteden-max-ww@1#sha256:f6402a64fe8e9480c8530b78d590128015f892773a8aedf3608532e25aba14d3"
    );
    let text = String::from_utf8(covenant.canonical_bytes()).unwrap();
    assert!(!text.contains("processing_activity"));
}

#[test]
fn the_processing_activity_is_covered_by_the_canonical_hash() {
    let covenant = example_covenant();
    let mut changed = covenant.clone();
    changed.grants[0].processing_activity = Some("https://register.example/other".into());
    assert_ne!(covenant.canonical_hash(), changed.canonical_hash());
}

#[test]
fn a_processing_activity_that_is_no_absolute_uri_is_found_at_its_path() {
    let catalogue = catalogue();
    for bad in [
        "max-ww",
        "",
        "https://register.example/a b",
        ":no-scheme",
        "1http://x",
    ] {
        let mut covenant = example_covenant();
        covenant.grants[1].processing_activity = Some(bad.into());
        let problems = covenant.validate(&catalogue);
        assert_eq!(problems.len(), 1, "{bad:?}: {problems:?}");
        assert_eq!(problems[0].path, "grants[1].processing_activity");
    }
}

#[test]
fn a_permit_names_the_processing_activity_of_its_grant() {
    let covenant = example_covenant();
    let permit = expect_permit(run(
        vec![open_signed(covenant)],
        vec![],
        &request(SDD, "bijstand-intake", &["ww_end_date"]),
        now(),
    ));
    assert_eq!(
        permit.basis.processing_activity.as_deref(),
        Some("https://register.drechtsteden.example/verwerkingsactiviteiten/bijstand-intake")
    );
}

#[test]
fn stored_delivery_is_absent_from_the_canonical_form_and_live_is_hashed() {
    // Issue 18: `delivery = "stored"` (the default) written out changes nothing, so covenants
    // signed before live disclosure keep their hashes; `live` and norms are covered by the hash.
    let original = example_covenant();
    let explicit = Covenant::parse(
        &COVENANT_TOML.replace(
            "retention_days = 90",
            "retention_days = 90\ndelivery = \"stored\"",
        ),
        DocumentFormat::Toml,
    )
    .unwrap();
    assert_eq!(explicit.grants[0].delivery, policy::Delivery::Stored);
    assert_eq!(explicit.canonical_hash(), original.canonical_hash());
    let bytes = String::from_utf8(original.canonical_bytes()).unwrap();
    assert!(!bytes.contains("delivery") && !bytes.contains("norms"));
    let mut live = original.clone();
    live.grants[1].delivery = policy::Delivery::Live;
    assert_ne!(live.canonical_hash(), original.canonical_hash());
    assert!(String::from_utf8(live.canonical_bytes())
        .unwrap()
        .contains("\"delivery\":\"live\""));
    let mut normed = live.clone();
    normed.grants[1]
        .norms
        .insert("partner_income_monthly".into(), 1800);
    assert_ne!(normed.canonical_hash(), live.canonical_hash());
}

// ---------------------------------------------------------------------------------------------
// The plan: the grant found once, and whether the subject's consents are needed
// ---------------------------------------------------------------------------------------------

fn needs_consents(entries: Vec<CovenantEntry>, request: &DisclosureRequest) -> bool {
    let covenants = CovenantSet::new(catalogue(), entries);
    policy::plan(request, &covenants, now()).needs_consents()
}

#[test]
fn a_refusal_at_the_covenant_or_grant_step_needs_no_consents() {
    assert!(!needs_consents(vec![], &job_mediation_request()));
    assert!(!needs_consents(
        vec![open_signed(example_covenant())],
        &request(SDD, "debt-counselling", &["job_ready"]),
    ));
}

#[test]
fn a_grant_requiring_consent_or_a_special_category_field_needs_consents() {
    let entries = || vec![open_signed(example_covenant())];
    assert!(needs_consents(entries(), &job_mediation_request()));
    assert!(!needs_consents(
        entries(),
        &request(SDD, "bijstand-intake", &["ww_end_date"])
    ));
    assert!(needs_consents(
        vec![open_signed(art9_legal_obligation_covenant())],
        &art9_request()
    ));
    // Without named fields, the grant's own fields count: none of the intake grant's is special.
    assert!(!needs_consents(
        entries(),
        &request(SDD, "bijstand-intake", &[])
    ));
}

#[test]
fn a_plan_decides_as_decide_does() {
    let covenants = CovenantSet::new(catalogue(), vec![open_signed(example_covenant())]);
    let consents = ConsentBook::new(vec![valid(example_consent())]);
    let snapshot = Snapshot {
        covenants: &covenants,
        consents: &consents,
    };
    for request in [
        job_mediation_request(),
        request(SDD, "bijstand-intake", &[]),
        request(OUTSIDER, "job-mediation", &["job_ready"]),
    ] {
        let planned = policy::plan(&request, &covenants, now());
        assert_eq!(
            planned.decide(&consents),
            decide(&request, &snapshot, now())
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Role-bound grants (issue 16)
// ---------------------------------------------------------------------------------------------

fn team_actor(roles: &[&str]) -> policy::Actor {
    policy::Actor {
        issuer: "https://idp.sdd.example".into(),
        sub: "emp-4711".into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

/// The example covenant with its job-mediation grant bound to the Poort's intakers.
fn role_bound_covenant() -> Covenant {
    let mut c = example_covenant();
    for g in &mut c.grants {
        g.roles = vec!["intaker-poort".into(), "team-max-ww".into()];
    }
    c
}

fn run_role_bound(request: &DisclosureRequest) -> Decision {
    run(
        vec![open_signed(role_bound_covenant())],
        vec![valid(example_consent())],
        request,
        now(),
    )
}

#[test]
fn a_role_bound_grant_without_an_actor_is_refused_actor_required_before_consents() {
    let request = job_mediation_request();
    let refusal = expect_refusal(run_role_bound(&request));
    assert_eq!(refusal.reason, RefusalReason::ActorRequired);
    assert_eq!(
        refusal.basis,
        Some(job_mediation_basis(&role_bound_covenant(), None))
    );
    let covenants = CovenantSet::new(catalogue(), vec![open_signed(role_bound_covenant())]);
    assert!(!policy::plan(&request, &covenants, now()).needs_consents());
}

#[test]
fn an_actor_without_a_granted_role_is_refused_role_not_granted() {
    let mut request = job_mediation_request();
    request.actor = Some(team_actor(&["klantmanager", "team-lead"]));
    let refusal = expect_refusal(run_role_bound(&request));
    assert_eq!(refusal.reason, RefusalReason::RoleNotGranted);
    assert!(refusal.withheld.is_empty());
    let covenants = CovenantSet::new(catalogue(), vec![open_signed(role_bound_covenant())]);
    let plan = policy::plan(&request, &covenants, now());
    assert!(!plan.needs_consents());
    assert_eq!(plan.role_used(), None);
}

#[test]
fn an_actor_with_a_granted_role_is_decided_as_before_and_the_role_is_named() {
    let mut request = job_mediation_request();
    request.actor = Some(team_actor(&["team-lead", "team-max-ww"]));
    let permit = expect_permit(run_role_bound(&request));
    let unbound = expect_permit(run_example(&job_mediation_request()));
    assert_eq!(permit.released, unbound.released);
    let covenants = CovenantSet::new(catalogue(), vec![open_signed(role_bound_covenant())]);
    assert_eq!(
        policy::plan(&request, &covenants, now()).role_used(),
        Some("team-max-ww")
    );
}

#[test]
fn a_grant_without_roles_ignores_whether_an_actor_was_sent() {
    let mut request = job_mediation_request();
    request.actor = Some(team_actor(&[]));
    assert_eq!(run_example(&request), run_example(&job_mediation_request()));
}

#[test]
fn role_refusals_come_after_the_covenant_and_grant_steps() {
    // The example covenant grants SDD nothing for re-integration: refused at the grant step.
    let request = request(SDD, "re-integration", &["job_ready"]);
    assert_bare_refusal(run_role_bound(&request), RefusalReason::PurposeNotGranted);
}

#[test]
fn empty_roles_leave_the_canonical_hash_unchanged_and_roles_change_it() {
    let plain = example_covenant();
    let text = String::from_utf8(plain.canonical_bytes()).unwrap();
    assert!(!text.contains("roles"));
    assert_ne!(
        plain.canonical_hash(),
        role_bound_covenant().canonical_hash()
    );
    let bound = String::from_utf8(role_bound_covenant().canonical_bytes()).unwrap();
    assert!(bound.contains("\"roles\":[\"intaker-poort\",\"team-max-ww\"]"));
}

#[test]
fn malformed_or_repeated_roles_are_covenant_problems() {
    let mut c = example_covenant();
    c.grants[0].roles = vec!["ok-role".into(), "has space".into(), "ok-role".into()];
    let problems = c.validate(&catalogue());
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["grants[0].roles[1]", "grants[0].roles[2]"]);
}
