//! Unit tests of handover acceptance (`accept_handover`) and of the consent a stored record is
//! held under (`HandoverPlan::held_under`), against the example covenant, consent and handover
//! record in `schemas/examples/`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use policy::{
    accept_handover, AdminState, CatalogueDocument, ConsentBook, ConsentClaims, ConsentRecord,
    Covenant, CovenantEntry, CovenantSet, DocumentFormat, FieldCatalogue, HandoverFieldProblem,
    HandoverPlan, HandoverReason, HandoverRefusal, LegalBasis, Oin, Purpose,
};
use serde_json::{json, Value};

const CATALOGUE_JSON: &str = include_str!("../../schemas/field-catalogue.json");
const COVENANT_TOML: &str = include_str!("../../schemas/examples/covenant-drechtsteden.toml");
const CONSENT_JSON: &str = include_str!("../../schemas/examples/consent-claims.json");
const HANDOVER_JSON: &str = include_str!("../../schemas/examples/handover.json");

const UWV: &str = "00000001003214345000";
const SDD: &str = "00000001823288444000";
const CLIENT: &str = "111222333";
/// Inside the example covenant's and consent's validity.
const NOW: i64 = 1_800_000_000;

fn oin(s: &str) -> Oin {
    s.parse().unwrap()
}

fn purpose(s: &str) -> Purpose {
    s.parse().unwrap()
}

fn today() -> NaiveDate {
    "2027-01-15".parse().unwrap()
}

fn covenant() -> Covenant {
    Covenant::parse(COVENANT_TOML, DocumentFormat::Toml).unwrap()
}

fn covenants_with(admin: AdminState) -> CovenantSet {
    let doc = serde_json::from_str::<CatalogueDocument>(CATALOGUE_JSON).unwrap();
    let covenant = covenant();
    let signed: BTreeSet<Oin> = covenant.parties.iter().map(|p| p.oin.clone()).collect();
    CovenantSet::new(
        FieldCatalogue::new(doc).unwrap(),
        vec![CovenantEntry::new(covenant, admin, signed)],
    )
}

fn covenants() -> CovenantSet {
    covenants_with(AdminState::Open)
}

/// The example handover record's fields.
fn record() -> BTreeMap<String, Value> {
    let doc: Value = serde_json::from_str(HANDOVER_JSON).unwrap();
    serde_json::from_value(doc["fields"].clone()).unwrap()
}

fn fields(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn accept<'a>(
    source: &str,
    purpose_: &str,
    fields: &BTreeMap<String, Value>,
    covenants: &'a CovenantSet,
) -> Result<HandoverPlan<'a>, HandoverRefusal> {
    accept_handover(&oin(source), &purpose(purpose_), fields, covenants, today())
}

fn claims(jti: &str, later: i64) -> ConsentClaims {
    let mut c: ConsentClaims = serde_json::from_str(CONSENT_JSON).unwrap();
    c.jti = jti.parse().unwrap();
    c.iat += later;
    c
}

fn book(records: &[(ConsentClaims, bool)]) -> ConsentBook {
    ConsentBook::new(records.iter().map(|(claims, revoked)| ConsentRecord {
        claims: claims.clone(),
        revoked: *revoked,
    }))
}

fn problem(field: &str, reason: HandoverReason, problem: &'static str) -> HandoverFieldProblem {
    HandoverFieldProblem {
        field: field.into(),
        reason,
        problem,
    }
}

// ---------------------------------------------------------------------------------------------
// accept_handover
// ---------------------------------------------------------------------------------------------

#[test]
fn the_example_record_is_accepted_under_the_job_mediation_grant() {
    let covenants = covenants();
    let plan = accept(UWV, "job-mediation", &record(), &covenants).unwrap();
    assert_eq!(plan.covenant(), &covenant().reference());
    assert_eq!(plan.entry().covenant.id.as_str(), "drechtsteden-max-ww");
    assert_eq!(plan.grant().purpose, purpose("job-mediation"));
    assert_eq!(plan.legal_basis(), LegalBasis::Consent);
    assert_eq!(plan.retention_days(), 90);
    assert!(plan.needs_consent());
}

#[test]
fn a_legal_obligation_grant_needs_no_consent_and_holds_the_record_under_none() {
    let covenants = covenants();
    let intake = fields(&[("ww_end_date", json!("2027-02-28"))]);
    let plan = accept(UWV, "bijstand-intake", &intake, &covenants).unwrap();
    assert_eq!(plan.legal_basis(), LegalBasis::LegalObligation);
    assert_eq!(plan.retention_days(), 365);
    assert!(!plan.needs_consent());
    let client = CLIENT.parse().unwrap();
    assert_eq!(
        plan.held_under(&ConsentBook::default(), &client, NOW),
        Ok(None)
    );
}

#[test]
fn an_organisation_that_is_not_the_source_of_a_grant_in_force_is_refused_with_not_a_source() {
    let open = covenants();
    let suspended = covenants_with(AdminState::Suspended);
    for (source, purpose_, covenants) in [
        (SDD, "job-mediation", &open),
        (UWV, "debt-counselling", &open),
        (UWV, "job-mediation", &suspended),
    ] {
        let refusal = accept(source, purpose_, &record(), covenants).unwrap_err();
        assert_eq!(
            refusal,
            HandoverRefusal::NotASource {
                purpose: purpose(purpose_)
            }
        );
        assert_eq!(refusal.reason().as_str(), "not-a-source");
        assert_eq!(
            refusal.to_string(),
            format!(
                "no covenant in force lets this organisation hand over data for purpose `{purpose_}`"
            )
        );
        assert!(refusal.problems().is_empty());
    }
}

#[test]
fn every_field_problem_is_reported_at_once_with_its_own_reason() {
    let covenants = covenants();
    let long = format!("x{}", "y".repeat(100));
    let mut sent = record();
    sent.insert("Not A Name".into(), json!(1));
    sent.insert("shoe_size".into(), json!(43));
    sent.insert("available_hours_per_week".into(), json!(61));
    sent.insert("partner_income_above_norm".into(), json!(true));
    sent.insert(long.clone(), json!(true));
    let refusal = accept(UWV, "job-mediation", &sent, &covenants).unwrap_err();
    // In key order; the reason is the first that is not field-not-granted.
    assert_eq!(
        refusal,
        HandoverRefusal::Fields {
            reason: HandoverReason::FieldNotInCatalogue,
            problems: vec![
                problem(
                    "Not A Name",
                    HandoverReason::FieldNotInCatalogue,
                    "is not a valid field name"
                ),
                problem(
                    "available_hours_per_week",
                    HandoverReason::FieldTypeMismatch,
                    "does not have the type the catalogue gives it"
                ),
                problem(
                    "partner_income_above_norm",
                    HandoverReason::FieldNotGranted,
                    "is not granted to this source for this purpose"
                ),
                problem(
                    "shoe_size",
                    HandoverReason::FieldNotInCatalogue,
                    "is not in the field catalogue"
                ),
                problem(
                    &long[..64],
                    HandoverReason::FieldNotInCatalogue,
                    "is not a valid field name"
                ),
            ],
        }
    );
    assert_eq!(
        refusal.to_string(),
        "the handover record was not stored: 5 field(s) are not acceptable"
    );
}

#[test]
fn the_reason_is_the_first_problem_that_is_not_field_not_granted() {
    let covenants = covenants();
    let reason = |pairs: &[(&str, Value)]| {
        accept(UWV, "job-mediation", &fields(pairs), &covenants)
            .unwrap_err()
            .reason()
    };
    assert_eq!(
        reason(&[("partner_income_above_norm", json!(true))]),
        HandoverReason::FieldNotGranted
    );
    assert_eq!(
        reason(&[
            ("available_hours_per_week", json!("32")),
            ("partner_income_above_norm", json!(true)),
            ("shoe_size", json!(43)),
        ]),
        HandoverReason::FieldTypeMismatch
    );
    assert_eq!(
        reason(&[
            ("aaa_unknown", json!(1)),
            ("available_hours_per_week", json!("32")),
        ]),
        HandoverReason::FieldNotInCatalogue
    );
}

#[test]
fn field_problems_never_carry_a_value() {
    let covenants = covenants();
    let secret = "Ervaren teamleider SECRET-VALUE";
    let sent = fields(&[
        ("available_hours_per_week", json!(secret)),
        ("shoe_size", json!(secret)),
        ("partner_income_above_norm", json!(secret)),
    ]);
    let refusal = accept(UWV, "job-mediation", &sent, &covenants).unwrap_err();
    assert_eq!(refusal.problems().len(), 3);
    assert!(!format!("{refusal:?} {refusal}").contains("SECRET"));
}

#[test]
fn an_empty_record_is_not_this_functions_business() {
    let covenants = covenants();
    assert!(accept(UWV, "job-mediation", &BTreeMap::new(), &covenants).is_ok());
}

// ---------------------------------------------------------------------------------------------
// held_under
// ---------------------------------------------------------------------------------------------

#[test]
fn a_record_is_held_under_the_current_consent() {
    let covenants = covenants();
    let plan = accept(UWV, "job-mediation", &record(), &covenants).unwrap();
    let client = CLIENT.parse().unwrap();
    let held = |records: &[(ConsentClaims, bool)]| plan.held_under(&book(records), &client, NOW);

    assert_eq!(
        held(&[(claims("consent-a", 0), false)]),
        Ok(Some("consent-a".parse().unwrap()))
    );
    // The newest wins, whatever it covers; among equal iat the greatest jti.
    let mut narrow = claims("consent-n", 5);
    narrow.fields.truncate(1);
    assert_eq!(
        held(&[(claims("consent-a", 0), false), (narrow, false)]),
        Ok(Some("consent-n".parse().unwrap()))
    );
    assert_eq!(
        held(&[
            (claims("consent-b", 0), false),
            (claims("consent-a", 0), false)
        ]),
        Ok(Some("consent-b".parse().unwrap()))
    );
    // A revoked newer consent leaves the older one current.
    assert_eq!(
        held(&[
            (claims("consent-a", 0), false),
            (claims("consent-z", 9), true)
        ]),
        Ok(Some("consent-a".parse().unwrap()))
    );
    // Recipients do not matter to the record: it cannot know who will ask.
    let mut elsewhere = claims("consent-e", 0);
    elsewhere.recipients = vec![oin(UWV)];
    assert_eq!(
        held(&[(elsewhere, false)]),
        Ok(Some("consent-e".parse().unwrap()))
    );
}

#[test]
fn without_a_valid_consent_a_record_needing_one_is_refused_with_consent_required() {
    let covenants = covenants();
    let plan = accept(UWV, "job-mediation", &record(), &covenants).unwrap();
    let client = CLIENT.parse().unwrap();
    let expected = HandoverRefusal::ConsentRequired {
        purpose: purpose("job-mediation"),
    };
    let lapsed = claims("consent-l", 0);
    for (records, now) in [
        (vec![], NOW),
        (vec![(claims("consent-r", 0), true)], NOW),
        (vec![(lapsed.clone(), false)], lapsed.exp),
    ] {
        let refusal = plan.held_under(&book(&records), &client, now).unwrap_err();
        assert_eq!(refusal, expected);
        assert_eq!(refusal.reason().as_str(), "consent-required");
        assert_eq!(
            refusal.to_string(),
            "purpose `job-mediation` needs the client's consent: register it before storing data"
        );
    }
    // Another subject's consent does not hold this subject's record.
    let mut other = claims("consent-o", 0);
    other.sub = "123456782".parse().unwrap();
    assert_eq!(
        plan.held_under(&book(&[(other, false)]), &client, NOW),
        Err(expected)
    );
}

#[test]
fn handover_reasons_have_stable_strings() {
    let strings: Vec<&str> = HandoverReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        strings,
        [
            "not-a-source",
            "field-not-in-catalogue",
            "field-type-mismatch",
            "field-not-granted",
            "consent-required"
        ]
    );
    for r in HandoverReason::ALL {
        assert_eq!(
            serde_json::to_value(r).unwrap(),
            Value::String(r.as_str().into())
        );
    }
}
