//! Covenants (convenanten) between organisations: parties, validity and grants; their structural
//! validation against the field catalogue; parsing from TOML or JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::catalogue::FieldCatalogue;
use crate::ids::{CovenantId, FieldName, Oin, Purpose};

/// The role a party plays in a covenant (informational; grants say who may do what).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartyRole {
    Source,
    Recipient,
    SourceAndRecipient,
    Observer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    pub oin: Oin,
    pub name: String,
    pub role: PartyRole,
}

/// The GDPR art. 6 basis a grant relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegalBasis {
    Consent,
    LegalObligation,
    PublicTask,
}

impl LegalBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            LegalBasis::Consent => "consent",
            LegalBasis::LegalObligation => "legal-obligation",
            LegalBasis::PublicTask => "public-task",
        }
    }
}

impl fmt::Display for LegalBasis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// --- live disclosure (issue 18) -------------------------------------------------------------

/// Where a grant's fields come from when they are disclosed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// From the record the source handed over earlier (`POST /v1/handovers`).
    #[default]
    Stored,
    /// Asked from the source's own service at the moment of disclosure; nothing is kept.
    Live,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Stored => "stored",
            Delivery::Live => "live",
        }
    }

    /// The default, left out of the canonical form so that covenants signed before live
    /// disclosure existed keep their hashes.
    pub fn is_stored(&self) -> bool {
        *self == Delivery::Stored
    }
}

// --- end live disclosure ----------------------------------------------------------------------

/// What one source may hand to which recipients, for one purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub purpose: Purpose,
    pub source: Oin,
    pub recipients: Vec<Oin>,
    pub fields: Vec<FieldName>,
    pub legal_basis: LegalBasis,
    pub basis_text: String,
    pub consent_required: bool,
    #[serde(default)]
    pub special_categories: bool,
    pub retention_days: u32,
    /// Stored (default; absent from the canonical form) or live from the source's service.
    #[serde(default, skip_serializing_if = "Delivery::is_stored")]
    pub delivery: Delivery,
    /// Named norms that derived attributes compare against (e.g. `partner_income_monthly`, in
    /// whole euros). Absent from the canonical form when there are none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub norms: BTreeMap<String, i64>,
    // --- issue 16: role-bound grants ---
    /// The recipient's roles allowed to use this grant (from the actor assertion the calling
    /// system sends). Empty: no role is bound, any caller of the recipient may use it. Left out
    /// of the canonical form when empty, so covenants written before roles existed keep their
    /// hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The entry in the register of processing activities (verwerkingsregister, AVG art. 30)
    /// that this grant's disclosures belong to: an absolute URI, sent as
    /// `dpl.core.processing_activity_id` in Logboek Dataverwerkingen records. Absent from the
    /// canonical form when not set, so covenants signed before it existed keep their hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_activity: Option<String>,
}

/// Whether `s` is an absolute URI as far as a register reference needs: a scheme (a letter, then
/// letters, digits, `+`, `-` or `.`), a colon, and a non-empty rest without spaces or control
/// characters.
pub fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// One version of a covenant document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Covenant {
    pub id: CovenantId,
    pub version: u32,
    pub title: String,
    pub region: String,
    pub parties: Vec<Party>,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    pub grants: Vec<Grant>,
}

/// One thing wrong with a covenant, located by a JSON-pointer-like path (`grants[0].fields[2]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CovenantProblem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for CovenantProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The document format a covenant file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentFormat {
    Json,
    Toml,
}

impl DocumentFormat {
    /// Guess from a file name: `.toml` is TOML, everything else JSON.
    pub fn from_file_name(name: &str) -> Self {
        if name.to_ascii_lowercase().ends_with(".toml") {
            DocumentFormat::Toml
        } else {
            DocumentFormat::Json
        }
    }
}

/// Why a covenant document could not be parsed into a [`Covenant`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl Covenant {
    /// Parse a covenant document. Errors name the offending key path where the parser knows it.
    pub fn parse(text: &str, format: DocumentFormat) -> Result<Self, ParseError> {
        let located = |path: String, msg: String| {
            if path.is_empty() || path == "." {
                ParseError(msg)
            } else {
                ParseError(format!("{path}: {msg}"))
            }
        };
        match format {
            DocumentFormat::Json => {
                let de = &mut serde_json::Deserializer::from_str(text);
                serde_path_to_error::deserialize(de)
                    .map_err(|e| located(e.path().to_string(), e.into_inner().to_string()))
            }
            DocumentFormat::Toml => {
                let de = toml::Deserializer::parse(text).map_err(|e| ParseError(e.to_string()))?;
                serde_path_to_error::deserialize(de).map_err(|e| {
                    located(e.path().to_string(), e.into_inner().message().to_string())
                })
            }
        }
    }

    pub fn party(&self, oin: &Oin) -> Option<&Party> {
        self.parties.iter().find(|p| &p.oin == oin)
    }

    pub fn is_party(&self, oin: &Oin) -> bool {
        self.party(oin).is_some()
    }

    /// Whether `date` lies within `valid_from..=valid_until`.
    pub fn in_validity(&self, date: NaiveDate) -> bool {
        self.valid_from <= date && date <= self.valid_until
    }

    /// Structural checks against the catalogue. An empty result means the covenant is valid.
    pub fn validate(&self, catalogue: &FieldCatalogue) -> Vec<CovenantProblem> {
        let mut problems = Vec::new();
        let mut problem =
            |path: String, message: String| problems.push(CovenantProblem { path, message });
        if self.version == 0 {
            problem("version".into(), "must be 1 or higher".into());
        }
        if self.title.trim().is_empty() {
            problem("title".into(), "must not be empty".into());
        }
        if self.parties.len() < 2 {
            problem(
                "parties".into(),
                "a covenant needs at least two parties".into(),
            );
        }
        let mut seen = BTreeSet::new();
        for (i, p) in self.parties.iter().enumerate() {
            if !seen.insert(&p.oin) {
                problem(
                    format!("parties[{i}].oin"),
                    format!("party {} is listed twice", p.oin),
                );
            }
        }
        if self.valid_until < self.valid_from {
            problem(
                "valid_until".into(),
                format!(
                    "{} is before valid_from {}",
                    self.valid_until, self.valid_from
                ),
            );
        }
        if self.grants.is_empty() {
            problem(
                "grants".into(),
                "a covenant needs at least one grant".into(),
            );
        }
        for (g, grant) in self.grants.iter().enumerate() {
            let at = |rest: &str| format!("grants[{g}].{rest}");
            if !self.is_party(&grant.source) {
                problem(
                    at("source"),
                    format!("{} is not a party to this covenant", grant.source),
                );
            }
            if grant.recipients.is_empty() {
                problem(at("recipients"), "names no recipient".into());
            }
            for (r, recipient) in grant.recipients.iter().enumerate() {
                if !self.is_party(recipient) {
                    problem(
                        at(&format!("recipients[{r}]")),
                        format!("{recipient} is not a party to this covenant"),
                    );
                }
                if recipient == &grant.source {
                    problem(
                        at(&format!("recipients[{r}]")),
                        "the source cannot also be a recipient of its own grant".into(),
                    );
                }
            }
            if grant.fields.is_empty() {
                problem(at("fields"), "names no field".into());
            }
            let mut seen_fields = BTreeSet::new();
            for (f, field) in grant.fields.iter().enumerate() {
                let path = at(&format!("fields[{f}]"));
                if !seen_fields.insert(field) {
                    problem(path.clone(), format!("`{field}` is listed twice"));
                }
                match catalogue.get(field) {
                    None => problem(path, format!("`{field}` is not in the field catalogue")),
                    Some(spec) if spec.special_category && !grant.special_categories => problem(
                        path,
                        format!(
                            "`{field}` is a special category (GDPR art. 9) but this grant does not set special_categories = true"
                        ),
                    ),
                    Some(_) => {}
                }
            }
            // Live disclosure: a derived attribute is computed from its input only when live
            // (stored, it is a plain value the source computed), and needs its norm.
            for (f, field) in grant.fields.iter().enumerate() {
                let Some(derivation) = catalogue.get(field).and_then(|s| s.derived.as_ref()) else {
                    continue;
                };
                if let (Delivery::Live, Some(norm)) = (grant.delivery, derivation.norm()) {
                    if !grant.norms.contains_key(norm) {
                        problem(
                            at(&format!("fields[{f}]")),
                            format!("`{field}` compares against the norm `{norm}`, which this grant's norms do not name"),
                        );
                    }
                }
            }
            if grant.legal_basis == LegalBasis::Consent && !grant.consent_required {
                problem(
                    at("consent_required"),
                    "must be true when legal_basis is consent".into(),
                );
            }
            if grant.retention_days == 0 {
                problem(at("retention_days"), "must be at least 1".into());
            }
            let mut seen_roles = BTreeSet::new();
            for (r, role) in grant.roles.iter().enumerate() {
                let path = at(&format!("roles[{r}]"));
                if !valid_role(role) {
                    problem(
                        path.clone(),
                        "a role is 1 to 64 characters: letters, digits, '-', '_', '.' and ':'"
                            .into(),
                    );
                }
                if !seen_roles.insert(role) {
                    problem(path, format!("`{role}` is listed twice"));
                }
            }
            if grant.basis_text.trim().is_empty() {
                problem(at("basis_text"), "must cite the legal basis".into());
            }
            if let Some(uri) = &grant.processing_activity {
                if !is_absolute_uri(uri) {
                    problem(
                        at("processing_activity"),
                        "must be an absolute URI naming the entry in the register of processing activities".into(),
                    );
                }
            }
            for (h, other) in self.grants.iter().enumerate().take(g) {
                if other.purpose == grant.purpose
                    && other.source == grant.source
                    && other
                        .recipients
                        .iter()
                        .any(|r| grant.recipients.contains(r))
                {
                    problem(
                        at("purpose"),
                        format!(
                            "overlaps grants[{h}]: same purpose, source and a shared recipient"
                        ),
                    );
                }
            }
        }
        problems
    }
}

/// Whether `role` is a well-formed role name (1 to 64 characters: ASCII letters, digits, `-`,
/// `_`, `.`, `:`), as a grant names it and an actor assertion carries it.
pub fn valid_role(role: &str) -> bool {
    (1..=64).contains(&role.len())
        && role
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}
