//! Handover acceptance: may a source store this record for this purpose? Every field must be
//! catalogued, of its catalogued type and granted to the source; where the grant needs consent,
//! the record is held under the subject's current consent (the one rule of [`crate::consent`],
//! the same a disclosure of the record is decided under). Pure; problems name fields, never
//! values.

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::canonical::CovenantRef;
use crate::consent::current_consent;
use crate::covenant::{Grant, LegalBasis};
use crate::ids::{Bsn, ConsentId, FieldName, Oin, Purpose};
use crate::snapshot::{ConsentBook, CovenantEntry, CovenantSet};

/// At most this many characters of a rejected field name are echoed back.
const FIELD_ECHO_CHARS: usize = 64;

/// Why a handover record is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HandoverReason {
    /// No covenant in force lets this organisation hand over data for the purpose.
    NotASource,
    /// A field name is malformed or not in the field catalogue.
    FieldNotInCatalogue,
    /// A value does not have the type the catalogue gives its field.
    FieldTypeMismatch,
    /// A catalogued field is not granted to this source for this purpose.
    FieldNotGranted,
    /// The grant needs the client's consent and there is no valid one.
    ConsentRequired,
}

impl HandoverReason {
    /// The stable `reason` string.
    pub fn as_str(self) -> &'static str {
        match self {
            HandoverReason::NotASource => "not-a-source",
            HandoverReason::FieldNotInCatalogue => "field-not-in-catalogue",
            HandoverReason::FieldTypeMismatch => "field-type-mismatch",
            HandoverReason::FieldNotGranted => "field-not-granted",
            HandoverReason::ConsentRequired => "consent-required",
        }
    }

    pub const ALL: [HandoverReason; 5] = [
        HandoverReason::NotASource,
        HandoverReason::FieldNotInCatalogue,
        HandoverReason::FieldTypeMismatch,
        HandoverReason::FieldNotGranted,
        HandoverReason::ConsentRequired,
    ];
}

impl fmt::Display for HandoverReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field of a handover that cannot be stored. Names the field (at most 64 characters of it),
/// never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoverFieldProblem {
    pub field: String,
    pub reason: HandoverReason,
    /// What is wrong, in words: "is not in the field catalogue", ...
    pub problem: &'static str,
}

/// Why a handover record is refused. `Display` gives the problem detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandoverRefusal {
    #[error("no covenant in force lets this organisation hand over data for purpose `{purpose}`")]
    NotASource { purpose: Purpose },
    /// Every field problem at once; `reason` is the first that is not `field-not-granted`, or
    /// `field-not-granted` when all are.
    #[error("the handover record was not stored: {} field(s) are not acceptable", problems.len())]
    Fields {
        reason: HandoverReason,
        problems: Vec<HandoverFieldProblem>,
    },
    #[error("purpose `{purpose}` needs the client's consent: register it before storing data")]
    ConsentRequired { purpose: Purpose },
}

impl HandoverRefusal {
    pub fn reason(&self) -> HandoverReason {
        match self {
            HandoverRefusal::NotASource { .. } => HandoverReason::NotASource,
            HandoverRefusal::Fields { reason, .. } => *reason,
            HandoverRefusal::ConsentRequired { .. } => HandoverReason::ConsentRequired,
        }
    }

    /// The per-field problems (empty unless the fields were refused).
    pub fn problems(&self) -> &[HandoverFieldProblem] {
        match self {
            HandoverRefusal::Fields { problems, .. } => problems,
            _ => &[],
        }
    }
}

/// An accepted handover: the grant it is stored under. Read the subject's consents only when
/// [`needs_consent`](Self::needs_consent), then ask [`held_under`](Self::held_under).
#[derive(Debug, Clone, Copy)]
pub struct HandoverPlan<'a> {
    entry: &'a CovenantEntry,
    grant: &'a Grant,
}

impl<'a> HandoverPlan<'a> {
    /// The covenant version the record is stored under.
    pub fn entry(&self) -> &'a CovenantEntry {
        self.entry
    }

    /// Its reference, `id@version#hash`.
    pub fn covenant(&self) -> &'a CovenantRef {
        &self.entry.reference
    }

    /// The grant that lets the source hand over for this purpose.
    pub fn grant(&self) -> &'a Grant {
        self.grant
    }

    pub fn legal_basis(&self) -> LegalBasis {
        self.grant.legal_basis
    }

    pub fn retention_days(&self) -> u32 {
        self.grant.retention_days
    }

    /// Whether the record must be held under the subject's consent (the grant requires consent).
    pub fn needs_consent(&self) -> bool {
        self.grant.consent_required
    }

    /// The consent the record of `subject` is held under at `now_secs` (Unix seconds): `None`
    /// when the grant needs no consent, else the subject's current consent for this purpose and
    /// covenant ([`current_consent`]), or `consent-required` when there is none valid.
    pub fn held_under(
        &self,
        consents: &ConsentBook,
        subject: &Bsn,
        now_secs: i64,
    ) -> Result<Option<ConsentId>, HandoverRefusal> {
        if !self.needs_consent() {
            return Ok(None);
        }
        let purpose = &self.grant.purpose;
        current_consent(
            consents.for_subject(subject),
            subject,
            purpose,
            &self.entry.covenant,
            now_secs,
        )
        .valid()
        .map(|record| Some(record.claims.jti.clone()))
        .ok_or_else(|| HandoverRefusal::ConsentRequired {
            purpose: purpose.clone(),
        })
    }
}

/// Whether `source` may store a record of `fields` for `purpose` on `today`: the first grant in
/// force from `source` for `purpose` ([`CovenantSet::grants_from_source`]), and every field
/// catalogued, well-typed and granted by it. All field problems are reported at once. An empty
/// `fields` is accepted here; refusing it is the edge's job.
pub fn accept_handover<'a>(
    source: &Oin,
    purpose: &Purpose,
    fields: &BTreeMap<String, serde_json::Value>,
    covenants: &'a CovenantSet,
    today: NaiveDate,
) -> Result<HandoverPlan<'a>, HandoverRefusal> {
    let Some((entry, grant)) = covenants.grants_from_source(source, purpose, today).next() else {
        return Err(HandoverRefusal::NotASource {
            purpose: purpose.clone(),
        });
    };

    let catalogue = covenants.catalogue();
    let mut problems = Vec::new();
    let mut worst = HandoverReason::FieldNotGranted;
    for (name, value) in fields {
        let problem = match name.parse::<FieldName>() {
            Err(_) => Some((
                HandoverReason::FieldNotInCatalogue,
                "is not a valid field name",
            )),
            Ok(field) => match catalogue.get(&field) {
                None => Some((
                    HandoverReason::FieldNotInCatalogue,
                    "is not in the field catalogue",
                )),
                Some(spec) if !spec.field_type.accepts(value) => Some((
                    HandoverReason::FieldTypeMismatch,
                    "does not have the type the catalogue gives it",
                )),
                Some(_) if !grant.fields.contains(&field) => Some((
                    HandoverReason::FieldNotGranted,
                    "is not granted to this source for this purpose",
                )),
                Some(_) => None,
            },
        };
        if let Some((reason, problem)) = problem {
            if reason != HandoverReason::FieldNotGranted && worst == HandoverReason::FieldNotGranted
            {
                worst = reason;
            }
            problems.push(HandoverFieldProblem {
                field: name.chars().take(FIELD_ECHO_CHARS).collect(),
                reason,
                problem,
            });
        }
    }
    if !problems.is_empty() {
        return Err(HandoverRefusal::Fields {
            reason: worst,
            problems,
        });
    }
    Ok(HandoverPlan { entry, grant })
}
