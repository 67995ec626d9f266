//! Role-bound grants (issue 16): property tests over the random worlds of `common/`. Binding
//! every grant to roles must (a) refuse `actor-required` without an actor and `role-not-granted`
//! for an actor without one of the roles, exactly where the unbound world reached a grant, and
//! without looking at consents; (b) change nothing at all for an actor holding a role.

mod common;

use chrono::{DateTime, Utc};
use policy::{
    decide, plan, Actor, ConsentBook, ConsentRecord, CovenantEntry, CovenantSet, Decision,
    DisclosureRequest, RefusalReason, Snapshot,
};
use proptest::prelude::*;

use common::*;

const ROLES: [&str; 3] = ["intake", "max-ww", "team-lead"];

#[derive(Debug, Clone)]
struct World {
    entries: Vec<CovenantEntry>,
    consents: Vec<ConsentRecord>,
    request: DisclosureRequest,
    now: DateTime<Utc>,
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

fn decide_in(entries: &[CovenantEntry], consents: &[ConsentRecord], w: &World) -> Decision {
    decide_req(entries, consents, &w.request, w.now)
}

fn decide_req(
    entries: &[CovenantEntry],
    consents: &[ConsentRecord],
    request: &DisclosureRequest,
    now: DateTime<Utc>,
) -> Decision {
    let covenants = CovenantSet::new(CATALOGUE.clone(), entries.to_vec());
    let consents = ConsentBook::new(consents.to_vec());
    decide(
        request,
        &Snapshot {
            covenants: &covenants,
            consents: &consents,
        },
        now,
    )
}

/// The same covenant versions with every grant bound to `roles`.
fn bound(entries: &[CovenantEntry], roles: &[&str]) -> Vec<CovenantEntry> {
    entries
        .iter()
        .map(|e| {
            let mut covenant = e.covenant.clone();
            for g in &mut covenant.grants {
                g.roles = roles.iter().map(|r| r.to_string()).collect();
            }
            CovenantEntry::new(covenant, e.admin, e.signed_by.clone())
        })
        .collect()
}

fn actor(roles: &[&str]) -> Actor {
    Actor {
        issuer: "https://idp.example".into(),
        sub: "emp-0815".into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

/// Whether the unbound decision got past the grant step (a grant was found).
fn reached_a_grant(d: &Decision) -> bool {
    !matches!(
        d.refusal_reason(),
        Some(RefusalReason::NoActiveCovenant | RefusalReason::PurposeNotGranted)
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn role_bound_grants_refuse_without_a_fitting_actor_before_any_consent_is_read(
        w in world(),
        with_actor in any::<bool>(),
    ) {
        let unbound = decide_in(&w.entries, &w.consents, &w);
        let entries = bound(&w.entries, &["intake"]);
        let mut request = w.request.clone();
        request.actor = with_actor.then(|| actor(&["max-ww", "team-lead"]));
        let with_consents = decide_req(&entries, &w.consents, &request, w.now);
        // Consents are never consulted: the same answer with none at all.
        let without_consents = decide_req(&entries, &[], &request, w.now);
        prop_assert_eq!(&with_consents, &without_consents);
        if reached_a_grant(&unbound) {
            let expected = if with_actor {
                RefusalReason::RoleNotGranted
            } else {
                RefusalReason::ActorRequired
            };
            prop_assert_eq!(with_consents.refusal_reason(), Some(expected));
            // The basis names the same grant the unbound decision relied on (the same covenant
            // version; its hash differs, as the roles are part of it), without a consent.
            let view = |d: &Decision| {
                d.basis().map(|b| {
                    (b.covenant.id.clone(), b.covenant.version, b.source.clone(), b.legal_basis, b.retention_days)
                })
            };
            prop_assert_eq!(view(&with_consents), view(&unbound));
            prop_assert_eq!(with_consents.basis().and_then(|b| b.consent.clone()), None);
            prop_assert!(with_consents.released().is_empty());
            let covenants = CovenantSet::new(CATALOGUE.clone(), entries.clone());
            prop_assert!(!plan(&request, &covenants, w.now).needs_consents());
        } else {
            prop_assert_eq!(with_consents, unbound);
        }
    }

    #[test]
    fn an_actor_holding_one_of_the_roles_gets_exactly_the_unbound_decision(
        w in world(),
        held in prop::sample::subsequence(ROLES.to_vec(), 1..=3),
    ) {
        let unbound = decide_in(&w.entries, &w.consents, &w);
        let entries = bound(&w.entries, &ROLES);
        let mut request = w.request.clone();
        request.actor = Some(actor(&held));
        let decided = decide_req(&entries, &w.consents, &request, w.now);
        // Bases differ only in the covenant hash (the roles are part of it).
        prop_assert_eq!(decided.refusal_reason(), unbound.refusal_reason());
        prop_assert_eq!(decided.released(), unbound.released());
        prop_assert_eq!(decided.withheld(), unbound.withheld());
        if reached_a_grant(&unbound) {
            let covenants = CovenantSet::new(CATALOGUE.clone(), entries.clone());
            let p = plan(&request, &covenants, w.now);
            // The role used is the grant's first role the actor holds.
            let first = ROLES.iter().find(|r| held.contains(r)).copied();
            prop_assert_eq!(p.role_used(), first);
        }
    }

    #[test]
    fn grants_without_roles_ignore_the_actor(w in world(), roles in prop::sample::subsequence(ROLES.to_vec(), 0..=3)) {
        let unbound = decide_in(&w.entries, &w.consents, &w);
        let mut request = w.request.clone();
        request.actor = Some(actor(&roles));
        prop_assert_eq!(decide_req(&w.entries, &w.consents, &request, w.now), unbound);
    }
}
