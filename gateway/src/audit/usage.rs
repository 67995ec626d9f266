//! The usage review for privacy officers (issue 16.4): per employee (the verified actor of the
//! organisation's own disclosure requests) and per day (Europe/Amsterdam), how many disclosures
//! and refusals, how many distinct clients, which purposes — with signals where the
//! configuration's thresholds say to look closer (outside office hours, many clients, many
//! refusals). [`usage`] is pure; [`build`] reads the officer's own organisation's records, after
//! the read is itself audited. Clients appear only as counts, never as pseudonyms or BSNs.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Timelike, Utc, Weekday};
use policy::Oin;
use serde::Serialize;

use crate::audit::record::{AuditEntry, AuditKind, Outcome};
use crate::audit::review::{record_read, Reader, ReviewError, Scope};
use crate::config::UsageReviewSection;
use crate::state::AppState;
use crate::store::review::AuditSelect;

/// The employee column of requests that came without a (valid) actor assertion.
pub const NO_ACTOR: &str = "(no actor assertion)";

/// Records read per page while building a report.
const PAGE: i64 = 5000;

/// A signal on a row: something the thresholds say a privacy officer should look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flag {
    /// At least one request outside office hours (or on a weekend).
    OutsideOfficeHours,
    /// More distinct clients in the day than `max_subjects_per_day`.
    ManySubjects,
    /// A larger share of refusals than `max_refusal_share` (with at least
    /// `min_requests_for_refusal_share` requests).
    HighRefusalShare,
}

impl Flag {
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::OutsideOfficeHours => "outside-office-hours",
            Flag::ManySubjects => "many-subjects",
            Flag::HighRefusalShare => "high-refusal-share",
        }
    }

    /// The Dutch label of the readable page.
    fn label(self) -> &'static str {
        match self {
            Flag::OutsideOfficeHours => "buiten kantoortijd",
            Flag::ManySubjects => "veel cliënten",
            Flag::HighRefusalShare => "veel weigeringen",
        }
    }
}

/// One employee's day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageRow {
    /// The day in Europe/Amsterdam.
    pub day: NaiveDate,
    /// The actor's `sub` (pseudonymous employee id), or [`NO_ACTOR`].
    pub employee: String,
    /// The actor assertion's issuer (empty for [`NO_ACTOR`]).
    pub issuer: String,
    /// Permitted disclosure requests.
    pub disclosures: u32,
    /// Refused disclosure requests.
    pub refusals: u32,
    /// Distinct clients asked about (permitted or refused).
    pub distinct_subjects: usize,
    /// The purposes asked for, sorted.
    pub purposes: Vec<String>,
    /// Requests outside office hours.
    pub outside_office_hours: u32,
    pub flags: Vec<Flag>,
}

/// UTC → Europe/Amsterdam local time (CET/CEST), from the IANA time-zone database (as the
/// data-subject report).
pub fn amsterdam(utc: DateTime<Utc>) -> NaiveDateTime {
    utc.with_timezone(&chrono_tz::Europe::Amsterdam)
        .naive_local()
}

/// The longest period one usage report covers, in days.
pub const MAX_DAYS: i64 = 92;

/// A report period: `to` on or after `from`, at most [`MAX_DAYS`] days in all.
pub fn check_period(from: NaiveDate, to: NaiveDate) -> Result<(), ReviewError> {
    if to < from || (to - from).num_days() >= MAX_DAYS {
        return Err(ReviewError::InvalidParameter {
            name: "to",
            expected: "a date on or after `from`, at most 92 days in all",
        });
    }
    Ok(())
}

/// Whether local time `t` lies outside office hours (`start`..`end` hours, Monday to Friday).
fn outside_office(t: NaiveDateTime, cfg: &UsageReviewSection) -> bool {
    let weekend = matches!(t.weekday(), Weekday::Sat | Weekday::Sun);
    let hour = t.hour();
    (weekend && cfg.weekends_outside_office_hours)
        || hour < cfg.office_hours_start
        || hour >= cfg.office_hours_end
}

#[derive(Default)]
struct Acc {
    issuer: String,
    disclosures: u32,
    refusals: u32,
    subjects: BTreeSet<String>,
    purposes: BTreeSet<String>,
    outside: u32,
}

/// The usage rows of `org`'s disclosure requests among `entries` (other records are ignored),
/// sorted by day, then employee. Pure.
pub fn usage<'a>(
    entries: impl IntoIterator<Item = &'a AuditEntry>,
    org: &str,
    cfg: &UsageReviewSection,
) -> Vec<UsageRow> {
    let mut by: BTreeMap<(NaiveDate, String), Acc> = BTreeMap::new();
    for e in entries {
        if e.kind != Some(AuditKind::Disclosure) || e.requester_oin.as_deref() != Some(org) {
            continue;
        }
        let Ok(time) = DateTime::parse_from_rfc3339(&e.time) else {
            continue;
        };
        let local = amsterdam(time.with_timezone(&Utc));
        let verified = e
            .actor
            .as_ref()
            .filter(|a| a.assertion == "verified")
            .and_then(|a| Some((a.sub.clone()?, a.iss.clone().unwrap_or_default())));
        let (employee, issuer) = verified.unwrap_or_else(|| (NO_ACTOR.to_owned(), String::new()));
        let acc = by.entry((local.date(), employee)).or_default();
        acc.issuer = issuer;
        match e.decision {
            Some(Outcome::Permit) => acc.disclosures += 1,
            _ => acc.refusals += 1,
        }
        if let Some(p) = &e.subject_pseudonym {
            acc.subjects.insert(p.clone());
        }
        if let Some(p) = &e.purpose {
            acc.purposes.insert(p.clone());
        }
        if outside_office(local, cfg) {
            acc.outside += 1;
        }
    }
    by.into_iter()
        .map(|((day, employee), a)| {
            let total = a.disclosures + a.refusals;
            let mut flags = Vec::new();
            if a.outside > 0 {
                flags.push(Flag::OutsideOfficeHours);
            }
            if a.subjects.len() > cfg.max_subjects_per_day {
                flags.push(Flag::ManySubjects);
            }
            if total >= cfg.min_requests_for_refusal_share
                && f64::from(a.refusals) > cfg.max_refusal_share * f64::from(total)
            {
                flags.push(Flag::HighRefusalShare);
            }
            UsageRow {
                day,
                employee,
                issuer: a.issuer,
                disclosures: a.disclosures,
                refusals: a.refusals,
                distinct_subjects: a.subjects.len(),
                purposes: a.purposes.into_iter().collect(),
                outside_office_hours: a.outside,
                flags,
            }
        })
        .collect()
}

/// The CSV columns.
pub const CSV_HEADER: &str = "day,employee,issuer,disclosures,refusals,distinct_subjects,purposes,outside_office_hours,flags\r\n";

/// The report as CSV (RFC 4180; a cell a spreadsheet would run as a formula gets a leading `'`).
pub fn csv(rows: &[UsageRow]) -> String {
    let mut out = String::from(CSV_HEADER);
    for r in rows {
        let cells = [
            r.day.to_string(),
            r.employee.clone(),
            r.issuer.clone(),
            r.disclosures.to_string(),
            r.refusals.to_string(),
            r.distinct_subjects.to_string(),
            r.purposes.join(";"),
            r.outside_office_hours.to_string(),
            r.flags
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(";"),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

fn csv_cell(value: &str) -> String {
    let guarded = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = guarded || value.contains([',', '"', '\n', '\r']);
    let mut s = String::new();
    if quoted {
        s.push('"');
    }
    if guarded {
        s.push('\'');
    }
    s.push_str(&value.replace('"', "\"\""));
    if quoted {
        s.push('"');
    }
    s
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The report as a plain, printable HTML page (Dutch labels), for `org` over `from..to`.
pub fn html(
    rows: &[UsageRow],
    org: &str,
    from: NaiveDate,
    to: NaiveDate,
    cfg: &UsageReviewSection,
) -> String {
    let mut out = String::from(
        "<!doctype html>\n<html lang=\"nl\"><head><meta charset=\"utf-8\">\
         <title>Gebruiksrapportage</title>\
         <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
         th,td{border:1px solid #999;padding:.3em .6em;text-align:left}\
         td.n{text-align:right}.flag{font-weight:bold}</style></head><body>\n",
    );
    out.push_str(&format!(
        "<h1>Gebruiksrapportage (usage report)</h1>\n<p>Organisatie (OIN) {}; periode {} tot en met {} (Europe/Amsterdam).</p>\n",
        html_escape(org),
        from,
        to
    ));
    out.push_str(&format!(
        "<p>Signalen: buiten kantoortijd (vóór {}:00 of vanaf {}:00{}), meer dan {} verschillende cliënten per dag, meer dan {:.0}% weigeringen (bij ten minste {} verzoeken).</p>\n",
        cfg.office_hours_start,
        cfg.office_hours_end,
        if cfg.weekends_outside_office_hours { ", of in het weekend" } else { "" },
        cfg.max_subjects_per_day,
        cfg.max_refusal_share * 100.0,
        cfg.min_requests_for_refusal_share
    ));
    out.push_str(
        "<table>\n<tr><th>Datum</th><th>Medewerker</th><th>Uitgever</th><th>Verstrekkingen</th>\
         <th>Weigeringen</th><th>Verschillende cliënten</th><th>Doelen</th>\
         <th>Buiten kantoortijd</th><th>Signalen</th></tr>\n",
    );
    for r in rows {
        let flags: Vec<&str> = r.flags.iter().map(|f| f.label()).collect();
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"flag\">{}</td></tr>\n",
            r.day,
            html_escape(&r.employee),
            html_escape(&r.issuer),
            r.disclosures,
            r.refusals,
            r.distinct_subjects,
            html_escape(&r.purposes.join(", ")),
            r.outside_office_hours,
            html_escape(&flags.join(", "))
        ));
    }
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"9\">Geen verzoeken in deze periode.</td></tr>\n");
    }
    out.push_str("</table>\n</body></html>\n");
    out
}

/// Build the report for organisation `org` over the Amsterdam days `from..=to`: an officer may
/// ask only for their own organisation (the console, on the database's machine, for any); the
/// read is audited first, then the organisation's disclosure records are read page by page.
pub async fn build(
    state: &AppState,
    reader: &Reader,
    org: &Oin,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<UsageRow>, ReviewError> {
    if let Scope::Organisation(own) = &reader.scope {
        if own != org {
            return Err(ReviewError::Forbidden);
        }
    }
    check_period(from, to)?;
    record_read(
        state,
        reader,
        &format!("usage-report org={org} from={from} to={to}"),
        None,
        Outcome::Permit,
    )
    .await?;
    // UTC bounds that cover the local days (a day or so either side; rows outside are dropped).
    let utc = |d: NaiveDate| {
        crate::timefmt::audit_time(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
    };
    let mut select = AuditSelect {
        party: Some(org.to_string()),
        kind: Some(AuditKind::Disclosure.as_str().to_owned()),
        time_from: Some(utc(from - Duration::days(1))),
        time_to: Some(utc(to + Duration::days(2))),
        ..Default::default()
    };
    let mut entries = Vec::new();
    loop {
        let page = state.store.audit_select(&select, PAGE).await?;
        let Some(last) = page.last() else { break };
        select.after = last.seq;
        let done = (page.len() as i64) < PAGE;
        entries.extend(page.into_iter().map(|r| r.entry));
        if done {
            break;
        }
    }
    let mut rows = usage(&entries, org.as_str(), &state.config.usage_review);
    rows.retain(|r| r.day >= from && r.day <= to);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::ActorFacts;

    const SDD: &str = "00000001823288444000";
    const UWV: &str = "00000001003214345000";

    fn cfg() -> UsageReviewSection {
        UsageReviewSection {
            max_subjects_per_day: 3,
            ..UsageReviewSection::default()
        }
    }

    /// A disclosure record at `time` (UTC) by `sub` (none: no actor) about `subject`.
    fn rec(
        time: &str,
        sub: Option<&str>,
        subject: &str,
        purpose: &str,
        permit: bool,
    ) -> AuditEntry {
        AuditEntry {
            id: format!("dsc_{time}_{subject}"),
            kind: Some(AuditKind::Disclosure),
            time: time.into(),
            requester_oin: Some(SDD.into()),
            source_oin: Some(UWV.into()),
            subject_pseudonym: Some(format!("p-{subject}")),
            purpose: Some(purpose.into()),
            decision: Some(if permit {
                Outcome::Permit
            } else {
                Outcome::Refuse
            }),
            actor: Some(match sub {
                Some(s) => ActorFacts {
                    assertion: "verified".into(),
                    iss: Some("https://idp.sdd.example".into()),
                    sub: Some(s.into()),
                    role: None,
                    defect: None,
                },
                None => ActorFacts::none(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn amsterdam_time_follows_summer_and_winter_time() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(amsterdam(t("2026-01-15T12:00:00Z")).hour(), 13);
        assert_eq!(amsterdam(t("2026-07-15T12:00:00Z")).hour(), 14);
        // 2026: summer time from Sunday 29 March 01:00 UTC to Sunday 25 October 01:00 UTC.
        assert_eq!(amsterdam(t("2026-03-29T00:59:59Z")).hour(), 1);
        assert_eq!(amsterdam(t("2026-03-29T01:00:00Z")).hour(), 3);
        assert_eq!(amsterdam(t("2026-10-25T00:59:59Z")).hour(), 2);
        assert_eq!(amsterdam(t("2026-10-25T01:00:00Z")).hour(), 2);
        // Late UTC evening is already the next day in Amsterdam.
        assert_eq!(
            amsterdam(t("2026-11-24T23:30:00Z")).date(),
            NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
        );
    }

    /// A made-up Wednesday (25 November 2026, winter time: local = UTC + 1) of SDD traffic.
    #[test]
    fn a_made_up_day_of_traffic_gives_the_expected_counts_and_flags() {
        let mut day = vec![
            // emp-a: an ordinary day: three clients, two purposes, one refusal of five.
            rec(
                "2026-11-25T08:05:00Z",
                Some("emp-a"),
                "1",
                "job-mediation",
                true,
            ),
            rec(
                "2026-11-25T09:10:00Z",
                Some("emp-a"),
                "2",
                "job-mediation",
                true,
            ),
            rec(
                "2026-11-25T10:15:00Z",
                Some("emp-a"),
                "2",
                "bijstand-intake",
                true,
            ),
            rec(
                "2026-11-25T12:20:00Z",
                Some("emp-a"),
                "3",
                "job-mediation",
                false,
            ),
            rec(
                "2026-11-25T14:25:00Z",
                Some("emp-a"),
                "3",
                "job-mediation",
                true,
            ),
            // emp-b: at 21:30 local, and at 06:15 local; five different clients; three of four
            // refused.
            rec(
                "2026-11-25T20:30:00Z",
                Some("emp-b"),
                "4",
                "job-mediation",
                false,
            ),
            rec(
                "2026-11-25T05:15:00Z",
                Some("emp-b"),
                "5",
                "job-mediation",
                false,
            ),
            rec(
                "2026-11-25T10:00:00Z",
                Some("emp-b"),
                "6",
                "job-mediation",
                false,
            ),
            rec(
                "2026-11-25T11:00:00Z",
                Some("emp-b"),
                "7",
                "job-mediation",
                true,
            ),
            // A request without an actor assertion.
            rec("2026-11-25T09:00:00Z", None, "1", "job-mediation", true),
            // 23:30 UTC is 00:30 on the 26th in Amsterdam: another day, and outside hours.
            rec(
                "2026-11-25T23:30:00Z",
                Some("emp-a"),
                "9",
                "job-mediation",
                true,
            ),
        ];
        // Not counted: another organisation's request, and a record of another kind.
        let mut other = rec(
            "2026-11-25T10:00:00Z",
            Some("emp-x"),
            "8",
            "job-mediation",
            true,
        );
        other.requester_oin = Some(UWV.into());
        day.push(other);
        let mut stored = rec("2026-11-25T10:00:00Z", None, "8", "job-mediation", true);
        stored.kind = Some(AuditKind::HandoverStored);
        day.push(stored);

        let rows = usage(&day, SDD, &cfg());
        let d25 = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let d26 = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        type Summary<'a> = (NaiveDate, &'a str, u32, u32, usize, u32, Vec<Flag>);
        let summary: Vec<Summary> = rows
            .iter()
            .map(|r| {
                (
                    r.day,
                    r.employee.as_str(),
                    r.disclosures,
                    r.refusals,
                    r.distinct_subjects,
                    r.outside_office_hours,
                    r.flags.clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (d25, NO_ACTOR, 1, 0, 1, 0, vec![]),
                (d25, "emp-a", 4, 1, 3, 0, vec![]),
                (
                    d25,
                    "emp-b",
                    1,
                    3,
                    4,
                    2,
                    vec![
                        Flag::OutsideOfficeHours,
                        Flag::ManySubjects,
                        Flag::HighRefusalShare
                    ]
                ),
                (d26, "emp-a", 1, 0, 1, 1, vec![Flag::OutsideOfficeHours]),
            ]
        );
        assert_eq!(rows[1].purposes, ["bijstand-intake", "job-mediation"]);
        assert_eq!(rows[1].issuer, "https://idp.sdd.example");

        let text = csv(&rows);
        assert!(text.starts_with(CSV_HEADER));
        assert!(text.contains(
            "2026-11-25,emp-b,https://idp.sdd.example,1,3,4,job-mediation,2,outside-office-hours;many-subjects;high-refusal-share\r\n"
        ), "{text}");
        let page = html(&rows, SDD, d25, d26, &cfg());
        assert!(page.contains("<th>Medewerker</th>"));
        assert!(page.contains("buiten kantoortijd, veel cliënten, veel weigeringen"));
        assert!(!page.contains("p-1"), "no pseudonym on the page");
    }

    #[test]
    fn weekends_count_as_outside_office_hours_unless_configured_otherwise() {
        // Saturday 28 November 2026, 11:00 local.
        let day = [rec(
            "2026-11-28T10:00:00Z",
            Some("emp-a"),
            "1",
            "job-mediation",
            true,
        )];
        assert_eq!(usage(&day, SDD, &cfg())[0].outside_office_hours, 1);
        let weekdays_only = UsageReviewSection {
            weekends_outside_office_hours: false,
            ..cfg()
        };
        assert_eq!(usage(&day, SDD, &weekdays_only)[0].outside_office_hours, 0);
    }

    #[test]
    fn html_escapes_what_the_employee_id_carries() {
        let rows = usage(
            &[rec(
                "2026-11-25T10:00:00Z",
                Some("<script>"),
                "1",
                "job-mediation",
                true,
            )],
            SDD,
            &cfg(),
        );
        let d = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let page = html(&rows, SDD, d, d, &cfg());
        assert!(page.contains("&lt;script&gt;") && !page.contains("<script>"));
    }
}
