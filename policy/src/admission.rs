//! Consent admissibility: whether verified consent claims may be registered — presented by their
//! issuer, under a covenant the gateway holds with issuer and recipients as parties, naming a
//! recipient and only catalogued fields. Pure; errors name fields, never claim values.

use crate::consent::ConsentClaims;
use crate::ids::{FieldName, Oin};
use crate::snapshot::CovenantSet;

/// Why a consent token may not be registered, although its signature verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentInadmissible {
    /// The organisation presenting the token is not its issuer.
    #[error("only the issuer of a consent may register or revoke it")]
    IssuerNotCaller,
    /// No covenant with the token's id has the issuer and every recipient as parties.
    #[error("the token names a covenant that this gateway does not hold, or organisations that are not its parties")]
    UnknownCovenantOrParties,
    /// The token names no recipient or no field.
    #[error("the token names no recipient or no field")]
    NoRecipientOrField,
    /// A consented field is not in the field catalogue (the first one, by name; never a value).
    #[error("field `{0}` is not in the field catalogue")]
    FieldNotInCatalogue(FieldName),
}

impl ConsentInadmissible {
    /// The stable `reason` string: `not-consent-issuer` or `invalid-consent-token`.
    pub fn reason(&self) -> &'static str {
        match self {
            ConsentInadmissible::IssuerNotCaller => "not-consent-issuer",
            _ => "invalid-consent-token",
        }
    }
}

/// Whether verified consent `claims` presented by `caller` may be registered: the caller is the
/// issuer; some version of the named covenant has the issuer and every recipient as parties; it
/// names at least one recipient and one field; every field is catalogued. Checked in that order.
pub fn admit_consent(
    claims: &ConsentClaims,
    caller: &Oin,
    covenants: &CovenantSet,
) -> Result<(), ConsentInadmissible> {
    if claims.iss != *caller {
        return Err(ConsentInadmissible::IssuerNotCaller);
    }
    let known = covenants.entries().iter().any(|e| {
        e.covenant.id == claims.covenant
            && e.covenant.is_party(&claims.iss)
            && claims.recipients.iter().all(|r| e.covenant.is_party(r))
    });
    if !known {
        return Err(ConsentInadmissible::UnknownCovenantOrParties);
    }
    if claims.recipients.is_empty() || claims.fields.is_empty() {
        return Err(ConsentInadmissible::NoRecipientOrField);
    }
    if let Some(f) = claims
        .fields
        .iter()
        .find(|f| !covenants.catalogue().contains(f))
    {
        return Err(ConsentInadmissible::FieldNotInCatalogue(f.clone()));
    }
    Ok(())
}
