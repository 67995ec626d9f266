//! Live disclosure, the pure half: which source fields to ask for after a permit
//! ([`source_fields`]), and how a source's answer becomes the released fields ([`assemble`]):
//! the answer must be about the subject asked for, every field asked for must have its catalogue
//! type, anything not asked for is dropped (its name recorded as over-delivered, its value never
//! kept), and derived attributes are computed from their inputs ([`derive`]), which are then
//! dropped unless themselves released.
//!
//! Why here and not in the gateway: what a derived attribute *means* is a rule of the covenant
//! and the catalogue, like the decision itself. As a pure function of (answer, permit, catalogue,
//! decision date, norms) it is property-tested without a server, and a gateway can never compute
//! it differently on different paths. The decision date is the date of the disclosure decision
//! (UTC), passed in, never read from a clock.

use std::collections::BTreeMap;

use chrono::{Datelike, Months, NaiveDate};
use serde_json::Value;

use crate::catalogue::{Derivation, FieldCatalogue, AGE_BANDS};
use crate::ids::{Bsn, FieldName};

/// The source fields to ask for to release `released`: each released field itself, or for a
/// derived attribute its input; each once, in order.
pub fn source_fields(released: &[FieldName], catalogue: &FieldCatalogue) -> Vec<FieldName> {
    let mut out: Vec<FieldName> = Vec::with_capacity(released.len());
    for f in released {
        let wanted = match catalogue.get(f).and_then(|s| s.derived.as_ref()) {
            Some(d) => d.input(),
            None => f,
        };
        if !out.contains(wanted) {
            out.push(wanted.clone());
        }
    }
    out
}

/// How an over-delivered key that is not a well-formed field name is recorded.
pub const MALFORMED: &str = "(malformed)";

/// What a source answered, as received (not yet trusted).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceAnswer {
    /// The subject the source says the answer is about.
    pub subject: String,
    /// Whether the source holds a record for the subject.
    pub found: bool,
    pub fields: BTreeMap<String, Value>,
}

/// Why a source's answer cannot be used at all (the disclosure is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerDefect {
    /// The answer is about another subject.
    WrongSubject,
    /// A field asked for does not have its catalogue type (the name only, never the value).
    WrongType(FieldName),
}

/// The released fields made from a source's answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Assembled {
    /// Exactly the released fields the answer (or a derivation) gave a value for.
    pub released: BTreeMap<String, Value>,
    /// Names of fields the source sent without being asked (dropped, values not kept).
    pub over_delivered: Vec<String>,
}

/// Turn `answer` into the released fields of a permit for `subject` that released `released`.
/// `today` is the decision date; `norms` the grant's named norms.
pub fn assemble(
    subject: &Bsn,
    answer: SourceAnswer,
    released: &[FieldName],
    catalogue: &FieldCatalogue,
    today: NaiveDate,
    norms: &BTreeMap<String, i64>,
) -> Result<Assembled, AnswerDefect> {
    if answer.subject != subject.expose() {
        return Err(AnswerDefect::WrongSubject);
    }
    let asked = source_fields(released, catalogue);
    let mut over_delivered = Vec::new();
    let mut inputs: BTreeMap<&FieldName, Value> = BTreeMap::new();
    for (name, value) in answer.fields {
        let Some(field) = asked.iter().find(|f| f.as_str() == name) else {
            // Only a well-formed field name is recorded: a key a source made up (a BSN, a value)
            // must not reach the audit log; it is recorded as `(malformed)`.
            let recorded = if name.parse::<FieldName>().is_ok() {
                name
            } else {
                MALFORMED.to_owned()
            };
            if !over_delivered.contains(&recorded) {
                over_delivered.push(recorded);
            }
            continue;
        };
        // Asked fields are catalogued (they come from a permit); an uncatalogued one is a defect.
        let typed = catalogue
            .get(field)
            .is_some_and(|spec| spec.field_type.accepts(&value));
        if !typed {
            return Err(AnswerDefect::WrongType(field.clone()));
        }
        inputs.insert(field, value);
    }
    let mut out = BTreeMap::new();
    for f in released {
        let value = match catalogue.get(f).and_then(|s| s.derived.as_ref()) {
            Some(d) => inputs
                .get(d.input())
                .and_then(|input| derive(d, input, today, norms)),
            None => inputs.get(f).cloned(),
        };
        if let Some(v) = value {
            out.insert(f.to_string(), v);
        }
    }
    Ok(Assembled {
        released: out,
        over_delivered,
    })
}

/// Compute a derived attribute from its input value (already type-checked) on the decision date
/// `today`. `None` when it cannot be computed (a norm the grant does not name, a date out of
/// range): the attribute is then not released, as a field the source does not hold.
pub fn derive(
    rule: &Derivation,
    input: &Value,
    today: NaiveDate,
    norms: &BTreeMap<String, i64>,
) -> Option<Value> {
    match rule {
        Derivation::EndsWithinMonths { months, .. } => {
            let end = parse_date(input)?;
            let horizon = today.checked_add_months(Months::new(*months))?;
            Some(Value::Bool(today <= end && end <= horizon))
        }
        Derivation::AboveNorm { norm, .. } => {
            let norm = norms.get(norm)?;
            Some(Value::Bool(input.as_i64()? > *norm))
        }
        Derivation::AgeBand { .. } => {
            let born = parse_date(input)?;
            let mut age = today.year() - born.year();
            if (today.month(), today.day()) < (born.month(), born.day()) {
                age -= 1;
            }
            if age < 0 {
                return None;
            }
            let band = match age {
                0..=26 => AGE_BANDS[0],
                27..=49 => AGE_BANDS[1],
                _ => AGE_BANDS[2],
            };
            Some(Value::String(band.to_owned()))
        }
    }
}

fn parse_date(v: &Value) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(v.as_str()?, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn ends_within_months_counts_calendar_months_from_the_decision_date() {
        let rule = Derivation::EndsWithinMonths {
            input: "ww_end_date".parse().unwrap(),
            months: 3,
        };
        let norms = BTreeMap::new();
        let today = date("2026-11-29");
        let at = |d: &str| derive(&rule, &json!(d), today, &norms);
        assert_eq!(at("2026-11-29"), Some(json!(true)));
        assert_eq!(at("2027-02-28"), Some(json!(true)));
        assert_eq!(at("2027-03-01"), Some(json!(false)));
        assert_eq!(at("2026-11-28"), Some(json!(false)), "already ended");
    }

    #[test]
    fn above_norm_is_strict_and_needs_the_named_norm() {
        let rule = Derivation::AboveNorm {
            input: "partner_income_monthly".parse().unwrap(),
            norm: "partner_income_monthly".into(),
        };
        let today = date("2026-11-29");
        let norms = BTreeMap::from([("partner_income_monthly".to_owned(), 1800)]);
        assert_eq!(
            derive(&rule, &json!(1800), today, &norms),
            Some(json!(false))
        );
        assert_eq!(
            derive(&rule, &json!(1801), today, &norms),
            Some(json!(true))
        );
        assert_eq!(derive(&rule, &json!(1801), today, &BTreeMap::new()), None);
    }

    #[test]
    fn age_band_uses_the_birthday() {
        let rule = Derivation::AgeBand {
            input: "birth_date".parse().unwrap(),
        };
        let today = date("2026-11-29");
        let norms = BTreeMap::new();
        let at = |d: &str| derive(&rule, &json!(d), today, &norms);
        assert_eq!(at("1999-11-30"), Some(json!("under-27")));
        assert_eq!(at("1999-11-29"), Some(json!("27-49")));
        assert_eq!(at("1976-11-29"), Some(json!("50-and-over")));
        assert_eq!(at("2030-01-01"), None);
    }
}
