//! The data-subject report (GDPR art. 15(1)(c)): every disclosure of one person's data — when, to
//! which organisation, which fields, for what purpose, on what basis, under which consent — as
//! JSON and as a plain-language HTML document (Dutch or English) an officer can hand to the
//! person. Field *names* only, never values; the BSN only masked; every text in the HTML escaped.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use policy::{Bsn, CovenantSet, FieldName, Oin};
use serde::Serialize;

use crate::audit::record::{AuditKind, AuditRecord, Outcome};
use crate::audit::review::{record_read, Reader, ReviewError, Scope};
use crate::state::AppState;
use crate::store::review::AuditSelect;
use crate::timefmt::audit_time;

/// Records read from the store per round trip while building a report.
const PAGE: i64 = 500;

/// An organisation as the person should read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgRef {
    pub oin: String,
    /// The configured name; `None` for an organisation this gateway no longer knows.
    pub name: Option<String>,
}

/// A released field: its catalogue name and description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportedField {
    pub name: String,
    pub description: Option<String>,
}

/// One disclosure of the person's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportedDisclosure {
    pub disclosure_id: String,
    pub time: String,
    pub recipient: OrgRef,
    /// The employee at the recipient who asked: the verified actor (issue 16), or on older records
    /// the `on_behalf_of` the recipient said.
    pub recipient_person: Option<String>,
    pub source: Option<OrgRef>,
    pub purpose: Option<String>,
    /// `consent`, `legal-obligation` or `public-task`.
    pub legal_basis: Option<String>,
    /// The covenant's own wording of the basis, when the covenant version is still loaded.
    pub basis_text: Option<String>,
    /// `id@version#sha256:…`
    pub covenant: Option<String>,
    pub consent_id: Option<String>,
    pub fields: Vec<ReportedField>,
}

/// Whose disclosures the report covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "covers")]
pub enum ReportScope {
    /// Every disclosure through this gateway.
    All,
    /// Disclosures in which this organisation was recipient or source.
    Organisation { organisation: OrgRef },
}

/// The report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectReport {
    /// The BSN, masked (`*******33`).
    pub subject: String,
    pub generated_at: String,
    pub scope: ReportScope,
    /// Oldest first.
    pub disclosures: Vec<ReportedDisclosure>,
}

/// What turns audit records into something a person can read.
pub struct ReportContext<'a> {
    pub organisations: &'a HashMap<Oin, String>,
    pub covenants: &'a CovenantSet,
}

impl ReportContext<'_> {
    fn org(&self, oin: &str) -> OrgRef {
        OrgRef {
            oin: oin.to_owned(),
            name: oin
                .parse::<Oin>()
                .ok()
                .and_then(|o| self.organisations.get(&o).cloned()),
        }
    }

    fn field(&self, name: &str) -> ReportedField {
        let description = name.parse::<FieldName>().ok().and_then(|f| {
            self.covenants
                .catalogue()
                .get(&f)
                .map(|s| s.description.clone())
        });
        ReportedField {
            name: name.to_owned(),
            description,
        }
    }

    /// The covenant's wording of the basis for (`covenant`, `purpose`, `source`).
    fn basis_text(&self, covenant: &str, purpose: &str, source: Option<&str>) -> Option<String> {
        let entry = self
            .covenants
            .entries()
            .iter()
            .find(|e| e.reference.to_string() == covenant)?;
        entry
            .covenant
            .grants
            .iter()
            .find(|g| {
                g.purpose.as_str() == purpose && source.is_none_or(|s| g.source.as_str() == s)
            })
            .map(|g| g.basis_text.clone())
    }

    /// The disclosures among `records`: permits that released at least one field. A permit that
    /// released nothing (no record held) disclosed no data about the person.
    pub fn disclosures(
        &self,
        records: impl IntoIterator<Item = AuditRecord>,
    ) -> Vec<ReportedDisclosure> {
        records
            .into_iter()
            .map(|r| r.entry)
            .filter(|e| {
                e.kind == Some(AuditKind::Disclosure)
                    && e.decision == Some(Outcome::Permit)
                    && !e.fields_released.is_empty()
            })
            .map(|e| ReportedDisclosure {
                basis_text: match (&e.covenant, &e.purpose) {
                    (Some(c), Some(p)) => self.basis_text(c, p, e.source_oin.as_deref()),
                    _ => None,
                },
                recipient: self.org(e.requester_oin.as_deref().unwrap_or("")),
                // Issue 16: the verified employee; older records: the unverified `on_behalf_of`.
                recipient_person: e
                    .actor
                    .as_ref()
                    .and_then(|a| a.sub.clone())
                    .or(e.requester_person),
                source: e.source_oin.as_deref().map(|s| self.org(s)),
                fields: e.fields_released.iter().map(|f| self.field(f)).collect(),
                disclosure_id: e.id,
                time: e.time,
                purpose: e.purpose,
                legal_basis: e.legal_basis,
                covenant: e.covenant,
                consent_id: e.consent_id,
            })
            .collect()
    }
}

/// Build the report on `bsn` for `reader`: record the read (with the subject's pseudonym), then
/// read the subject's permitted disclosures within the reader's scope.
pub async fn build(
    state: &AppState,
    reader: &Reader,
    bsn: &Bsn,
) -> Result<SubjectReport, ReviewError> {
    let pseudonym = state.pseudonymizer.pseudonym(bsn);
    record_read(
        state,
        reader,
        "subject-report",
        Some(pseudonym.clone()),
        Outcome::Permit,
    )
    .await?;
    let party = match &reader.scope {
        Scope::All => None,
        Scope::Organisation(o) => Some(o.to_string()),
    };
    let mut select = AuditSelect {
        party,
        subject_pseudonym: Some(pseudonym),
        kind: Some(AuditKind::Disclosure.as_str().to_owned()),
        decision: Some(Outcome::Permit.as_str().to_owned()),
        through: state.store.audit_head().await?.map(|(seq, _)| seq),
        ..Default::default()
    };
    let mut records = Vec::new();
    loop {
        let page = state.store.audit_select(&select, PAGE).await?;
        let Some(last) = page.last() else { break };
        select.after = last.seq;
        let full = page.len() as i64 == PAGE;
        records.extend(page.into_iter().filter(|r| reader.scope.allows(&r.entry)));
        if !full {
            break;
        }
    }
    let covenants = state.covenants();
    let ctx = ReportContext {
        organisations: &state.organisations,
        covenants: &covenants,
    };
    let scope = match &reader.scope {
        Scope::All => ReportScope::All,
        Scope::Organisation(o) => ReportScope::Organisation {
            organisation: ctx.org(o.as_str()),
        },
    };
    Ok(SubjectReport {
        subject: bsn.to_string(),
        generated_at: audit_time(Utc::now()),
        scope,
        disclosures: ctx.disclosures(records),
    })
}

/// The language of the HTML document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Nl,
    En,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "nl" => Some(Lang::Nl),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// HTML-escape text for element content and double-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

struct Words {
    title: &'static str,
    intro: &'static str,
    about: &'static str,
    made: &'static str,
    covers_all: &'static str,
    covers_org: &'static str,
    none: &'static str,
    count: &'static str,
    to: &'static str,
    recipient: &'static str,
    asked_by: &'static str,
    source: &'static str,
    purpose: &'static str,
    basis: &'static str,
    explanation: &'static str,
    consent: &'static str,
    consent_none: &'static str,
    fields: &'static str,
    reference: &'static str,
    covenant: &'static str,
    unknown_org: &'static str,
    footer: &'static str,
}

const NL: Words = Words {
    title: "Overzicht: wie heeft gegevens over u ontvangen?",
    intro: "Dit overzicht laat zien welke organisaties via de gegevenspoort (poortwachter) gegevens \
            over u hebben ontvangen: wanneer, welke gegevens, voor welk doel en op welke grondslag. \
            U heeft hier recht op volgens de AVG, artikel 15 lid 1 onder c. Alleen de soort \
            gegevens staat hier, niet de inhoud.",
    about: "Betreft burgerservicenummer",
    made: "Opgesteld op",
    covers_all: "Dit overzicht bevat alle verstrekkingen via deze gegevenspoort.",
    covers_org: "Dit overzicht bevat de verstrekkingen waarbij deze organisatie partij was:",
    none: "Er zijn via deze gegevenspoort geen gegevens over u verstrekt.",
    count: "Aantal verstrekkingen",
    to: "aan",
    recipient: "Ontvanger",
    asked_by: "Opgevraagd door medewerker",
    source: "Verstrekt door",
    purpose: "Doel",
    basis: "Grondslag",
    explanation: "Toelichting uit het convenant",
    consent: "Uw toestemming",
    consent_none: "niet gebruikt (andere grondslag)",
    fields: "Welke gegevens",
    reference: "Kenmerk",
    covenant: "Convenant",
    unknown_org: "onbekende organisatie",
    footer: "Heeft u vragen, of vindt u dat iets niet klopt? Neem contact op met de functionaris \
             gegevensbescherming van de organisatie die u dit overzicht gaf. Noem het kenmerk van \
             de verstrekking.",
};

const EN: Words = Words {
    title: "Overview: who received data about you?",
    intro: "This overview shows which organisations received data about you through the data \
            gateway (poortwachter): when, which data, for what purpose and on what legal basis. \
            You are entitled to this under the GDPR, article 15(1)(c). Only the kind of data is \
            listed here, not its content.",
    about: "Citizen service number (BSN)",
    made: "Drawn up on",
    covers_all: "This overview covers every disclosure through this gateway.",
    covers_org: "This overview covers the disclosures in which this organisation took part:",
    none: "No data about you has been disclosed through this gateway.",
    count: "Number of disclosures",
    to: "to",
    recipient: "Recipient",
    asked_by: "Requested by employee",
    source: "Disclosed by",
    purpose: "Purpose",
    basis: "Legal basis",
    explanation: "Explanation from the covenant",
    consent: "Your consent",
    consent_none: "not used (another legal basis)",
    fields: "Which data",
    reference: "Reference",
    covenant: "Covenant",
    unknown_org: "unknown organisation",
    footer: "Do you have questions, or do you think something is wrong? Contact the data \
             protection officer of the organisation that gave you this overview, and mention the \
             reference of the disclosure.",
};

fn purpose_label(purpose: &str, lang: Lang) -> Option<&'static str> {
    Some(match (purpose, lang) {
        ("job-mediation", Lang::Nl) => "Bemiddeling naar werk",
        ("job-mediation", Lang::En) => "Helping you find work (job mediation)",
        ("bijstand-intake", Lang::Nl) => "Intake voor een bijstandsuitkering",
        ("bijstand-intake", Lang::En) => "Intake for social assistance (Bijstand)",
        _ => return None,
    })
}

fn basis_label(basis: &str, lang: Lang) -> Option<&'static str> {
    Some(match (basis, lang) {
        ("consent", Lang::Nl) => "Uw toestemming (AVG artikel 6 lid 1 onder a)",
        ("consent", Lang::En) => "Your consent (GDPR article 6(1)(a))",
        ("legal-obligation", Lang::Nl) => "Wettelijke verplichting (AVG artikel 6 lid 1 onder c)",
        ("legal-obligation", Lang::En) => "Legal obligation (GDPR article 6(1)(c))",
        ("public-task", Lang::Nl) => "Taak van algemeen belang (AVG artikel 6 lid 1 onder e)",
        ("public-task", Lang::En) => "Task in the public interest (GDPR article 6(1)(e))",
        _ => return None,
    })
}

/// Dutch wording of the Max WW catalogue fields; other fields show the catalogue description.
fn field_label_nl(name: &str) -> Option<&'static str> {
    Some(match name {
        "available_hours_per_week" => "Aantal uren per week dat u beschikbaar bent voor werk",
        "own_transport" => "Of u eigen vervoer heeft",
        "driving_licence" => "Welke rijbewijzen u heeft",
        "childcare_arranged" => "Of de kinderopvang geregeld is",
        "education_level" => "Uw hoogst afgeronde opleiding",
        "certificates" => "Certificaten en diploma's voor werk",
        "work_experience" => "Uw werkervaring",
        "preferred_sector" => "De sector waarin u het liefst werkt",
        "cv" => "Uw cv",
        "job_ready" => "Het oordeel van de adviseur of u nu aan het werk kunt",
        "wage_value_band" => "De geschatte loonwaarde (in een bandbreedte)",
        "ww_end_date" => "De datum waarop uw WW-uitkering eindigt",
        "partner_income_above_norm" => {
            "Of het inkomen van uw partner boven de bijstandsnorm ligt (geen bedragen)"
        }
        "adviser_contact" => "Naam en contactgegevens van uw UWV-adviseur",
        "debt_assistance" => "Of u schuldhulpverlening krijgt",
        "eviction_risk" => "Of u risico loopt op huisuitzetting",
        "earlier_bijstand" => "Of u eerder bijstand heeft gehad",
        "addiction_treatment_history" => "Eerdere verslavingszorg (gezondheidsgegeven)",
        "mental_health_complaints" => {
            "Psychische klachten die van belang zijn voor werk (gezondheidsgegeven)"
        }
        _ => return None,
    })
}

/// Where the person reading the report lives: times are shown in Dutch local time.
const DUTCH_TIME: chrono_tz::Tz = chrono_tz::Europe::Amsterdam;

/// A stored time (RFC 3339, UTC) as the person reads it: Dutch local time with the zone named
/// (`CET` in winter, `CEST` in summer), e.g. `29-11-2026 om 15:04 (Nederlandse tijd, CET)`.
fn when(time: &str, lang: Lang) -> String {
    match DateTime::parse_from_rfc3339(time) {
        Ok(t) => {
            let t = t.with_timezone(&DUTCH_TIME);
            match lang {
                Lang::Nl => t
                    .format("%d-%m-%Y om %H:%M (Nederlandse tijd, %Z)")
                    .to_string(),
                Lang::En => t.format("%d %b %Y, %H:%M (Dutch time, %Z)").to_string(),
            }
        }
        Err(_) => time.to_owned(),
    }
}

fn org_text(org: &OrgRef, w: &Words) -> String {
    format!(
        "{} (OIN {})",
        escape(org.name.as_deref().unwrap_or(w.unknown_org)),
        escape(&org.oin)
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46em;margin:2em auto;\
padding:0 1em;line-height:1.5;color:#111}h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;\
border-bottom:1px solid #999}table{border-collapse:collapse;width:100%}th,td{text-align:left;\
vertical-align:top;padding:.25em .5em .25em 0}th{width:14em;font-weight:600}code{font-size:.85em;\
color:#555}footer{margin-top:3em;font-size:.9em;color:#333}@media print{body{margin:0}}";

/// The report as a self-contained HTML document (no scripts, no external resources).
pub fn render_html(report: &SubjectReport, lang: Lang) -> String {
    let w = match lang {
        Lang::Nl => &NL,
        Lang::En => &EN,
    };
    let code = match lang {
        Lang::Nl => "nl",
        Lang::En => "en",
    };
    let mut h = String::with_capacity(4096);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"{code}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n\
         <p>{intro}</p>\n<table>\n<tr><th>{about}</th><td>{subject}</td></tr>\n\
         <tr><th>{made}</th><td>{made_at}</td></tr>\n<tr><th>{count}</th><td>{n}</td></tr>\n\
         </table>\n",
        title = escape(w.title),
        intro = escape(w.intro),
        about = escape(w.about),
        subject = escape(&report.subject),
        made = escape(w.made),
        made_at = escape(&when(&report.generated_at, lang)),
        count = escape(w.count),
        n = report.disclosures.len(),
    );
    match &report.scope {
        ReportScope::All => {
            let _ = writeln!(h, "<p>{}</p>", escape(w.covers_all));
        }
        ReportScope::Organisation { organisation } => {
            let _ = writeln!(
                h,
                "<p>{} {}.</p>",
                escape(w.covers_org),
                org_text(organisation, w)
            );
        }
    }
    if report.disclosures.is_empty() {
        let _ = writeln!(h, "<p><strong>{}</strong></p>", escape(w.none));
    }
    for (i, d) in report.disclosures.iter().enumerate() {
        let recipient = d.recipient.name.as_deref().unwrap_or(w.unknown_org);
        let _ = writeln!(
            h,
            "<h2>{}. {} {} {}</h2>\n<table>",
            i + 1,
            escape(&when(&d.time, lang)),
            escape(w.to),
            escape(recipient)
        );
        let mut row = |label: &str, value_html: String| {
            let _ = writeln!(
                h,
                "<tr><th>{}</th><td>{value_html}</td></tr>",
                escape(label)
            );
        };
        row(w.recipient, org_text(&d.recipient, w));
        if let Some(p) = &d.recipient_person {
            row(w.asked_by, escape(p));
        }
        if let Some(s) = &d.source {
            row(w.source, org_text(s, w));
        }
        if let Some(p) = &d.purpose {
            let label = purpose_label(p, lang).unwrap_or(p);
            row(
                w.purpose,
                format!("{} <code>{}</code>", escape(label), escape(p)),
            );
        }
        if let Some(b) = &d.legal_basis {
            row(w.basis, escape(basis_label(b, lang).unwrap_or(b)));
        }
        if let Some(t) = &d.basis_text {
            row(w.explanation, escape(t));
        }
        row(
            w.consent,
            match &d.consent_id {
                Some(c) => format!("<code>{}</code>", escape(c)),
                None => escape(w.consent_none),
            },
        );
        let mut list = String::from("<ul>");
        for f in &d.fields {
            let label = match lang {
                Lang::Nl => field_label_nl(&f.name).or(f.description.as_deref()),
                Lang::En => f.description.as_deref(),
            };
            let _ = write!(
                list,
                "<li>{} <code>{}</code></li>",
                escape(label.unwrap_or(&f.name)),
                escape(&f.name)
            );
        }
        list.push_str("</ul>");
        row(w.fields, list);
        row(
            w.reference,
            format!("<code>{}</code>", escape(&d.disclosure_id)),
        );
        if let Some(c) = &d.covenant {
            row(w.covenant, format!("<code>{}</code>", escape(c)));
        }
        h.push_str("</table>\n");
    }
    let _ = write!(
        h,
        "<footer><p>{}</p></footer>\n</body>\n</html>\n",
        escape(w.footer)
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{AuditEntry, GENESIS};

    const UWV: &str = "00000001003214345000";
    const SDD: &str = "00000001823288444000";

    fn covenants() -> CovenantSet {
        let catalogue = crate::catalogue::load(None).unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text =
            std::fs::read_to_string(root.join("schemas/examples/covenant-drechtsteden.toml"))
                .unwrap();
        let c = policy::Covenant::parse(&text, policy::DocumentFormat::Toml).unwrap();
        CovenantSet::new(
            catalogue,
            vec![policy::CovenantEntry::new(
                c,
                policy::AdminState::Open,
                Default::default(),
            )],
        )
    }

    fn record(seq: i64, e: AuditEntry) -> AuditRecord {
        AuditRecord::chain(seq, e, GENESIS)
    }

    fn permit(id: &str, covenant: &str, fields: &[&str]) -> AuditEntry {
        AuditEntry {
            id: id.into(),
            kind: Some(AuditKind::Disclosure),
            time: "2026-11-25T14:03:00.000000Z".into(),
            requester_oin: Some(SDD.into()),
            requester_person: Some("<b>klant</b>".into()),
            source_oin: Some(UWV.into()),
            purpose: Some("job-mediation".into()),
            legal_basis: Some("consent".into()),
            covenant: Some(covenant.into()),
            consent_id: Some("consent-1".into()),
            fields_released: fields.iter().map(|f| f.to_string()).collect(),
            decision: Some(Outcome::Permit),
            ..Default::default()
        }
    }

    #[test]
    fn only_permits_that_released_fields_are_disclosures() {
        let set = covenants();
        let reference = set.entries()[0].reference.to_string();
        let mut orgs = HashMap::new();
        orgs.insert(
            SDD.parse().unwrap(),
            "Sociale Dienst Drechtsteden".to_owned(),
        );
        let ctx = ReportContext {
            organisations: &orgs,
            covenants: &set,
        };
        let refused = AuditEntry {
            decision: Some(Outcome::Refuse),
            fields_released: vec![],
            ..permit("dsc_r", &reference, &[])
        };
        let consent = AuditEntry {
            kind: Some(AuditKind::ConsentRegistered),
            ..permit("cns_1", &reference, &["own_transport"])
        };
        let got = ctx.disclosures(vec![
            record(1, permit("dsc_1", &reference, &["own_transport", "cv"])),
            record(2, refused),
            record(3, permit("dsc_empty", &reference, &[])),
            record(4, consent),
        ]);
        assert_eq!(got.len(), 1);
        let d = &got[0];
        assert_eq!(d.disclosure_id, "dsc_1");
        assert_eq!(
            d.recipient.name.as_deref(),
            Some("Sociale Dienst Drechtsteden")
        );
        assert_eq!(d.source.as_ref().unwrap().name, None);
        assert!(d.basis_text.as_deref().unwrap().contains("toestemming"));
        assert!(d.fields[0].description.is_some());
    }

    #[test]
    fn html_escapes_everything_and_names_fields_not_values() {
        let set = covenants();
        let orgs = HashMap::new();
        let ctx = ReportContext {
            organisations: &orgs,
            covenants: &set,
        };
        let mut e = permit(
            "dsc_<x>",
            "cov\"><script>alert(1)</script>",
            &["own_transport"],
        );
        e.fields_released.push("weird<field>".into());
        let report = SubjectReport {
            subject: "*******33".into(),
            generated_at: "2026-11-25T15:00:00.000000Z".into(),
            scope: ReportScope::Organisation {
                organisation: OrgRef {
                    oin: SDD.into(),
                    name: Some("A & B <Dienst>".into()),
                },
            },
            disclosures: ctx.disclosures(vec![record(1, e)]),
        };
        for lang in [Lang::Nl, Lang::En] {
            let html = render_html(&report, lang);
            assert!(!html.contains("<script>"), "{html}");
            assert!(!html.contains("<b>klant"), "{html}");
            assert!(!html.contains("weird<field>"), "{html}");
            assert!(html.contains("A &amp; B &lt;Dienst&gt;"));
            assert!(html.contains("dsc_&lt;x&gt;"));
            assert!(html.contains("<code>own_transport</code>"));
            assert!(html.contains("*******33"));
        }
        assert!(render_html(&report, Lang::Nl).contains("Of u eigen vervoer heeft"));
        assert!(render_html(&report, Lang::En).contains("own means of transport"));
    }

    #[test]
    fn times_are_shown_in_dutch_local_time_with_the_zone_named() {
        // Winter: CET is UTC+1.
        assert_eq!(
            when("2026-11-29T14:04:05.123456Z", Lang::Nl),
            "29-11-2026 om 15:04 (Nederlandse tijd, CET)"
        );
        assert_eq!(
            when("2026-11-29T14:04:05.123456Z", Lang::En),
            "29 Nov 2026, 15:04 (Dutch time, CET)"
        );
        // Summer: CEST is UTC+2, and the date moves with the clock.
        assert_eq!(
            when("2026-07-14T22:30:00.000000Z", Lang::Nl),
            "15-07-2026 om 00:30 (Nederlandse tijd, CEST)"
        );
        assert_eq!(
            when("2026-07-14T22:30:00Z", Lang::En),
            "15 Jul 2026, 00:30 (Dutch time, CEST)"
        );
        // Either side of the change to summer time (29 March 2026, 02:00 CET → 03:00 CEST).
        assert!(when("2026-03-29T00:59:00Z", Lang::En).ends_with("01:59 (Dutch time, CET)"));
        assert!(when("2026-03-29T01:00:00Z", Lang::En).ends_with("03:00 (Dutch time, CEST)"));
        // What is not a time is shown as it is.
        assert_eq!(when("gisteren", Lang::Nl), "gisteren");
        let report = SubjectReport {
            subject: "*******33".into(),
            generated_at: "2026-07-14T22:30:00.000000Z".into(),
            scope: ReportScope::All,
            disclosures: vec![],
        };
        let html = render_html(&report, Lang::Nl);
        assert!(
            html.contains("15-07-2026 om 00:30 (Nederlandse tijd, CEST)"),
            "{html}"
        );
        assert!(!html.contains("UTC"), "{html}");
    }

    #[test]
    fn empty_report_says_nothing_was_disclosed() {
        let report = SubjectReport {
            subject: "*******33".into(),
            generated_at: "2026-11-25T15:00:00.000000Z".into(),
            scope: ReportScope::All,
            disclosures: vec![],
        };
        assert!(render_html(&report, Lang::Nl).contains("geen gegevens over u verstrekt"));
        assert!(render_html(&report, Lang::En).contains("No data about you"));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["scope"]["covers"], "all");
    }
}
