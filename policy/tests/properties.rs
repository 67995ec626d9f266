//! Property tests of `decide` over random worlds: a few covenant versions with random parties,
//! grants, signatures, states and validity, random consents (revoked or not, in or out of time,
//! for random purposes, recipients, covenants and fields) and random requests.
//!
//! The checks are stated against the snapshot itself, not against `decide`'s internals: what was
//! released must be requested, granted and consented; the basis must be a covenant in force to
//! which the requester is a party; the consent relied on must be valid and match; special
//! categories need both the grant and a consent naming them; and the answer must not depend on
//! the order of the input. The random worlds come from `common/`.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use policy::{
    decide, ConsentBook, ConsentClaims, ConsentRecord, CovenantEntry, CovenantSet, CovenantState,
    Decision, DisclosureRequest, FieldName, Grant, RefusalReason, Snapshot, WithheldReason,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use common::*;

#[derive(Debug, Clone)]
struct World {
    entries: Vec<CovenantEntry>,
    consents: Vec<ConsentRecord>,
    request: DisclosureRequest,
    now: DateTime<Utc>,
}

impl World {
    fn decide(&self) -> Decision {
        decide_in(&self.entries, &self.consents, &self.request, self.now)
    }
}

fn decide_in(
    entries: &[CovenantEntry],
    consents: &[ConsentRecord],
    request: &DisclosureRequest,
    now: DateTime<Utc>,
) -> Decision {
    let covenants = CovenantSet::new(CATALOGUE.clone(), entries.to_vec());
    let consents = ConsentBook::new(consents.to_vec());
    let snapshot = Snapshot {
        covenants: &covenants,
        consents: &consents,
    };
    decide(request, &snapshot, now)
}

fn world() -> impl Strategy<Value = World> {
    (
        covenant_entries(),
        consents(),
        request(),
        -60 * DAY..60 * DAY,
    )
        .prop_map(|(entries, consents, request, offset)| World {
            entries,
            consents,
            request,
            now: base() + chrono::Duration::seconds(offset),
        })
}

// ---------------------------------------------------------------------------------------------
// An independent reading of the snapshot
// ---------------------------------------------------------------------------------------------

/// The grant a request must be decided under: in a covenant version in force, to which the
/// requester is a party, for the purpose and naming the requester — the first in
/// (covenant id, version, grant order).
fn eligible_grant(w: &World) -> Option<(&CovenantEntry, &Grant)> {
    let today = w.now.date_naive();
    let mut candidates: Vec<&CovenantEntry> = w
        .entries
        .iter()
        .filter(|e| in_force(&w.entries, e, today) && e.covenant.is_party(&w.request.requester))
        .collect();
    candidates.sort_by(|a, b| {
        (&a.covenant.id, a.covenant.version).cmp(&(&b.covenant.id, b.covenant.version))
    });
    candidates.into_iter().find_map(|e| {
        e.covenant
            .grants
            .iter()
            .find(|g| g.purpose == w.request.purpose && g.recipients.contains(&w.request.requester))
            .map(|g| (e, g))
    })
}

/// Whether a consent matches this request under `entry`, ignoring revocation and time.
fn consent_matches(c: &ConsentClaims, w: &World, entry: &CovenantEntry) -> bool {
    c.sub == w.request.subject
        && c.purpose == w.request.purpose
        && c.recipients.contains(&w.request.requester)
        && c.covenant == entry.covenant.id
        && entry.covenant.is_party(&c.iss)
}

/// Whether a consent may be relied on now for this request under `entry`.
fn consent_usable(r: &ConsentRecord, w: &World, entry: &CovenantEntry) -> bool {
    !r.revoked && r.claims.in_validity(w.now.timestamp()) && consent_matches(&r.claims, w, entry)
}

/// Whether a consent may be relied on now for this request under `entry` by the rule of issue 14:
/// it is usable as above *and* it is the current consent — among the subject's valid, unrevoked
/// consents for the purpose and covenant issued by a party, whatever their recipients, the one
/// with the greatest `(iat, jti)`.
fn consent_current_and_usable(r: &ConsentRecord, w: &World, entry: &CovenantEntry) -> bool {
    let now = w.now.timestamp();
    let current = w
        .consents
        .iter()
        .filter(|o| {
            let c = &o.claims;
            !o.revoked
                && c.in_validity(now)
                && c.sub == w.request.subject
                && c.purpose == w.request.purpose
                && c.covenant == entry.covenant.id
                && entry.covenant.is_party(&c.iss)
        })
        .max_by(|a, b| (a.claims.iat, &a.claims.jti).cmp(&(b.claims.iat, &b.claims.jti)));
    current.is_some_and(|c| std::ptr::eq(c, r)) && consent_usable(r, w, entry)
}

/// Which consents the invariants take as ones `decide` may rely on.
type UsableModel = fn(&ConsentRecord, &World, &CovenantEntry) -> bool;

/// The fields a request asks for, without repeats (none when it names none: an empty request
/// releases nothing).
fn requested(w: &World) -> Vec<FieldName> {
    let mut out: Vec<FieldName> = Vec::new();
    for f in &w.request.fields {
        if !out.contains(f) {
            out.push(f.clone());
        }
    }
    out
}

fn is_subsequence(sub: &[FieldName], of: &[FieldName]) -> bool {
    let mut it = of.iter();
    sub.iter().all(|s| it.any(|o| o == s))
}

// ---------------------------------------------------------------------------------------------
// The invariants
// ---------------------------------------------------------------------------------------------

/// The invariants, with `consent_usable` saying which consents `decide` may rely on.
fn check_invariants(
    w: &World,
    decision: &Decision,
    consent_usable: UsableModel,
) -> Result<(), TestCaseError> {
    let today = w.now.date_naive();
    let catalogue = &*CATALOGUE;

    // No covenant in force with the requester as a party: always no-active-covenant, nothing else.
    let party_to_active = w
        .entries
        .iter()
        .any(|e| in_force(&w.entries, e, today) && e.covenant.is_party(&w.request.requester));
    if !party_to_active {
        prop_assert_eq!(
            decision.refusal_reason(),
            Some(RefusalReason::NoActiveCovenant)
        );
        prop_assert!(decision.basis().is_none());
        return Ok(());
    }
    prop_assert_ne!(
        decision.refusal_reason(),
        Some(RefusalReason::NoActiveCovenant)
    );

    // No eligible grant: purpose-not-granted, nothing else.
    let Some((entry, grant)) = eligible_grant(w) else {
        prop_assert_eq!(
            decision.refusal_reason(),
            Some(RefusalReason::PurposeNotGranted)
        );
        prop_assert!(decision.basis().is_none());
        return Ok(());
    };
    prop_assert_ne!(
        decision.refusal_reason(),
        Some(RefusalReason::PurposeNotGranted)
    );

    // From here on every decision has a basis, and it is that grant of that covenant version.
    let Some(basis) = decision.basis() else {
        return Err(TestCaseError::fail(format!(
            "no basis after a grant was found: {decision:?}"
        )));
    };
    prop_assert_eq!(&basis.covenant, &entry.reference);
    prop_assert_eq!(entry.state_on(today), CovenantState::Active);
    prop_assert!(entry.fully_signed());
    prop_assert!(entry.covenant.is_party(&w.request.requester));
    prop_assert_eq!(&basis.source, &grant.source);
    prop_assert_eq!(basis.legal_basis, grant.legal_basis);
    prop_assert_eq!(basis.retention_days, grant.retention_days);

    // The consent named in the basis, if any, exists and is valid, unrevoked and matching.
    let consent: Option<&ConsentRecord> = match &basis.consent {
        None => None,
        Some(id) => {
            let found = w.consents.iter().find(|r| &r.claims.jti == id);
            let Some(record) = found else {
                return Err(TestCaseError::fail(format!(
                    "basis names unknown consent {id}"
                )));
            };
            prop_assert!(
                consent_usable(record, w, entry),
                "relied on an unusable consent {:?}",
                record
            );
            Some(record)
        }
    };
    let names = |f: &FieldName| consent.is_some_and(|r| r.claims.names_field(f));

    let any_usable = w.consents.iter().any(|r| consent_usable(r, w, entry));
    let wanted = requested(w);

    // Consent required and none usable: refused at the consent step with the precise reason.
    if grant.consent_required && !any_usable {
        let matching: Vec<&ConsentRecord> = w
            .consents
            .iter()
            .filter(|r| consent_matches(&r.claims, w, entry))
            .collect();
        let lapsed = matching
            .iter()
            .any(|r| !r.revoked && !r.claims.in_validity(w.now.timestamp()));
        let withdrawn = matching.iter().any(|r| r.revoked);
        let expected = if lapsed {
            RefusalReason::ConsentExpired
        } else if withdrawn {
            RefusalReason::ConsentRevoked
        } else {
            RefusalReason::ConsentRequired
        };
        prop_assert_eq!(decision.refusal_reason(), Some(expected));
        prop_assert!(decision.withheld().is_empty());
        prop_assert!(basis.consent.is_none());
        return Ok(());
    }
    if grant.consent_required {
        prop_assert!(basis.consent.is_some(), "consent required but none named");
    }
    if any_usable && (grant.consent_required || wanted.iter().any(|f| catalogue.is_special(f))) {
        prop_assert!(basis.consent.is_some(), "a usable consent was ignored");
    }

    // Field by field: released and withheld partition the request, each field once.
    let released = decision.released();
    let withheld = decision.withheld();
    let mut accounted: Vec<&FieldName> = released
        .iter()
        .chain(withheld.iter().map(|w| &w.field))
        .collect();
    accounted.sort();
    let mut expected_fields: Vec<&FieldName> = wanted.iter().collect();
    expected_fields.sort();
    prop_assert_eq!(
        accounted,
        expected_fields,
        "released ∪ withheld ≠ requested"
    );
    prop_assert!(
        is_subsequence(released, &wanted),
        "released out of request order"
    );

    for f in released {
        // released ⊆ requested ∩ granted ∩ catalogued (∩ consented where required).
        prop_assert!(w.request.fields.contains(f), "released {} not asked for", f);
        prop_assert!(grant.fields.contains(f), "released ungranted {}", f);
        prop_assert!(catalogue.contains(f), "released uncatalogued {}", f);
        if grant.consent_required {
            prop_assert!(names(f), "released {} not named by the consent", f);
        }
        if catalogue.is_special(f) {
            prop_assert!(grant.special_categories, "special {} without grant", f);
            prop_assert!(names(f), "special {} without consent naming it", f);
        }
    }
    for item in withheld {
        let f = &item.field;
        let granted = grant.fields.contains(f);
        let special = catalogue.is_special(f);
        let holds = match item.reason {
            WithheldReason::UnknownField => !catalogue.contains(f),
            WithheldReason::FieldNotGranted => catalogue.contains(f) && !granted,
            WithheldReason::SpecialCategoryNotGranted => {
                special && granted && !grant.special_categories
            }
            WithheldReason::SpecialCategoryNotConsented => {
                special && granted && grant.special_categories && !names(f)
            }
            WithheldReason::ConsentDoesNotCover => {
                !special && granted && grant.consent_required && !names(f)
            }
        };
        prop_assert!(holds, "withheld {} for {} wrongly", f, item.reason);
    }

    // Nothing releasable: refused, with consent-required only when consent alone is lacking.
    match decision {
        Decision::Permit(p) => prop_assert!(!p.released.is_empty()),
        Decision::Refuse(r) => {
            prop_assert!(released.is_empty());
            let consent_only = !withheld.is_empty()
                && withheld.iter().all(|w| {
                    matches!(
                        w.reason,
                        WithheldReason::SpecialCategoryNotConsented
                            | WithheldReason::ConsentDoesNotCover
                    )
                });
            let expected = if consent_only {
                RefusalReason::ConsentRequired
            } else {
                RefusalReason::FieldNotGranted
            };
            prop_assert_eq!(r.reason, expected);
        }
    }
    Ok(())
}

/// The same world with consents and covenant versions in another order.
fn world_and_shuffled() -> impl Strategy<Value = (World, World)> {
    world().prop_flat_map(|w| {
        let consents = Just(w.consents.clone()).prop_shuffle();
        let entries = Just(w.entries.clone()).prop_shuffle();
        (Just(w), consents, entries).prop_map(|(w, consents, entries)| {
            let shuffled = World {
                entries,
                consents,
                ..w.clone()
            };
            (w, shuffled)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The invariants with the one consent rule (issue 14) as the model of which consent may be
    /// relied on. (Before it, the model counted any valid consent naming the requester; that
    /// rule is retired: the client's newest consent supersedes older ones.)
    #[test]
    fn decisions_respect_covenants_consents_and_fields(w in world()) {
        let decision = w.decide();
        check_invariants(&w, &decision, consent_current_and_usable)?;
    }

    #[test]
    fn decide_is_deterministic_and_ignores_input_order((w, shuffled) in world_and_shuffled()) {
        let first = w.decide();
        prop_assert_eq!(&first, &w.decide());
        prop_assert_eq!(&first, &shuffled.decide());
    }

    #[test]
    fn other_subjects_consents_never_change_the_decision(
        w in world(),
        others in consents(),
    ) {
        // Consents about someone else, however they match otherwise, are irrelevant.
        let other_subject = SUBJECTS
            .iter()
            .map(|s| s.parse().unwrap())
            .find(|s| s != &w.request.subject)
            .unwrap();
        let mut more = w.consents.clone();
        for (i, mut r) in others.into_iter().enumerate() {
            r.claims.sub = other_subject;
            r.claims.jti = format!("other-{i}").parse().unwrap();
            more.push(r);
        }
        let with_others = World { consents: more, ..w.clone() };
        prop_assert_eq!(w.decide(), with_others.decide());
    }

    #[test]
    fn when_consents_are_not_consulted_they_cannot_change_the_decision(w in world()) {
        // The gateway skips reading the subject's consents when the plan says it need not;
        // that is only sound if the decision is then the same without them.
        let covenants = CovenantSet::new(CATALOGUE.clone(), w.entries.clone());
        if !policy::plan(&w.request, &covenants, w.now).needs_consents() {
            let without = World { consents: Vec::new(), ..w.clone() };
            prop_assert_eq!(w.decide(), without.decide());
        }
    }
}

/// The generator must reach every outcome, or the properties above would hold vacuously.
#[test]
fn generated_worlds_reach_every_outcome() {
    let mut runner = TestRunner::deterministic();
    let strategy = world();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut withheld: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut special_released = 0;
    for _ in 0..6000 {
        let w = strategy.new_tree(&mut runner).unwrap().current();
        let decision = w.decide();
        let key = match decision.refusal_reason() {
            None => "permit".to_string(),
            Some(r) => r.as_str().to_string(),
        };
        *outcomes.entry(key).or_default() += 1;
        for item in decision.withheld() {
            *withheld.entry(item.reason.as_str()).or_default() += 1;
        }
        special_released += decision
            .released()
            .iter()
            .filter(|f| CATALOGUE.is_special(f))
            .count();
    }
    // These worlds have no role-bound grants; the role refusals are reached in `roles.rs`.
    let role_refusals = [RefusalReason::ActorRequired, RefusalReason::RoleNotGranted];
    for reason in RefusalReason::ALL
        .into_iter()
        .filter(|r| !role_refusals.contains(r))
    {
        assert!(
            outcomes.get(reason.as_str()).is_some_and(|&n| n >= 10),
            "{reason} reached too rarely: {outcomes:?}"
        );
    }
    assert!(
        outcomes.get("permit").is_some_and(|&n| n >= 200),
        "too few permits: {outcomes:?}"
    );
    for reason in [
        WithheldReason::UnknownField,
        WithheldReason::FieldNotGranted,
        WithheldReason::SpecialCategoryNotGranted,
        WithheldReason::SpecialCategoryNotConsented,
        WithheldReason::ConsentDoesNotCover,
    ] {
        assert!(
            withheld.get(reason.as_str()).is_some_and(|&n| n >= 10),
            "{reason} reached too rarely: {withheld:?}"
        );
    }
    assert!(
        special_released >= 10,
        "special categories released only {special_released} times"
    );
}
