//! Unit tests of the consent rules: which consent is current (`current_consent`) and whether a
//! verified consent token may be registered (`admit_consent`), against the example covenant and
//! consent in `schemas/examples/`.

use std::collections::BTreeSet;

use policy::{
    admit_consent, current_consent, AdminState, CatalogueDocument, ConsentClaims,
    ConsentInadmissible, ConsentLookup, ConsentRecord, Covenant, CovenantEntry, CovenantSet,
    DocumentFormat, FieldCatalogue, Oin,
};

const CATALOGUE_JSON: &str = include_str!("../../schemas/field-catalogue.json");
const COVENANT_TOML: &str = include_str!("../../schemas/examples/covenant-drechtsteden.toml");
const CONSENT_JSON: &str = include_str!("../../schemas/examples/consent-claims.json");

/// UWV: the issuer of the example consent.
const UWV: &str = "00000001003214345000";
/// Sociale Dienst Drechtsteden: its recipient.
const SDD: &str = "00000001823288444000";
/// Party to nothing.
const OUTSIDER: &str = "00000001999999999000";
/// Inside the example consent's validity.
const NOW: i64 = 1_800_000_000;

fn oin(s: &str) -> Oin {
    s.parse().unwrap()
}

fn covenant() -> Covenant {
    Covenant::parse(COVENANT_TOML, DocumentFormat::Toml).unwrap()
}

fn covenants() -> CovenantSet {
    let doc = serde_json::from_str::<CatalogueDocument>(CATALOGUE_JSON).unwrap();
    let covenant = covenant();
    let signed: BTreeSet<Oin> = covenant.parties.iter().map(|p| p.oin.clone()).collect();
    CovenantSet::new(
        FieldCatalogue::new(doc).unwrap(),
        vec![CovenantEntry::new(covenant, AdminState::Open, signed)],
    )
}

fn claims() -> ConsentClaims {
    serde_json::from_str(CONSENT_JSON).unwrap()
}

/// The example consent with another id, issued `later` seconds after it.
fn consent(jti: &str, later: i64) -> ConsentClaims {
    let mut c = claims();
    c.jti = jti.parse().unwrap();
    c.iat += later;
    c
}

fn record(claims: ConsentClaims, revoked: bool) -> ConsentRecord {
    ConsentRecord { claims, revoked }
}

/// The id of the current consent among `records`, or how the lookup ended.
fn current(records: &[ConsentRecord], now: i64) -> Result<String, ConsentLookup<'_>> {
    let c = claims();
    match current_consent(records, &c.sub, &c.purpose, &covenant(), now) {
        ConsentLookup::Valid(r) => Ok(r.claims.jti.to_string()),
        other => Err(other),
    }
}

// ---------------------------------------------------------------------------------------------
// current_consent
// ---------------------------------------------------------------------------------------------

#[test]
fn the_only_valid_consent_is_current() {
    assert_eq!(
        current(&[record(claims(), false)], NOW),
        Ok("consent-2026-0001".into())
    );
}

#[test]
fn a_newer_consent_supersedes_an_older_one_whatever_it_covers_or_names() {
    let older = claims();
    let mut newer = consent("consent-b", 1);
    newer.fields.truncate(1);
    newer.recipients = vec![oin(OUTSIDER)];
    for records in [
        vec![record(older.clone(), false), record(newer.clone(), false)],
        vec![record(newer.clone(), false), record(older.clone(), false)],
    ] {
        assert_eq!(current(&records, NOW), Ok("consent-b".into()));
    }
}

#[test]
fn among_consents_issued_at_the_same_second_the_greatest_jti_is_current() {
    let a = consent("consent-a", 0);
    let b = consent("consent-b", 0);
    for records in [
        vec![record(a.clone(), false), record(b.clone(), false)],
        vec![record(b.clone(), false), record(a.clone(), false)],
    ] {
        assert_eq!(current(&records, NOW), Ok("consent-b".into()));
    }
}

#[test]
fn a_revoked_or_lapsed_newer_consent_leaves_the_older_one_current() {
    let older = claims();
    let withdrawn = consent("consent-w", 10);
    let mut lapsed = consent("consent-l", 20);
    lapsed.exp = NOW;
    let records = [
        record(withdrawn, true),
        record(lapsed, false),
        record(older, false),
    ];
    assert_eq!(current(&records, NOW), Ok("consent-2026-0001".into()));
}

#[test]
fn consents_of_another_subject_purpose_covenant_or_a_non_party_issuer_are_not_candidates() {
    let alterations: [fn(&mut ConsentClaims); 4] = [
        |c| c.sub = "123456782".parse().unwrap(),
        |c| c.purpose = "bijstand-intake".parse().unwrap(),
        |c| c.covenant = "rotterdam-max-ww".parse().unwrap(),
        |c| c.iss = OUTSIDER.parse().unwrap(),
    ];
    for alter in alterations {
        let mut other = consent("consent-z", 100);
        alter(&mut other);
        // Newer than the example consent, but not a candidate: the example stays current ...
        assert_eq!(
            current(
                &[record(other.clone(), false), record(claims(), false)],
                NOW
            ),
            Ok("consent-2026-0001".into())
        );
        // ... and alone, revoked or lapsed, it is not reported either.
        assert_eq!(
            current(&[record(other.clone(), true)], NOW),
            Err(ConsentLookup::Missing)
        );
        assert_eq!(
            current(&[record(other, false)], 0),
            Err(ConsentLookup::Missing)
        );
    }
}

#[test]
fn without_a_valid_candidate_lapsed_is_reported_before_revoked() {
    let c = claims();
    assert_eq!(current(&[], NOW), Err(ConsentLookup::Missing));
    assert_eq!(
        current(&[record(c.clone(), true)], NOW),
        Err(ConsentLookup::Revoked)
    );
    assert_eq!(
        current(&[record(c.clone(), false)], c.exp),
        Err(ConsentLookup::Expired)
    );
    assert_eq!(
        current(&[record(c.clone(), false)], c.nbf - 1),
        Err(ConsentLookup::Expired)
    );
    let mut withdrawn = consent("consent-w", 1);
    withdrawn.exp += 10_000_000;
    assert_eq!(
        current(
            &[record(withdrawn, true), record(c.clone(), false)],
            c.exp + 1
        ),
        Err(ConsentLookup::Expired)
    );
}

// ---------------------------------------------------------------------------------------------
// admit_consent
// ---------------------------------------------------------------------------------------------

fn admit(claims: &ConsentClaims, caller: &str) -> Result<(), ConsentInadmissible> {
    admit_consent(claims, &oin(caller), &covenants())
}

#[test]
fn the_example_consent_is_admitted_from_its_issuer() {
    assert_eq!(admit(&claims(), UWV), Ok(()));
}

#[test]
fn a_consent_presented_by_another_organisation_than_its_issuer_is_not_admitted() {
    let refused = admit(&claims(), SDD).unwrap_err();
    assert_eq!(refused, ConsentInadmissible::IssuerNotCaller);
    assert_eq!(refused.reason(), "not-consent-issuer");
    assert_eq!(
        refused.to_string(),
        "only the issuer of a consent may register or revoke it"
    );
}

#[test]
fn a_consent_under_an_unknown_covenant_or_naming_non_parties_is_not_admitted() {
    let mut unknown = claims();
    unknown.covenant = "rotterdam-max-ww".parse().unwrap();
    let mut outsider_recipient = claims();
    outsider_recipient.recipients.push(oin(OUTSIDER));
    let mut outsider_issuer = claims();
    outsider_issuer.iss = oin(OUTSIDER);
    for (c, caller) in [
        (unknown, UWV),
        (outsider_recipient, UWV),
        (outsider_issuer, OUTSIDER),
    ] {
        let refused = admit(&c, caller).unwrap_err();
        assert_eq!(refused, ConsentInadmissible::UnknownCovenantOrParties);
        assert_eq!(refused.reason(), "invalid-consent-token");
        assert_eq!(
            refused.to_string(),
            "the token names a covenant that this gateway does not hold, or organisations that are not its parties"
        );
    }
}

#[test]
fn a_consent_naming_no_recipient_or_no_field_is_not_admitted() {
    let mut no_recipient = claims();
    no_recipient.recipients.clear();
    let mut no_field = claims();
    no_field.fields.clear();
    for c in [no_recipient, no_field] {
        let refused = admit(&c, UWV).unwrap_err();
        assert_eq!(refused, ConsentInadmissible::NoRecipientOrField);
        assert_eq!(refused.reason(), "invalid-consent-token");
        assert_eq!(
            refused.to_string(),
            "the token names no recipient or no field"
        );
    }
}

#[test]
fn a_consent_naming_an_uncatalogued_field_is_not_admitted_and_the_detail_names_the_field() {
    let mut c = claims();
    c.fields.push("shoe_size".parse().unwrap());
    let refused = admit(&c, UWV).unwrap_err();
    assert_eq!(
        refused,
        ConsentInadmissible::FieldNotInCatalogue("shoe_size".parse().unwrap())
    );
    assert_eq!(refused.reason(), "invalid-consent-token");
    assert_eq!(
        refused.to_string(),
        "field `shoe_size` is not in the field catalogue"
    );
}

#[test]
fn admission_checks_run_in_order_issuer_covenant_emptiness_catalogue() {
    // Everything wrong at once: the issuer check speaks first.
    let mut c = claims();
    c.covenant = "rotterdam-max-ww".parse().unwrap();
    c.recipients.clear();
    c.fields = vec!["shoe_size".parse().unwrap()];
    assert_eq!(admit(&c, SDD), Err(ConsentInadmissible::IssuerNotCaller));
    assert_eq!(
        admit(&c, UWV),
        Err(ConsentInadmissible::UnknownCovenantOrParties)
    );
    c.covenant = claims().covenant;
    assert_eq!(admit(&c, UWV), Err(ConsentInadmissible::NoRecipientOrField));
    c.recipients = claims().recipients;
    assert_eq!(
        admit(&c, UWV),
        Err(ConsentInadmissible::FieldNotInCatalogue(
            "shoe_size".parse().unwrap()
        ))
    );
}
