//! Consents: the claims of a client's signed, purpose-bound consent token (its signature verified
//! elsewhere), and the one rule that says which consent is *current*. Never reads a clock.
//! Whether a consent may be registered at all is [`crate::admission`].
//!
//! # The current consent (one rule, used by disclosure and by the handover store)
//!
//! For a subject, a purpose and a covenant, the *candidates* are the consents of that subject for
//! that purpose under that covenant id, issued by a party of the covenant version at hand. Among
//! the candidates that are valid now (within `nbf..exp`) and not revoked, the current consent is
//! the one with the newest `iat`, and among equal `iat` the greatest `jti`: the client's latest
//! word supersedes older consents for the same purpose and covenant. The choice never depends on
//! who asks or which fields are asked for — a stored handover record knows neither — so a record
//! is held under exactly the consent a disclosure of it is decided under.
//!
//! Without a valid candidate, an out-of-date one that was never revoked makes the answer
//! [`ConsentLookup::Expired`] (the client did not withdraw, it lapsed), else a revoked one makes
//! it [`ConsentLookup::Revoked`], else [`ConsentLookup::Missing`].
//!
//! A disclosure makes the same choice; the current consent counts for the requester only if it
//! names it, and only consents naming the requester are reported to it as revoked or expired (a
//! recipient learns nothing about consents given to others).

use serde::{Deserialize, Serialize};

use crate::covenant::Covenant;
use crate::ids::{Bsn, ConsentId, CovenantId, FieldName, Oin, Purpose};

/// The signed form a consent records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// How consent was obtained, e.g. `signed-paper-form`, `digid-signature`.
    pub method: String,
    /// SHA-256 (hex) of the scanned or signed document.
    pub document_sha256: String,
    /// The adviser (person identifier at the issuer) who recorded it.
    pub recorded_by: String,
}

/// The claims of a consent token (`typ: consent+jwt`). Times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentClaims {
    pub iss: Oin,
    pub sub: Bsn,
    pub aud: String,
    pub jti: ConsentId,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub purpose: Purpose,
    pub recipients: Vec<Oin>,
    pub fields: Vec<FieldName>,
    pub covenant: CovenantId,
    pub evidence: Evidence,
}

impl ConsentClaims {
    /// Whether `now` (Unix seconds) lies within `nbf..exp`.
    pub fn in_validity(&self, now: i64) -> bool {
        self.nbf <= now && now < self.exp
    }

    pub fn names_field(&self, field: &FieldName) -> bool {
        self.fields.contains(field)
    }

    pub fn names_recipient(&self, oin: &Oin) -> bool {
        self.recipients.contains(oin)
    }
}

/// A registered consent and whether its issuer has revoked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub claims: ConsentClaims,
    pub revoked: bool,
}

/// How the search for the current consent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentLookup<'a> {
    /// The current consent: valid now, not revoked, newest `(iat, jti)` among the candidates.
    Valid(&'a ConsentRecord),
    /// No valid candidate, and none lapsed; at least one was revoked.
    Revoked,
    /// No valid candidate; at least one is outside its validity and was never revoked.
    Expired,
    /// No candidate at all.
    Missing,
}

impl<'a> ConsentLookup<'a> {
    /// The current consent, if there is one.
    pub fn valid(self) -> Option<&'a ConsentRecord> {
        match self {
            ConsentLookup::Valid(record) => Some(record),
            _ => None,
        }
    }
}

/// The current consent of `subject` for `purpose` under `covenant` at `now_secs` (Unix seconds):
/// see the [module documentation](self) for the rule.
pub fn current_consent<'a>(
    consents: &'a [ConsentRecord],
    subject: &Bsn,
    purpose: &Purpose,
    covenant: &Covenant,
    now_secs: i64,
) -> ConsentLookup<'a> {
    let scan = scan(consents, subject, purpose, covenant, now_secs, |_| true);
    match scan.current {
        Some(record) => ConsentLookup::Valid(record),
        None => scan.without_current(),
    }
}

/// The current consent as `recipient` sees it: the same choice as [`current_consent`], but one
/// that does not name `recipient` does not count for it, and only candidates naming `recipient`
/// are reported as revoked or expired (a recipient learns nothing about consents given to
/// others).
pub(crate) fn current_consent_for<'a>(
    consents: &'a [ConsentRecord],
    subject: &Bsn,
    purpose: &Purpose,
    covenant: &Covenant,
    recipient: &Oin,
    now_secs: i64,
) -> ConsentLookup<'a> {
    let scan = scan(consents, subject, purpose, covenant, now_secs, |c| {
        c.names_recipient(recipient)
    });
    match scan.current {
        Some(record) if record.claims.names_recipient(recipient) => ConsentLookup::Valid(record),
        _ => scan.without_current(),
    }
}

/// What one pass over the consents found.
struct Scan<'a> {
    current: Option<&'a ConsentRecord>,
    any_revoked: bool,
    any_out_of_time: bool,
}

impl Scan<'_> {
    fn without_current<'a>(&self) -> ConsentLookup<'a> {
        if self.any_out_of_time {
            ConsentLookup::Expired
        } else if self.any_revoked {
            ConsentLookup::Revoked
        } else {
            ConsentLookup::Missing
        }
    }
}

/// The one selection: the valid candidate with the greatest `(iat, jti)`. `reported` only says
/// which invalid candidates count towards `Revoked`/`Expired`; it never changes the choice.
fn scan<'a>(
    consents: &'a [ConsentRecord],
    subject: &Bsn,
    purpose: &Purpose,
    covenant: &Covenant,
    now_secs: i64,
    reported: impl Fn(&ConsentClaims) -> bool,
) -> Scan<'a> {
    let mut found = Scan {
        current: None,
        any_revoked: false,
        any_out_of_time: false,
    };
    for record in consents {
        let c = &record.claims;
        let candidate = c.sub == *subject
            && c.purpose == *purpose
            && c.covenant == covenant.id
            && covenant.is_party(&c.iss);
        if !candidate {
            continue;
        }
        if record.revoked {
            found.any_revoked |= reported(c);
            continue;
        }
        if !c.in_validity(now_secs) {
            found.any_out_of_time |= reported(c);
            continue;
        }
        let newer = found
            .current
            .is_none_or(|best| (c.iat, &c.jti) > (best.claims.iat, &best.claims.jti));
        if newer {
            found.current = Some(record);
        }
    }
    found
}
