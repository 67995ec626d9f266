//! Review of the audit log by people: who may read what (a privacy officer sees the records in
//! which their own organisation is requester or source; with `operator` too, everything), the
//! filters of `GET /v1/audit/records` parsed once into types, cursor pages, and the meta-audit
//! record that every read leaves *before* anything is read. A subject appears only as its
//! pseudonym: never a BSN in a record, a log line or an error.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use policy::{Bsn, Oin, Purpose};
use serde::Serialize;

use crate::audit::record::{AuditEntry, AuditKind, AuditRecord, Outcome};
use crate::auth::{HumanClaims, Role};
use crate::crypto::{time_ordered_id, Pseudonymizer};
use crate::state::AppState;
use crate::store::review::AuditSelect;
use crate::store::StoreError;
use crate::timefmt::audit_time;

/// Records per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: i64 = 100;
/// The largest page.
pub const MAX_LIMIT: i64 = 1000;

/// Why a read of the audit log is refused or fails. Messages name parameters, never values.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("reading the audit log needs the privacy-officer role")]
    Forbidden,
    #[error("unknown or repeated parameter; allowed here: {allowed}")]
    UnknownParameter { allowed: String },
    #[error("parameter `{name}`: {expected}")]
    InvalidParameter {
        name: &'static str,
        expected: &'static str,
    },
    #[error("the audit log cannot be read: {0}")]
    Store(#[from] StoreError),
    #[error("the audit log cannot be written, so it is not read either")]
    AuditUnavailable,
}

/// Which records a reader may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every record (`operator`, or the console of the machine that holds the database).
    All,
    /// Records in which this organisation is requester or source.
    Organisation(Oin),
}

impl Scope {
    /// Whether `entry` is inside this scope. The database query already selects by scope; this
    /// is the same rule, applied once more to what comes back.
    pub fn allows(&self, entry: &AuditEntry) -> bool {
        match self {
            Scope::All => true,
            Scope::Organisation(org) => {
                let org = Some(org.as_str());
                entry.requester_oin.as_deref() == org || entry.source_oin.as_deref() == org
            }
        }
    }

    fn party(&self) -> Option<String> {
        match self {
            Scope::All => None,
            Scope::Organisation(org) => Some(org.to_string()),
        }
    }
}

/// A person (or the console) reading the audit log, and what they may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    /// The reader's organisation; `None` on the console.
    pub org: Option<Oin>,
    /// The token's `sub`, or `console:<user>`.
    pub person: String,
    pub scope: Scope,
}

impl Reader {
    /// The access rule: the `privacy-officer` role is required; `operator` widens the scope from
    /// the officer's own organisation to every record. `operator` alone reads nothing.
    pub fn officer(claims: &HumanClaims) -> Result<Reader, ReviewError> {
        if !claims.has(Role::PrivacyOfficer) {
            return Err(ReviewError::Forbidden);
        }
        let scope = if claims.has(Role::Operator) {
            Scope::All
        } else {
            Scope::Organisation(claims.org.clone())
        };
        Ok(Reader {
            org: Some(claims.org.clone()),
            person: claims.sub.clone(),
            scope,
        })
    }

    /// Someone with the database and its secrets at hand (`poortwachter audit …`): sees all.
    pub fn console(user: &str) -> Reader {
        Reader {
            org: None,
            person: format!("console:{user}"),
            scope: Scope::All,
        }
    }
}

/// Parameters (of a query string, or the members of a JSON body other than the subject), each
/// given at most once and each one allowed at this endpoint.
#[derive(Debug, Default)]
pub struct Params<'a>(BTreeMap<&'a str, &'a str>);

impl<'a> Params<'a> {
    /// Check `pairs` against `allowed`. Unknown names are not echoed (they could be anything).
    pub fn parse(pairs: &'a [(String, String)], allowed: &[&str]) -> Result<Self, ReviewError> {
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            if !allowed.contains(&k.as_str()) || map.insert(k.as_str(), v.as_str()).is_some() {
                return Err(ReviewError::UnknownParameter {
                    allowed: allowed.join(", "),
                });
            }
        }
        Ok(Params(map))
    }

    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0.get(name).copied()
    }
}

/// The parameters of the review filter (also accepted by the export). The subject is not among
/// them: its BSN is never a parameter (it would travel in a URL); the HTTP layer takes it from a
/// request body and sets [`ReviewFilter::subject`].
pub const FILTER_PARAMS: [&str; 7] = ["from", "to", "purpose", "org", "decision", "reason", "kind"];

/// What a reader asks for. Every member narrows; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewFilter {
    /// Inclusive, in the stored form (RFC 3339 UTC, microseconds).
    pub from: Option<String>,
    /// Exclusive, in the stored form.
    pub to: Option<String>,
    pub purpose: Option<Purpose>,
    /// The counterpart organisation: requester or source of the record.
    pub org: Option<Oin>,
    pub decision: Option<Outcome>,
    pub reason: Option<String>,
    pub kind: Option<AuditKind>,
    /// Matched through its pseudonym; never stored or echoed. Set from a request body, never
    /// from a parameter.
    pub subject: Option<Bsn>,
    /// Issue 16: the employee (verified actor `sub`). Set from a request body, never from a
    /// parameter.
    pub actor: Option<String>,
}

/// Parse an employee id for the `actor` filter: 1 to 128 printable ASCII characters without
/// spaces (as actor assertions carry them); the error does not echo it.
pub fn parse_actor(value: &str) -> Result<String, ReviewError> {
    let ok = (1..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| value.to_owned())
        .ok_or(ReviewError::InvalidParameter {
            name: "actor",
            expected: "an employee id (1 to 128 printable characters without spaces)",
        })
}

/// An RFC 3339 time, or a date (midnight UTC), in the stored form.
fn parse_time(name: &'static str, value: &str) -> Result<String, ReviewError> {
    let invalid = ReviewError::InvalidParameter {
        name,
        expected: "an RFC 3339 time (2026-11-25T10:00:00Z) or a date (2026-11-25)",
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(audit_time(t.with_timezone(&Utc)));
    }
    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| invalid)?;
    Ok(audit_time(date.and_time(chrono::NaiveTime::MIN).and_utc()))
}

fn parse_kind(value: &str) -> Option<AuditKind> {
    serde_json::from_value(serde_json::Value::String(value.to_owned())).ok()
}

fn parse_outcome(value: &str) -> Option<Outcome> {
    match value {
        "permit" => Some(Outcome::Permit),
        "refuse" => Some(Outcome::Refuse),
        _ => None,
    }
}

fn is_reason(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_:.=".contains(&b))
}

impl ReviewFilter {
    /// Parse the filter parameters; the first bad one is named in the error.
    pub fn from_params(p: &Params<'_>) -> Result<ReviewFilter, ReviewError> {
        let invalid = |name, expected| ReviewError::InvalidParameter { name, expected };
        let from = p.get("from").map(|v| parse_time("from", v)).transpose()?;
        let to = p.get("to").map(|v| parse_time("to", v)).transpose()?;
        if let (Some(f), Some(t)) = (&from, &to) {
            if f >= t {
                return Err(invalid("to", "must be later than `from`"));
            }
        }
        Ok(ReviewFilter {
            from,
            to,
            purpose: p
                .get("purpose")
                .map(|v| v.parse())
                .transpose()
                .map_err(|_| invalid("purpose", "a purpose name such as job-mediation"))?,
            org: p
                .get("org")
                .map(|v| v.parse())
                .transpose()
                .map_err(|_| invalid("org", "an OIN of 20 digits"))?,
            decision: p
                .get("decision")
                .map(|v| parse_outcome(v).ok_or(invalid("decision", "permit or refuse")))
                .transpose()?,
            reason: p
                .get("reason")
                .map(|v| {
                    is_reason(v).then(|| v.to_owned()).ok_or(invalid(
                        "reason",
                        "a reason such as consent-required (lowercase letters, digits, -_:.=)",
                    ))
                })
                .transpose()?,
            kind: p
                .get("kind")
                .map(|v| parse_kind(v).ok_or(invalid("kind", "a record kind such as disclosure")))
                .transpose()?,
            subject: None,
            actor: None,
        })
    }

    /// The store selection for this filter within `scope`.
    pub fn select(&self, scope: &Scope, pseudonymizer: &Pseudonymizer) -> AuditSelect {
        AuditSelect {
            party: scope.party(),
            counterpart: self.org.as_ref().map(ToString::to_string),
            kind: self.kind.map(|k| k.as_str().to_owned()),
            purpose: self.purpose.as_ref().map(ToString::to_string),
            decision: self.decision.map(|d| d.as_str().to_owned()),
            reason: self.reason.clone(),
            subject_pseudonym: self.subject.as_ref().map(|b| pseudonymizer.pseudonym(b)),
            actor_sub: self.actor.clone(),
            time_from: self.from.clone(),
            time_to: self.to.clone(),
            after: 0,
            through: None,
        }
    }

    /// A description of the filter for the meta-audit record: names and values, except the
    /// subject, which is only said to be there (its pseudonym is in the record's own member).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let mut add = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                parts.push(format!("{name}={v}"));
            }
        };
        add("from", self.from.clone());
        add("to", self.to.clone());
        add("purpose", self.purpose.as_ref().map(ToString::to_string));
        add("org", self.org.as_ref().map(ToString::to_string));
        add("decision", self.decision.map(|d| d.as_str().to_owned()));
        add("reason", self.reason.clone());
        add("kind", self.kind.map(|k| k.as_str().to_owned()));
        add("subject", self.subject.map(|_| "(pseudonym)".to_owned()));
        add("actor", self.actor.clone());
        parts.join(" ")
    }
}

/// Where a page starts and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// The cursor: the `seq` of the last record of the previous page (0: from the start).
    pub after: i64,
    pub limit: i64,
}

impl PageRequest {
    pub fn from_params(p: &Params<'_>) -> Result<PageRequest, ReviewError> {
        let after =
            match p.get("cursor") {
                None => 0,
                Some(v) => v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or(
                    ReviewError::InvalidParameter {
                        name: "cursor",
                        expected: "the next_cursor of an earlier page",
                    },
                )?,
            };
        let limit = match p.get("limit") {
            None => DEFAULT_LIMIT,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or(ReviewError::InvalidParameter {
                    name: "limit",
                    expected: "a number from 1 to 1000",
                })?,
        };
        Ok(PageRequest { after, limit })
    }
}

/// One page of records, oldest first. Pages follow `seq`, so records appended while a reader
/// pages through appear on later pages, never twice, and nothing is skipped.
#[derive(Debug, Clone, Serialize)]
pub struct RecordPage {
    pub records: Vec<AuditRecord>,
    /// Pass as `cursor` for the next page; `null` when this page reached the end of the log.
    pub next_cursor: Option<String>,
}

/// Make the meta-audit record of a read durable. `what` says what was read (never a BSN);
/// `subject_pseudonym` is set when one person's records were asked for.
pub async fn record_read(
    state: &AppState,
    reader: &Reader,
    what: &str,
    subject_pseudonym: Option<String>,
    decision: Outcome,
) -> Result<String, ReviewError> {
    let id = time_ordered_id("read");
    state
        .audit
        .append(AuditEntry {
            id: id.clone(),
            kind: Some(AuditKind::AuditRead),
            time: audit_time(Utc::now()),
            requester_oin: reader.org.as_ref().map(ToString::to_string),
            requester_person: Some(reader.person.clone()),
            subject_pseudonym,
            decision: Some(decision),
            reason: Some(what.to_owned()),
            ..Default::default()
        })
        .await
        .map_err(|_| ReviewError::AuditUnavailable)?;
    Ok(id)
}

/// A person with a valid token but without the role tried to read `what`: record the attempt
/// (best effort: nothing is read either way) and refuse.
pub async fn refuse(state: &AppState, claims: &HumanClaims, what: &str) -> ReviewError {
    let reader = Reader {
        org: Some(claims.org.clone()),
        person: claims.sub.clone(),
        scope: Scope::Organisation(claims.org.clone()),
    };
    if record_read(state, &reader, what, None, Outcome::Refuse)
        .await
        .is_err()
    {
        tracing::warn!("a refused audit read could not be recorded");
    }
    ReviewError::Forbidden
}

/// `GET /v1/audit/records`: record the read, then return one page.
pub async fn list(
    state: &AppState,
    reader: &Reader,
    filter: &ReviewFilter,
    page: PageRequest,
) -> Result<RecordPage, ReviewError> {
    let mut select = filter.select(&reader.scope, &state.pseudonymizer);
    select.after = page.after;
    let what = [
        "records".to_owned(),
        filter.describe(),
        format!("cursor={} limit={}", page.after, page.limit),
    ]
    .iter()
    .filter(|p| !p.is_empty())
    .cloned()
    .collect::<Vec<_>>()
    .join(" ");
    record_read(
        state,
        reader,
        &what,
        select.subject_pseudonym.clone(),
        Outcome::Permit,
    )
    .await?;
    let mut records = state.store.audit_select(&select, page.limit + 1).await?;
    let more = records.len() as i64 > page.limit;
    records.truncate(page.limit as usize);
    let next_cursor = more
        .then(|| records.last().map(|r| r.seq.to_string()))
        .flatten();
    records.retain(|r| reader.scope.allows(&r.entry));
    Ok(RecordPage {
        records,
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDD: &str = "00000001823288444000";
    const GORINCHEM: &str = "00000001001234567000";

    fn claims(roles: &[Role]) -> HumanClaims {
        HumanClaims {
            sub: "fg-1".into(),
            org: SDD.parse().unwrap(),
            roles: roles.to_vec(),
            iss: "i".into(),
            exp: 0,
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn officer_sees_own_organisation_and_operator_sees_all() {
        let officer = Reader::officer(&claims(&[Role::PrivacyOfficer])).unwrap();
        assert_eq!(officer.scope, Scope::Organisation(SDD.parse().unwrap()));
        let op = Reader::officer(&claims(&[Role::PrivacyOfficer, Role::Operator])).unwrap();
        assert_eq!(op.scope, Scope::All);
        for roles in [&[][..], &[Role::Operator], &[Role::CovenantAdmin]] {
            assert!(matches!(
                Reader::officer(&claims(roles)),
                Err(ReviewError::Forbidden)
            ));
        }
    }

    #[test]
    fn scope_allows_records_where_the_organisation_is_requester_or_source() {
        let scope = Scope::Organisation(SDD.parse().unwrap());
        let mut e = AuditEntry {
            requester_oin: Some(SDD.into()),
            ..Default::default()
        };
        assert!(scope.allows(&e));
        e.requester_oin = Some(GORINCHEM.into());
        assert!(!scope.allows(&e));
        e.source_oin = Some(SDD.into());
        assert!(scope.allows(&e));
        assert!(!scope.allows(&AuditEntry::default()));
        assert!(Scope::All.allows(&AuditEntry::default()));
    }

    #[test]
    fn filter_parses_into_a_selection_within_the_scope() {
        let raw = pairs(&[
            ("from", "2026-11-01"),
            ("to", "2026-11-25T12:00:00+01:00"),
            ("purpose", "job-mediation"),
            ("org", GORINCHEM),
            ("decision", "refuse"),
            ("reason", "no-active-covenant"),
            ("kind", "disclosure"),
        ]);
        let p = Params::parse(&raw, &FILTER_PARAMS).unwrap();
        let mut f = ReviewFilter::from_params(&p).unwrap();
        assert_eq!(f.subject, None);
        f.subject = Some("111222333".parse().unwrap());
        let pz = Pseudonymizer::new(&[7u8; 32]);
        let s = f.select(&Scope::Organisation(SDD.parse().unwrap()), &pz);
        assert_eq!(s.party.as_deref(), Some(SDD));
        assert_eq!(s.counterpart.as_deref(), Some(GORINCHEM));
        assert_eq!(s.time_from.as_deref(), Some("2026-11-01T00:00:00.000000Z"));
        assert_eq!(s.time_to.as_deref(), Some("2026-11-25T11:00:00.000000Z"));
        assert_eq!(s.decision.as_deref(), Some("refuse"));
        assert_eq!(s.kind.as_deref(), Some("disclosure"));
        assert_eq!(
            s.subject_pseudonym,
            Some(pz.pseudonym(&"111222333".parse().unwrap()))
        );
        let text = f.describe();
        assert!(
            !text.contains("111222333") && text.contains("subject="),
            "{text}"
        );
        assert!(Scope::All.party().is_none());
    }

    #[test]
    fn bad_parameters_are_named_without_their_values() {
        let cases: &[(&str, &str, &str)] = &[
            ("from", "yesterday", "from"),
            ("purpose", "Job Mediation", "purpose"),
            ("org", "123", "org"),
            ("decision", "maybe", "decision"),
            ("reason", "<script>", "reason"),
            ("kind", "everything", "kind"),
        ];
        for (name, value, expect) in cases {
            let raw = pairs(&[(name, value)]);
            let p = Params::parse(&raw, &FILTER_PARAMS).unwrap();
            let msg = ReviewFilter::from_params(&p).unwrap_err().to_string();
            assert!(msg.contains(expect) && !msg.contains(value), "{msg}");
        }
        // A subject is never a parameter: its BSN would travel in a URL.
        for name in ["subject", "bsn"] {
            let raw = pairs(&[(name, "111222333")]);
            let e = Params::parse(&raw, &FILTER_PARAMS).unwrap_err();
            assert!(matches!(e, ReviewError::UnknownParameter { .. }));
            assert!(!e.to_string().contains("111222333"));
        }
        let raw = pairs(&[("from", "2026-11-02"), ("to", "2026-11-01")]);
        let p = Params::parse(&raw, &FILTER_PARAMS).unwrap();
        assert!(ReviewFilter::from_params(&p).is_err());
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused_without_echo() {
        let raw = pairs(&[("111222333", "x")]);
        let msg = Params::parse(&raw, &FILTER_PARAMS).unwrap_err().to_string();
        assert!(!msg.contains("111222333"), "{msg}");
        let raw = pairs(&[("purpose", "a"), ("purpose", "b")]);
        assert!(Params::parse(&raw, &FILTER_PARAMS).is_err());
    }

    #[test]
    fn page_request_has_safe_defaults_and_bounds() {
        let empty = Params::default();
        assert_eq!(
            PageRequest::from_params(&empty).unwrap(),
            PageRequest {
                after: 0,
                limit: DEFAULT_LIMIT
            }
        );
        for (k, v) in [
            ("limit", "0"),
            ("limit", "1001"),
            ("cursor", "-1"),
            ("cursor", "x"),
        ] {
            let raw = pairs(&[(k, v)]);
            let p = Params::parse(&raw, &["cursor", "limit"]).unwrap();
            assert!(PageRequest::from_params(&p).is_err(), "{k}={v}");
        }
        let raw = pairs(&[("cursor", "42"), ("limit", "5")]);
        let p = Params::parse(&raw, &["cursor", "limit"]).unwrap();
        assert_eq!(
            PageRequest::from_params(&p).unwrap(),
            PageRequest {
                after: 42,
                limit: 5
            }
        );
    }
}
