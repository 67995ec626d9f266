//! `decide`: the pure disclosure decision. Given a request, a snapshot and the time, it says which
//! fields may be released, which are withheld and why, and on what basis — or why it refuses.
//! [`plan`] does steps 1–2 from the covenants alone (the grant is found once) and says whether
//! step 3 needs the subject's consents; [`DecisionPlan::decide`] does steps 3–4.
//!
//! Order of checks (each can refuse before the next is looked at):
//! 1. a covenant in force to which the requester is a party → else `no-active-covenant`;
//! 2. a grant in it for this purpose with the requester as recipient → else `purpose-not-granted`;
//!    then (issue 16), if the grant names roles: a verified actor → else `actor-required`;
//!    holding one of them → else `role-not-granted`. Decided from the request alone, before any
//!    consent or record of the subject is read (authorisation before reading client data);
//! 3. if the grant requires consent (or a special-category field is asked for): the subject's
//!    *current* consent for this purpose and covenant ([`crate::consent`]: among the valid,
//!    unrevoked consents issued by a party, the newest `iat`, then the greatest `jti` — chosen
//!    without regard to the requester or the fields, so it is the consent a handover record is
//!    held under). It counts only if it names the requester among its recipients. Without one
//!    that counts, a grant requiring consent is refused: `consent-expired` if a lapsed,
//!    never-revoked consent names the requester, else `consent-revoked` if a revoked one does,
//!    else `consent-required`; a grant not requiring consent goes on as without a consent;
//! 4. per field asked for: catalogued, granted, special category allowed by the grant *and* named
//!    by the consent, covered by the consent where consent is required. Nothing releasable →
//!    `field-not-granted` (or `consent-required` when only the consent is lacking). Only fields
//!    the request names are ever released: a request that names none releases nothing (there is
//!    no "give me everything"; the gateway refuses it before deciding, with `fields-required`).
//!
//! A newer consent therefore supersedes an older one for the same purpose and covenant, even
//! when it covers fewer fields or names other recipients: the client's latest word counts.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::actor::Actor;
use crate::canonical::CovenantRef;
use crate::catalogue::FieldSpec;
use crate::consent::{current_consent_for, ConsentLookup};
use crate::covenant::{Delivery, Grant, LegalBasis};
use crate::ids::{Bsn, ConsentId, FieldName, Oin, Purpose};
use crate::snapshot::{ConsentBook, CovenantEntry, CovenantSet, Snapshot};

/// A recipient's request for data about one subject, parsed and validated at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisclosureRequest {
    /// The calling organisation (from its TLS certificate).
    pub requester: Oin,
    pub subject: Bsn,
    pub purpose: Purpose,
    /// The fields asked for. Only these can be released; an empty list releases nothing
    /// (refused `field-not-granted` with nothing withheld).
    pub fields: Vec<FieldName>,
    /// The verified employee behind the call (issue 16), or `None` when the calling system sent
    /// no actor assertion. Only a grant that names roles needs one.
    pub actor: Option<Actor>,
}

/// Why a whole request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefusalReason {
    NoActiveCovenant,
    PurposeNotGranted,
    ConsentRequired,
    ConsentRevoked,
    ConsentExpired,
    FieldNotGranted,
    /// The grant names roles and no valid actor assertion came with the request.
    ActorRequired,
    /// The actor holds none of the roles the grant names.
    RoleNotGranted,
}

impl RefusalReason {
    /// The stable `reason` string of DESIGN.md §3.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::NoActiveCovenant => "no-active-covenant",
            RefusalReason::PurposeNotGranted => "purpose-not-granted",
            RefusalReason::ConsentRequired => "consent-required",
            RefusalReason::ConsentRevoked => "consent-revoked",
            RefusalReason::ConsentExpired => "consent-expired",
            RefusalReason::FieldNotGranted => "field-not-granted",
            RefusalReason::ActorRequired => "actor-required",
            RefusalReason::RoleNotGranted => "role-not-granted",
        }
    }

    pub const ALL: [RefusalReason; 8] = [
        RefusalReason::NoActiveCovenant,
        RefusalReason::PurposeNotGranted,
        RefusalReason::ConsentRequired,
        RefusalReason::ConsentRevoked,
        RefusalReason::ConsentExpired,
        RefusalReason::FieldNotGranted,
        RefusalReason::ActorRequired,
        RefusalReason::RoleNotGranted,
    ];
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one requested field is not released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WithheldReason {
    /// Not in the field catalogue at all.
    UnknownField,
    /// The covenant grant does not include it.
    FieldNotGranted,
    /// A special category (GDPR art. 9) and the grant does not allow special categories.
    SpecialCategoryNotGranted,
    /// A special category and no valid consent names it.
    SpecialCategoryNotConsented,
    /// Consent is required and the consent does not name it.
    #[serde(rename = "consent-does-not-cover-field")]
    ConsentDoesNotCover,
}

impl WithheldReason {
    pub fn as_str(self) -> &'static str {
        match self {
            WithheldReason::UnknownField => "unknown-field",
            WithheldReason::FieldNotGranted => "field-not-granted",
            WithheldReason::SpecialCategoryNotGranted => "special-category-not-granted",
            WithheldReason::SpecialCategoryNotConsented => "special-category-not-consented",
            WithheldReason::ConsentDoesNotCover => "consent-does-not-cover-field",
        }
    }

    fn is_consent_only(self) -> bool {
        matches!(
            self,
            WithheldReason::SpecialCategoryNotConsented | WithheldReason::ConsentDoesNotCover
        )
    }
}

impl fmt::Display for WithheldReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withheld {
    pub field: FieldName,
    pub reason: WithheldReason,
}

/// What a decision relied on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Basis {
    pub covenant: CovenantRef,
    pub source: Oin,
    pub legal_basis: LegalBasis,
    pub consent: Option<ConsentId>,
    pub retention_days: u32,
    /// The grant's entry in the register of processing activities, when the covenant names one.
    pub processing_activity: Option<String>,
    /// Where the released fields come from (issue 18: stored or live from the source).
    pub delivery: Delivery,
    /// The grant's named norms, for derived attributes under live delivery.
    pub norms: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permit {
    /// In request order, without duplicates.
    pub released: Vec<FieldName>,
    pub withheld: Vec<Withheld>,
    pub basis: Basis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: RefusalReason,
    /// Present once a grant was found (refusals at the consent or field step).
    pub basis: Option<Basis>,
    pub withheld: Vec<Withheld>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Permit(Permit),
    Refuse(Refusal),
}

impl Decision {
    pub fn is_permit(&self) -> bool {
        matches!(self, Decision::Permit(_))
    }

    pub fn refusal_reason(&self) -> Option<RefusalReason> {
        match self {
            Decision::Permit(_) => None,
            Decision::Refuse(r) => Some(r.reason),
        }
    }

    pub fn released(&self) -> &[FieldName] {
        match self {
            Decision::Permit(p) => &p.released,
            Decision::Refuse(_) => &[],
        }
    }

    pub fn withheld(&self) -> &[Withheld] {
        match self {
            Decision::Permit(p) => &p.withheld,
            Decision::Refuse(r) => &r.withheld,
        }
    }

    pub fn basis(&self) -> Option<&Basis> {
        match self {
            Decision::Permit(p) => Some(&p.basis),
            Decision::Refuse(r) => r.basis.as_ref(),
        }
    }
}

fn refuse(reason: RefusalReason, basis: Option<Basis>, withheld: Vec<Withheld>) -> Decision {
    Decision::Refuse(Refusal {
        reason,
        basis,
        withheld,
    })
}

/// Steps 1 and 2: the (entry, grant) the request falls under, or why there is none.
fn find_grant(
    request: &DisclosureRequest,
    covenants: &CovenantSet,
    today: NaiveDate,
) -> Result<(usize, usize), RefusalReason> {
    // 1. A covenant in force to which the requester is a party.
    let party_to_active = covenants
        .entries_for_party(&request.requester)
        .iter()
        .any(|&e| covenants.is_in_force(e, today));
    if !party_to_active {
        return Err(RefusalReason::NoActiveCovenant);
    }
    // 2. A grant for this purpose naming the requester as recipient, in a version in force to
    //    which the requester is itself a party (a grant naming a non-party never counts: that
    //    party has not signed it).
    covenants
        .grants_for(&request.requester, &request.purpose)
        .iter()
        .find(|&&(e, _)| {
            covenants.entry(e).covenant.is_party(&request.requester)
                && covenants.is_in_force(e, today)
        })
        .copied()
        .ok_or(RefusalReason::PurposeNotGranted)
}

/// What deciding a request needs, found once from the covenants alone: the grant the request
/// falls under with the requested fields looked up in the catalogue, or the refusal at the
/// covenant or grant step. [`DecisionPlan::needs_consents`] says whether the subject's consents
/// must be read before [`DecisionPlan::decide`]; when not, nothing about the subject is read.
#[derive(Debug, Clone)]
pub struct DecisionPlan<'a> {
    request: &'a DisclosureRequest,
    now: DateTime<Utc>,
    step: Result<Found<'a>, RefusalReason>,
}

/// The grant a request falls under, and what it asks of it.
#[derive(Debug, Clone)]
struct Found<'a> {
    entry: &'a CovenantEntry,
    grant: &'a Grant,
    /// Each requested field once, with its catalogue entry looked up once.
    requested: Vec<(&'a FieldName, Option<&'a FieldSpec>)>,
    /// Whether a requested field is a special category (GDPR art. 9).
    wants_special: bool,
    /// Step 2 (roles): the grant's role the actor used (`None` for a grant without roles), or why the
    /// actor may not use the grant.
    role: Result<Option<&'a String>, RefusalReason>,
}

/// Step 2 (roles): whether `actor` may use `grant`, and with which of its roles.
fn role_check<'a>(
    grant: &'a Grant,
    actor: Option<&Actor>,
) -> Result<Option<&'a String>, RefusalReason> {
    if grant.roles.is_empty() {
        return Ok(None);
    }
    let actor = actor.ok_or(RefusalReason::ActorRequired)?;
    actor
        .role_among(&grant.roles)
        .map(Some)
        .ok_or(RefusalReason::RoleNotGranted)
}

/// Steps 1 and 2 of [`decide`]: find the grant `request` falls under at `now`, once.
pub fn plan<'a>(
    request: &'a DisclosureRequest,
    covenants: &'a CovenantSet,
    now: DateTime<Utc>,
) -> DecisionPlan<'a> {
    let step = find_grant(request, covenants, now.date_naive()).map(|(e, g)| {
        let entry = covenants.entry(e);
        let grant = &entry.covenant.grants[g];
        let catalogue = covenants.catalogue();
        let mut requested: Vec<(&FieldName, Option<&FieldSpec>)> =
            Vec::with_capacity(request.fields.len());
        for f in &request.fields {
            if !requested.iter().any(|(r, _)| *r == f) {
                requested.push((f, catalogue.get(f)));
            }
        }
        let wants_special = requested
            .iter()
            .any(|(_, spec)| spec.is_some_and(|s| s.special_category));
        Found {
            entry,
            grant,
            requested,
            wants_special,
            role: role_check(grant, request.actor.as_ref()),
        }
    });
    DecisionPlan { request, now, step }
}

impl DecisionPlan<'_> {
    /// Whether the decision depends on the subject's consents: the request falls under a grant
    /// that requires consent, or asks for a special-category field. When it does not, the caller
    /// passes an empty [`ConsentBook`] and reads nothing about the subject.
    pub fn needs_consents(&self) -> bool {
        self.step.as_ref().is_ok_and(|found| {
            found.role.is_ok() && (found.grant.consent_required || found.wants_special)
        })
    }

    /// The grant's role the actor used, when the request falls under a grant that names roles
    /// and the actor holds one of them (what the audit record says was used).
    pub fn role_used(&self) -> Option<&str> {
        match &self.step {
            Ok(Found {
                role: Ok(Some(role)),
                ..
            }) => Some(role.as_str()),
            _ => None,
        }
    }

    /// Steps 3 and 4 of [`decide`], against `consents` (at least the subject's, when
    /// [`needs_consents`](Self::needs_consents); otherwise they are not looked at).
    pub fn decide(&self, consents: &ConsentBook) -> Decision {
        let found = match &self.step {
            Ok(found) => found,
            Err(reason) => return refuse(*reason, None, Vec::new()),
        };
        let request = self.request;
        let Found { entry, grant, .. } = *found;

        let mut basis = Basis {
            covenant: entry.reference.clone(),
            source: grant.source.clone(),
            legal_basis: grant.legal_basis,
            consent: None,
            retention_days: grant.retention_days,
            processing_activity: grant.processing_activity.clone(),
            delivery: grant.delivery,
            norms: grant.norms.clone(),
        };

        // 2 (roles). Before anything about the subject is looked at.
        if let Err(reason) = found.role {
            return refuse(reason, Some(basis), Vec::new());
        }

        // 3. Consent, where the grant requires it (and, for special categories, always).
        let consent = if self.needs_consents() {
            match current_consent_for(
                consents.for_subject(&request.subject),
                &request.subject,
                &request.purpose,
                &entry.covenant,
                &request.requester,
                self.now.timestamp(),
            ) {
                ConsentLookup::Valid(record) => Some(&record.claims),
                _ if !grant.consent_required => None,
                ConsentLookup::Revoked => {
                    return refuse(RefusalReason::ConsentRevoked, Some(basis), Vec::new())
                }
                ConsentLookup::Expired => {
                    return refuse(RefusalReason::ConsentExpired, Some(basis), Vec::new())
                }
                ConsentLookup::Missing => {
                    return refuse(RefusalReason::ConsentRequired, Some(basis), Vec::new())
                }
            }
        } else {
            None
        };
        basis.consent = consent.map(|c| c.jti.clone());

        // 4. Field by field.
        let mut released = Vec::with_capacity(found.requested.len());
        let mut withheld = Vec::new();
        for &(field, spec) in &found.requested {
            let reason = match spec {
                None => Some(WithheldReason::UnknownField),
                Some(_) if !grant.fields.contains(field) => Some(WithheldReason::FieldNotGranted),
                Some(spec) if spec.special_category && !grant.special_categories => {
                    Some(WithheldReason::SpecialCategoryNotGranted)
                }
                Some(spec)
                    if spec.special_category && !consent.is_some_and(|c| c.names_field(field)) =>
                {
                    Some(WithheldReason::SpecialCategoryNotConsented)
                }
                Some(_)
                    if grant.consent_required && !consent.is_some_and(|c| c.names_field(field)) =>
                {
                    Some(WithheldReason::ConsentDoesNotCover)
                }
                Some(_) => None,
            };
            match reason {
                Some(reason) => withheld.push(Withheld {
                    field: field.clone(),
                    reason,
                }),
                None => released.push(field.clone()),
            }
        }

        if released.is_empty() {
            let only_consent_lacking =
                !withheld.is_empty() && withheld.iter().all(|w| w.reason.is_consent_only());
            let reason = if only_consent_lacking {
                RefusalReason::ConsentRequired
            } else {
                RefusalReason::FieldNotGranted
            };
            return refuse(reason, Some(basis), withheld);
        }

        Decision::Permit(Permit {
            released,
            withheld,
            basis,
        })
    }
}

/// Decide a disclosure request. Pure: reads only its arguments. The same as
/// [`plan`]`(request, snapshot.covenants, now).decide(snapshot.consents)`.
pub fn decide(
    request: &DisclosureRequest,
    snapshot: &Snapshot<'_>,
    now: DateTime<Utc>,
) -> Decision {
    plan(request, snapshot.covenants, now).decide(snapshot.consents)
}
