//! Property tests of live disclosure's pure half (`policy::live`): a grant that names only
//! derived attributes never releases their inputs, whatever is asked and whatever the source
//! answers; and the gateway asks the source for inputs, never for the derived names.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use common::*;
use policy::live::{assemble, source_fields, AnswerDefect, SourceAnswer};
use policy::{
    decide, ConsentBook, CovenantEntry, CovenantSet, Decision, Delivery, DisclosureRequest,
    FieldName, FieldType, Snapshot,
};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use serde_json::{json, Value};

const DERIVED: [&str; 3] = [
    "ww_ends_within_3_months",
    "partner_income_above_norm",
    "age_band",
];
const INPUTS: [&str; 3] = ["ww_end_date", "partner_income_monthly", "birth_date"];

fn names(list: &[&str]) -> Vec<FieldName> {
    list.iter().map(|f| f.parse().unwrap()).collect()
}

/// A few well-typed values of `t`, picked by `k` (and one ill-typed one when `k` is 7).
fn sample(t: &FieldType, k: u8) -> Value {
    if k == 7 {
        return json!({"not": "a value"});
    }
    match t {
        FieldType::Boolean => json!(k.is_multiple_of(2)),
        FieldType::Integer { min, max } => json!(min + (i64::from(k) * 997) % (max - min + 1)),
        FieldType::String { .. } => json!("tekst"),
        FieldType::Date => {
            json!(["1960-05-01", "2000-01-01", "2027-02-15", "2027-09-30"][usize::from(k % 4)])
        }
        FieldType::Enum { values } => json!(values[usize::from(k) % values.len()]),
        FieldType::StringList { .. } => json!([]),
    }
}

#[derive(Debug, Clone)]
struct World {
    entries: Vec<CovenantEntry>,
    request: DisclosureRequest,
    now: DateTime<Utc>,
    /// (field name, value pick) the source answers, including names it was not asked for.
    answer: Vec<(String, u8)>,
    wrong_subject: bool,
}

fn world() -> impl Strategy<Value = World> {
    let wanted = prop_oneof![
        2 => select(names(&DERIVED)),
        2 => select(names(&INPUTS)),
        1 => select(REQUESTABLE.clone()),
    ];
    let answered = prop_oneof![
        3 => select(CATALOGUED.iter().map(|f| f.to_string()).collect::<Vec<_>>()),
        1 => Just("shoe_size".to_owned()),
        1 => Just("111222333".to_owned()),
    ];
    (
        covenant_entries(),
        request(),
        prop::collection::vec(wanted, 1..6),
        prop::collection::vec(subsequence(names(&DERIVED), 1..=3), 4),
        0i64..5000,
        prop::collection::vec((answered, 0u8..8), 0..12),
        prop::bool::weighted(0.05),
        -400 * DAY..400 * DAY,
    )
        .prop_map(
            |(mut entries, mut request, fields, grant_fields, norm, answer, wrong, offset)| {
                // Every grant is live and names only derived attributes (never their inputs).
                for entry in &mut entries {
                    for (i, g) in entry.covenant.grants.iter_mut().enumerate() {
                        g.delivery = Delivery::Live;
                        g.fields = grant_fields[i % grant_fields.len()].clone();
                        g.special_categories = false;
                        g.consent_required = false;
                        g.legal_basis = policy::LegalBasis::PublicTask;
                        g.norms = BTreeMap::from([("partner_income_monthly".to_owned(), norm)]);
                    }
                }
                request.fields = fields;
                World {
                    entries,
                    request,
                    now: base() + chrono::Duration::seconds(offset),
                    answer,
                    wrong_subject: wrong,
                }
            },
        )
}

fn decide_in(w: &World) -> Decision {
    let covenants = CovenantSet::new(CATALOGUE.clone(), w.entries.clone());
    let consents = ConsentBook::default();
    decide(
        &w.request,
        &Snapshot {
            covenants: &covenants,
            consents: &consents,
        },
        w.now,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn a_derived_grant_never_releases_an_input(w in world()) {
        let Decision::Permit(permit) = decide_in(&w) else { return Ok(()) };
        let inputs = names(&INPUTS);
        // The decision never releases an input: the grants name none.
        prop_assert!(permit.released.iter().all(|f| !inputs.contains(f)));
        // The source is asked for inputs, never for a derived name.
        let asked = source_fields(&permit.released, &CATALOGUE);
        prop_assert!(asked.iter().all(|f| !DERIVED.contains(&f.as_str())));
        for f in &permit.released {
            if let Some(d) = CATALOGUE.get(f).and_then(|s| s.derived.as_ref()) {
                prop_assert!(asked.contains(d.input()));
            }
        }
        // Whatever the source answers, only released names come back, never an input.
        let subject = if w.wrong_subject { "123456782" } else { w.request.subject.expose() };
        let answer = SourceAnswer {
            subject: if w.wrong_subject && subject == w.request.subject.expose() {
                "111222333".to_owned()
            } else {
                subject.to_owned()
            },
            found: true,
            fields: w
                .answer
                .iter()
                .map(|(name, k)| {
                    let value = name
                        .parse::<FieldName>()
                        .ok()
                        .and_then(|f| CATALOGUE.get(&f))
                        .map_or(json!(1), |spec| sample(&spec.field_type, *k));
                    (name.clone(), value)
                })
                .collect(),
        };
        let answered: Vec<String> = answer.fields.keys().cloned().collect();
        match assemble(
            &w.request.subject,
            answer,
            &permit.released,
            &CATALOGUE,
            w.now.date_naive(),
            &permit.basis.norms,
        ) {
            Ok(out) => {
                prop_assert!(!w.wrong_subject);
                for name in out.released.keys() {
                    prop_assert!(permit.released.iter().any(|f| f.as_str() == name));
                    prop_assert!(!INPUTS.contains(&name.as_str()));
                }
                for name in &answered {
                    let was_asked = asked.iter().any(|f| f.as_str() == name);
                    let recorded = if name.parse::<FieldName>().is_ok() {
                        name.as_str()
                    } else {
                        policy::live::MALFORMED
                    };
                    prop_assert_eq!(out.over_delivered.iter().any(|o| o == recorded), !was_asked);
                }
                // Never a key that is not a field name (e.g. a BSN) in what is recorded.
                prop_assert!(out.over_delivered.iter().all(|o| o.parse::<FieldName>().is_ok() || o == policy::live::MALFORMED));
            }
            Err(AnswerDefect::WrongSubject) => prop_assert!(w.wrong_subject),
            Err(AnswerDefect::WrongType(f)) => prop_assert!(asked.contains(&f)),
        }
    }
}

/// The generated worlds do reach permits that release derived attributes (the property above is
/// not vacuous).
#[test]
fn generated_worlds_release_derived_attributes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = world();
    let mut derived_released = 0;
    for _ in 0..1024 {
        let w = strategy.new_tree(&mut runner).unwrap().current();
        if let Decision::Permit(p) = decide_in(&w) {
            derived_released += p
                .released
                .iter()
                .filter(|f| DERIVED.contains(&f.as_str()))
                .count();
        }
    }
    assert!(
        derived_released >= 50,
        "only {derived_released} derived releases"
    );
}
