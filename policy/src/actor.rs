//! The employee behind a call (issue 16): a verified actor assertion, reduced to what the rules
//! need — who (a pseudonymous id and its issuer) and in which roles. Verification (signatures,
//! lifetimes, replay) happens at the edge; here an [`Actor`] is already the issuer's word.

use serde::{Deserialize, Serialize};

/// A verified actor: the person at the requesting organisation on whose behalf a system calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The assertion's `iss`: the requesting organisation's identity provider.
    pub issuer: String,
    /// The assertion's `sub`: a pseudonymous employee id (never a name or a BSN).
    pub sub: String,
    /// The roles the issuer vouches the employee holds at this moment.
    pub roles: Vec<String>,
}

impl Actor {
    /// The first of `allowed` that this actor holds (in the grant's order), if any.
    pub fn role_among<'a>(&self, allowed: &'a [String]) -> Option<&'a String> {
        allowed.iter().find(|r| self.roles.contains(r))
    }
}
