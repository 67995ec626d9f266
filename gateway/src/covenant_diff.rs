//! What changed between two covenant versions, as data and as plain sentences a covenant
//! administrator or a privacy officer reads without knowing the document format. Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use chrono::NaiveDate;
use policy::{
    Covenant, CovenantRef, Delivery, FieldName, Grant, LegalBasis, Oin, Party, PartyRole, Purpose,
};

/// One change to a grant that exists (for the same purpose and source) in both versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantChange {
    RecipientsAdded(Vec<Oin>),
    RecipientsRemoved(Vec<Oin>),
    FieldsAdded(Vec<FieldName>),
    FieldsRemoved(Vec<FieldName>),
    /// Same fields, another order (changes the hash, not the meaning).
    FieldOrder,
    LegalBasis {
        from: LegalBasis,
        to: LegalBasis,
    },
    BasisText {
        from: String,
        to: String,
    },
    ConsentRequired {
        from: bool,
        to: bool,
    },
    SpecialCategories {
        from: bool,
        to: bool,
    },
    RetentionDays {
        from: u32,
        to: u32,
    },
    /// The entry in the register of processing activities the grant names (none: `None`).
    ProcessingActivity {
        from: Option<String>,
        to: Option<String>,
    },
    // --- issue 16: role-bound grants ---
    /// Roles the recipient's employees may now use the grant in (`was_open`: the grant named no
    /// role before, so any employee could use it).
    RolesAdded {
        roles: Vec<String>,
        was_open: bool,
    },
    /// Roles that may no longer use the grant (`now_open`: it names no role any more).
    RolesRemoved {
        roles: Vec<String>,
        now_open: bool,
    },
    /// Live disclosure (issue 18): stored ↔ live.
    Delivery {
        from: Delivery,
        to: Delivery,
    },
    /// A named norm added, changed or removed (`None` = absent).
    Norm {
        name: String,
        from: Option<i64>,
        to: Option<i64>,
    },
}

/// One change between two versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Id {
        from: String,
        to: String,
    },
    Title {
        from: String,
        to: String,
    },
    Region {
        from: String,
        to: String,
    },
    ValidFrom {
        from: NaiveDate,
        to: NaiveDate,
    },
    ValidUntil {
        from: NaiveDate,
        to: NaiveDate,
    },
    PartyAdded(Party),
    PartyRemoved(Party),
    PartyRenamed {
        oin: Oin,
        from: String,
        to: String,
    },
    PartyRole {
        oin: Oin,
        from: PartyRole,
        to: PartyRole,
    },
    /// Same parties, another order (changes the hash, not the meaning).
    PartyOrder,
    GrantAdded(Grant),
    GrantRemoved(Grant),
    GrantChanged {
        purpose: Purpose,
        source: Oin,
        changes: Vec<GrantChange>,
    },
    /// Same grants, another order (changes the hash, not the meaning).
    GrantOrder,
}

/// The changes from one covenant version to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CovenantDiff {
    pub from: CovenantRef,
    pub to: CovenantRef,
    pub changes: Vec<Change>,
    /// Organisation names from both versions, for rendering.
    names: BTreeMap<Oin, String>,
}

fn added<T: Ord + Clone>(old: &[T], new: &[T]) -> Vec<T> {
    let old: BTreeSet<&T> = old.iter().collect();
    new.iter().filter(|x| !old.contains(x)).cloned().collect()
}

fn grant_changes(a: &Grant, b: &Grant) -> Vec<GrantChange> {
    let mut out = Vec::new();
    let r_added = added(&a.recipients, &b.recipients);
    let r_removed = added(&b.recipients, &a.recipients);
    if !r_added.is_empty() {
        out.push(GrantChange::RecipientsAdded(r_added));
    }
    if !r_removed.is_empty() {
        out.push(GrantChange::RecipientsRemoved(r_removed));
    }
    let f_added = added(&a.fields, &b.fields);
    let f_removed = added(&b.fields, &a.fields);
    if f_added.is_empty() && f_removed.is_empty() && a.fields != b.fields {
        out.push(GrantChange::FieldOrder);
    }
    if !f_added.is_empty() {
        out.push(GrantChange::FieldsAdded(f_added));
    }
    if !f_removed.is_empty() {
        out.push(GrantChange::FieldsRemoved(f_removed));
    }
    if a.legal_basis != b.legal_basis {
        out.push(GrantChange::LegalBasis {
            from: a.legal_basis,
            to: b.legal_basis,
        });
    }
    if a.basis_text != b.basis_text {
        out.push(GrantChange::BasisText {
            from: a.basis_text.clone(),
            to: b.basis_text.clone(),
        });
    }
    if a.consent_required != b.consent_required {
        out.push(GrantChange::ConsentRequired {
            from: a.consent_required,
            to: b.consent_required,
        });
    }
    if a.special_categories != b.special_categories {
        out.push(GrantChange::SpecialCategories {
            from: a.special_categories,
            to: b.special_categories,
        });
    }
    if a.retention_days != b.retention_days {
        out.push(GrantChange::RetentionDays {
            from: a.retention_days,
            to: b.retention_days,
        });
    }
    if a.processing_activity != b.processing_activity {
        out.push(GrantChange::ProcessingActivity {
            from: a.processing_activity.clone(),
            to: b.processing_activity.clone(),
        });
    }
    let roles_added = added(&a.roles, &b.roles);
    let roles_removed = added(&b.roles, &a.roles);
    if !roles_added.is_empty() {
        out.push(GrantChange::RolesAdded {
            roles: roles_added,
            was_open: a.roles.is_empty(),
        });
    }
    if !roles_removed.is_empty() {
        out.push(GrantChange::RolesRemoved {
            roles: roles_removed,
            now_open: b.roles.is_empty(),
        });
    }
    if a.delivery != b.delivery {
        out.push(GrantChange::Delivery {
            from: a.delivery,
            to: b.delivery,
        });
    }
    let names: BTreeSet<&String> = a.norms.keys().chain(b.norms.keys()).collect();
    for name in names {
        let (from, to) = (a.norms.get(name).copied(), b.norms.get(name).copied());
        if from != to {
            out.push(GrantChange::Norm {
                name: name.clone(),
                from,
                to,
            });
        }
    }
    out
}

/// Compare two versions. Grants are matched by (purpose, source), in document order when a
/// pair occurs more than once; parties by OIN.
pub fn diff(a: &Covenant, b: &Covenant) -> CovenantDiff {
    let mut changes = Vec::new();
    if a.id != b.id {
        changes.push(Change::Id {
            from: a.id.to_string(),
            to: b.id.to_string(),
        });
    }
    if a.title != b.title {
        changes.push(Change::Title {
            from: a.title.clone(),
            to: b.title.clone(),
        });
    }
    if a.region != b.region {
        changes.push(Change::Region {
            from: a.region.clone(),
            to: b.region.clone(),
        });
    }
    if a.valid_from != b.valid_from {
        changes.push(Change::ValidFrom {
            from: a.valid_from,
            to: b.valid_from,
        });
    }
    if a.valid_until != b.valid_until {
        changes.push(Change::ValidUntil {
            from: a.valid_until,
            to: b.valid_until,
        });
    }

    let mut party_changed = false;
    for p in &b.parties {
        match a.party(&p.oin) {
            None => {
                party_changed = true;
                changes.push(Change::PartyAdded(p.clone()));
            }
            Some(old) => {
                if old.name != p.name {
                    party_changed = true;
                    changes.push(Change::PartyRenamed {
                        oin: p.oin.clone(),
                        from: old.name.clone(),
                        to: p.name.clone(),
                    });
                }
                if old.role != p.role {
                    party_changed = true;
                    changes.push(Change::PartyRole {
                        oin: p.oin.clone(),
                        from: old.role,
                        to: p.role,
                    });
                }
            }
        }
    }
    for p in &a.parties {
        if !b.is_party(&p.oin) {
            party_changed = true;
            changes.push(Change::PartyRemoved(p.clone()));
        }
    }
    if !party_changed && a.parties != b.parties {
        changes.push(Change::PartyOrder);
    }

    // Pair grants by (purpose, source); the n-th of a pair in A with the n-th in B.
    type Key = (Purpose, Oin);
    let key = |g: &Grant| -> Key { (g.purpose.clone(), g.source.clone()) };
    let mut old_by_key: BTreeMap<Key, Vec<&Grant>> = BTreeMap::new();
    for g in &a.grants {
        old_by_key.entry(key(g)).or_default().push(g);
    }
    let mut taken: BTreeMap<Key, usize> = BTreeMap::new();
    let mut grant_changed = false;
    for g in &b.grants {
        let k = key(g);
        let n = taken.entry(k.clone()).or_default();
        match old_by_key.get(&k).and_then(|v| v.get(*n)) {
            Some(old) => {
                let c = grant_changes(old, g);
                if !c.is_empty() {
                    grant_changed = true;
                    changes.push(Change::GrantChanged {
                        purpose: g.purpose.clone(),
                        source: g.source.clone(),
                        changes: c,
                    });
                }
            }
            None => {
                grant_changed = true;
                changes.push(Change::GrantAdded(g.clone()));
            }
        }
        *n += 1;
    }
    for (k, olds) in &old_by_key {
        let used = taken.get(k).copied().unwrap_or(0);
        for g in olds.iter().skip(used) {
            grant_changed = true;
            changes.push(Change::GrantRemoved((*g).clone()));
        }
    }
    if !grant_changed && a.grants != b.grants {
        changes.push(Change::GrantOrder);
    }

    let mut names = BTreeMap::new();
    for p in a.parties.iter().chain(&b.parties) {
        names.insert(p.oin.clone(), p.name.clone());
    }
    CovenantDiff {
        from: a.reference(),
        to: b.reference(),
        changes,
        names,
    }
}

fn basis_words(b: LegalBasis) -> &'static str {
    match b {
        LegalBasis::Consent => "the client's consent (GDPR art. 6(1)(a))",
        LegalBasis::LegalObligation => "a legal obligation (GDPR art. 6(1)(c))",
        LegalBasis::PublicTask => "a public task (GDPR art. 6(1)(e))",
    }
}

fn role_words(r: PartyRole) -> &'static str {
    match r {
        PartyRole::Source => "source (provides data)",
        PartyRole::Recipient => "recipient (receives data)",
        PartyRole::SourceAndRecipient => "source and recipient",
        PartyRole::Observer => "observer (exchanges no data)",
    }
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn days_between(from: NaiveDate, to: NaiveDate) -> String {
    let days = (to - from).num_days();
    match days {
        d if d > 0 => format!("{d} day(s) later"),
        d if d < 0 => format!("{} day(s) earlier", -d),
        _ => "same day".into(),
    }
}

impl CovenantDiff {
    /// Whether the two versions say the same thing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    fn org(&self, oin: &Oin) -> String {
        match self.names.get(oin) {
            Some(name) => format!("{name} ({oin})"),
            None => oin.to_string(),
        }
    }

    fn orgs(&self, oins: &[Oin]) -> String {
        oins.iter()
            .map(|o| self.org(o))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn grant_summary(&self, g: &Grant) -> String {
        let mut s = format!(
            "{} gives {} these fields: {}; on the basis of {}",
            self.org(&g.source),
            self.orgs(&g.recipients),
            list(&g.fields),
            basis_words(g.legal_basis)
        );
        if g.consent_required {
            s.push_str("; only with the client's consent");
        }
        if g.special_categories {
            s.push_str("; includes special categories of personal data (GDPR art. 9)");
        }
        let _ = write!(s, "; kept for {} days", g.retention_days);
        if let Some(activity) = &g.processing_activity {
            let _ = write!(s, "; recorded as processing activity {activity}");
        }
        if !g.roles.is_empty() {
            let _ = write!(
                s,
                "; only for employees in the role(s): {}",
                g.roles.join(", ")
            );
        }
        if g.delivery == Delivery::Live {
            s.push_str(
                "; fetched live from the source's own service at each disclosure, nothing kept",
            );
        }
        for (name, value) in &g.norms {
            let _ = write!(s, "; norm {name} = {value}");
        }
        s
    }

    fn grant_change_line(&self, c: &GrantChange) -> String {
        match c {
            GrantChange::RecipientsAdded(o) => format!("now also given to: {}", self.orgs(o)),
            GrantChange::RecipientsRemoved(o) => format!("no longer given to: {}", self.orgs(o)),
            GrantChange::FieldsAdded(f) => format!("fields added (now shared): {}", list(f)),
            GrantChange::FieldsRemoved(f) => {
                format!("fields removed (no longer shared): {}", list(f))
            }
            GrantChange::FieldOrder => "the order of the fields changed (nothing else)".into(),
            GrantChange::LegalBasis { from, to } => format!(
                "legal basis changed from {} to {}",
                basis_words(*from),
                basis_words(*to)
            ),
            GrantChange::BasisText { from, to } => {
                format!("legal reference changed from \"{from}\" to \"{to}\"")
            }
            GrantChange::ConsentRequired { to: true, .. } => {
                "the client's consent is now required".into()
            }
            GrantChange::ConsentRequired { to: false, .. } => {
                "the client's consent is no longer required".into()
            }
            GrantChange::SpecialCategories { to: true, .. } => {
                "special categories of personal data (GDPR art. 9, e.g. health) are now allowed"
                    .into()
            }
            GrantChange::SpecialCategories { to: false, .. } => {
                "special categories of personal data (GDPR art. 9) are no longer allowed".into()
            }
            GrantChange::RetentionDays { from, to } => format!(
                "data is kept for {to} days instead of {from} days{}",
                if to < from { " (shorter)" } else { " (longer)" }
            ),
            GrantChange::ProcessingActivity { from, to } => match (from, to) {
                (None, Some(to)) => {
                    format!("now recorded as processing activity {to} (register of processing activities)")
                }
                (Some(from), None) => format!(
                    "no longer names a processing activity (was {from}); its disclosures are logged without one"
                ),
                (Some(from), Some(to)) => {
                    format!("processing activity changed from {from} to {to}")
                }
                (None, None) => "the processing activity is unchanged".into(),
            },
            GrantChange::RolesAdded {
                roles,
                was_open: true,
            } => format!(
                "now only employees in the role(s) {} may use this grant (before: any employee)",
                roles.join(", ")
            ),
            GrantChange::RolesAdded { roles, .. } => format!(
                "employees in the role(s) {} may now also use this grant",
                roles.join(", ")
            ),
            GrantChange::RolesRemoved {
                roles,
                now_open: true,
            } => format!(
                "no longer limited to the role(s) {}: any employee of the recipient may use this grant",
                roles.join(", ")
            ),
            GrantChange::RolesRemoved { roles, .. } => format!(
                "employees in the role(s) {} may no longer use this grant",
                roles.join(", ")
            ),
            GrantChange::Delivery { to: Delivery::Live, .. } => {
                "the fields are now fetched live from the source's own service at each disclosure (nothing kept in the gateway)".into()
            }
            GrantChange::Delivery { .. } => {
                "the fields now come from the record the source hands over (kept in the gateway)".into()
            }
            GrantChange::Norm { name, from: None, to: Some(v) } => {
                format!("norm {name} set to {v}")
            }
            GrantChange::Norm { name, from: Some(v), to: None } => {
                format!("norm {name} (was {v}) removed")
            }
            GrantChange::Norm { name, from, to } => format!(
                "norm {name} changed from {} to {}",
                from.map_or("none".into(), |v| v.to_string()),
                to.map_or("none".into(), |v| v.to_string())
            ),
        }
    }
}

impl fmt::Display for CovenantDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Changes from {} version {} to {} version {}",
            self.from.id, self.from.version, self.to.id, self.to.version
        )?;
        writeln!(f, "  (fingerprint {} → {})", self.from.hash, self.to.hash)?;
        if self.changes.is_empty() {
            if self.from.hash == self.to.hash {
                return writeln!(f, "\nThe two documents are identical.");
            }
            return writeln!(f, "\nNothing changed in content.");
        }
        if self.from.hash != self.to.hash {
            writeln!(
                f,
                "  Every party must sign the new version before it takes effect."
            )?;
        }
        writeln!(f)?;
        for change in &self.changes {
            match change {
                Change::Id { from, to } => writeln!(f, "• Covenant id: {from} → {to}")?,
                Change::Title { from, to } => writeln!(f, "• Title: \"{from}\" → \"{to}\"")?,
                Change::Region { from, to } => writeln!(f, "• Region: {from} → {to}")?,
                Change::ValidFrom { from, to } => writeln!(
                    f,
                    "• Starts on {to} instead of {from} ({})",
                    days_between(*from, *to)
                )?,
                Change::ValidUntil { from, to } => writeln!(
                    f,
                    "• Ends on {to} instead of {from} ({})",
                    days_between(*from, *to)
                )?,
                Change::PartyAdded(p) => writeln!(
                    f,
                    "• New party: {} ({}), as {}",
                    p.name,
                    p.oin,
                    role_words(p.role)
                )?,
                Change::PartyRemoved(p) => {
                    writeln!(f, "• Party leaves the covenant: {} ({})", p.name, p.oin)?
                }
                Change::PartyRenamed { oin, from, to } => {
                    writeln!(f, "• Party {oin} renamed: \"{from}\" → \"{to}\"")?
                }
                Change::PartyRole { oin, from, to } => writeln!(
                    f,
                    "• {} is now {} instead of {}",
                    self.org(oin),
                    role_words(*to),
                    role_words(*from)
                )?,
                Change::PartyOrder => writeln!(f, "• The order of the parties changed")?,
                Change::GrantAdded(g) => writeln!(
                    f,
                    "• New for purpose \"{}\": {}",
                    g.purpose,
                    self.grant_summary(g)
                )?,
                Change::GrantRemoved(g) => writeln!(
                    f,
                    "• Removed for purpose \"{}\": {} no longer gives {} anything for this purpose",
                    g.purpose,
                    self.org(&g.source),
                    self.orgs(&g.recipients)
                )?,
                Change::GrantChanged {
                    purpose,
                    source,
                    changes,
                } => {
                    writeln!(
                        f,
                        "• Purpose \"{purpose}\" (data from {}):",
                        self.org(source)
                    )?;
                    for c in changes {
                        writeln!(f, "    – {}", self.grant_change_line(c))?;
                    }
                }
                Change::GrantOrder => writeln!(f, "• The order of the grants changed")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy::DocumentFormat;

    const V1: &str = include_str!("../../schemas/examples/covenant-drechtsteden.toml");
    const GORINCHEM: &str = "00000001001234567000";

    fn v1() -> Covenant {
        Covenant::parse(V1, DocumentFormat::Toml).expect("example covenant parses")
    }

    fn field(name: &str) -> FieldName {
        name.parse().expect("field name")
    }

    #[test]
    fn role_changes_are_reported_in_plain_words() {
        let a = v1();
        let mut b = a.clone();
        b.version = 2;
        b.grants[0].roles = vec!["intaker-poort".into(), "team-max-ww".into()];
        let text = diff(&a, &b).to_string();
        assert!(
            text.contains("now only employees in the role(s) intaker-poort, team-max-ww may use this grant (before: any employee)"),
            "{text}"
        );
        let mut c = b.clone();
        c.version = 3;
        c.grants[0].roles = vec!["team-max-ww".into(), "klantmanager".into()];
        let text = diff(&b, &c).to_string();
        assert!(
            text.contains("employees in the role(s) klantmanager may now also use this grant"),
            "{text}"
        );
        assert!(
            text.contains("employees in the role(s) intaker-poort may no longer use this grant"),
            "{text}"
        );
        let mut d = c.clone();
        d.version = 4;
        d.grants[0].roles.clear();
        let text = diff(&c, &d).to_string();
        assert!(
            text.contains("no longer limited to the role(s) team-max-ww, klantmanager: any employee of the recipient may use this grant"),
            "{text}"
        );
    }

    #[test]
    fn identical_versions_have_no_changes() {
        let d = diff(&v1(), &v1());
        assert!(d.is_empty());
        assert!(d.to_string().contains("identical"), "{d}");
    }

    #[test]
    fn removed_field_is_named_under_its_purpose() {
        let a = v1();
        let mut b = a.clone();
        b.version = 2;
        b.grants[1]
            .fields
            .retain(|f| f.as_str() != "adviser_contact");
        let d = diff(&a, &b);
        assert_eq!(
            d.changes,
            vec![Change::GrantChanged {
                purpose: "bijstand-intake".parse().unwrap(),
                source: a.grants[1].source.clone(),
                changes: vec![GrantChange::FieldsRemoved(vec![field("adviser_contact")])],
            }]
        );
        let text = d.to_string();
        assert!(
            text.contains("version 1 to drechtsteden-max-ww version 2"),
            "{text}"
        );
        assert!(
            text.contains("Purpose \"bijstand-intake\" (data from UWV"),
            "{text}"
        );
        assert!(
            text.contains("fields removed (no longer shared): adviser_contact"),
            "{text}"
        );
        assert!(text.contains("must sign the new version"), "{text}");
    }

    #[test]
    fn parties_dates_and_grant_terms_are_all_reported() {
        let a = v1();
        let mut b = a.clone();
        b.version = 2;
        b.valid_until = NaiveDate::from_ymd_opt(2028, 12, 31).unwrap();
        b.parties.push(Party {
            oin: GORINCHEM.parse().unwrap(),
            name: "Gemeente Gorinchem".into(),
            role: PartyRole::Recipient,
        });
        let g = &mut b.grants[1];
        g.recipients.push(GORINCHEM.parse().unwrap());
        g.fields.push(field("earlier_bijstand"));
        g.legal_basis = LegalBasis::Consent;
        g.consent_required = true;
        g.retention_days = 180;
        g.processing_activity = Some("https://register.example/pa/intake-2".into());
        b.grants[0].processing_activity = None;
        let d = diff(&a, &b);
        let text = d.to_string();
        for expected in [
            "Ends on 2028-12-31 instead of 2027-12-31 (366 day(s) later)",
            "New party: Gemeente Gorinchem (00000001001234567000), as recipient",
            "now also given to: Gemeente Gorinchem (00000001001234567000)",
            "fields added (now shared): earlier_bijstand",
            "legal basis changed from a legal obligation (GDPR art. 6(1)(c)) to the client's consent",
            "the client's consent is now required",
            "kept for 180 days instead of 365 days (shorter)",
            "processing activity changed from https://register.drechtsteden.example/verwerkingsactiviteiten/bijstand-intake to https://register.example/pa/intake-2",
            "no longer names a processing activity (was https://register.drechtsteden.example/verwerkingsactiviteiten/max-ww-bemiddeling)",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        assert!(matches!(d.changes[0], Change::ValidUntil { .. }));
    }

    #[test]
    fn added_and_removed_grants_and_parties_are_reported() {
        let a = v1();
        let mut b = a.clone();
        b.version = 2;
        let removed = b.grants.remove(0);
        let mut new = removed.clone();
        new.purpose = "re-integration".parse().unwrap();
        new.special_categories = false;
        new.fields = vec![field("job_ready")];
        b.grants.push(new);
        b.parties[1].name = "SDD".into();
        b.parties[0].role = PartyRole::SourceAndRecipient;
        let d = diff(&a, &b);
        let text = d.to_string();
        assert!(
            text.contains("New for purpose \"re-integration\": UWV (00000001003214345000) gives SDD (00000001823288444000) these fields: job_ready"),
            "{text}"
        );
        assert!(
            text.contains(
                "Removed for purpose \"job-mediation\": UWV (00000001003214345000) no longer gives"
            ),
            "{text}"
        );
        assert!(
            text.contains("renamed: \"Sociale Dienst Drechtsteden\" → \"SDD\""),
            "{text}"
        );
        assert!(
            text.contains("is now source and recipient instead of source"),
            "{text}"
        );
    }

    #[test]
    fn reordering_changes_the_hash_and_is_said_to_change_nothing_else() {
        let a = v1();
        let mut b = a.clone();
        b.grants.reverse();
        let d = diff(&a, &b);
        assert_ne!(d.from.hash, d.to.hash);
        assert_eq!(d.changes, vec![Change::GrantOrder]);

        let mut c = a.clone();
        c.grants[1].fields.reverse();
        let d = diff(&a, &c);
        assert_eq!(
            d.changes,
            vec![Change::GrantChanged {
                purpose: "bijstand-intake".parse().unwrap(),
                source: a.grants[1].source.clone(),
                changes: vec![GrantChange::FieldOrder],
            }]
        );
        assert!(d.to_string().contains("order of the fields changed"));
    }

    #[test]
    fn delivery_and_norms_are_reported() {
        let a = v1();
        let mut b = a.clone();
        b.version = 2;
        b.grants[1].delivery = Delivery::Live;
        b.grants[1]
            .norms
            .insert("partner_income_monthly".into(), 1800);
        let d = diff(&a, &b);
        let text = d.to_string();
        assert!(text.contains("fetched live from the source"), "{text}");
        assert!(
            text.contains("norm partner_income_monthly set to 1800"),
            "{text}"
        );
    }

    #[test]
    fn special_categories_and_consent_dropped_are_reported() {
        let a = v1();
        let mut b = a.clone();
        b.grants[0].special_categories = false;
        b.grants[0]
            .fields
            .retain(|f| f.as_str() != "mental_health_complaints");
        b.grants[0].legal_basis = LegalBasis::PublicTask;
        b.grants[0].consent_required = false;
        let text = diff(&a, &b).to_string();
        assert!(text.contains("no longer allowed"), "{text}");
        assert!(text.contains("consent is no longer required"), "{text}");
        assert!(text.contains("mental_health_complaints"), "{text}");
    }
}
