//! Pure rules of poortwachter: no I/O, no async, no clock reads, no globals.
//!
//! - [`decide()`] takes a [`DisclosureRequest`], a [`Snapshot`] (covenants, consents, field
//!   catalogue) and `now`, and returns a [`Decision`] with the exact field set and the reasons;
//!   [`plan()`] is its first half, so a caller reads the subject's consents only when needed.
//! - [`current_consent`] is the one rule for which consent counts, used by disclosure and by
//!   [`HandoverPlan::held_under`]; [`admit_consent`] says whether a consent may be registered;
//!   [`accept_handover`] whether a source may store a record.
//! - The canonical covenant hash is documented in [`canonical`].
//! - Live disclosure's pure half (fields to ask a source for, checking its answer, derived
//!   attributes) is [`live`].

pub mod actor;
pub mod admission;
pub mod canonical;
pub mod catalogue;
pub mod consent;
pub mod covenant;
pub mod decide;
pub mod handover;
pub mod ids;
pub mod live;
pub mod snapshot;

pub use actor::Actor;
pub use admission::{admit_consent, ConsentInadmissible};
pub use canonical::{canonical_json, CovenantRef, Sha256Hash};
pub use catalogue::{
    CatalogueDocument, CatalogueError, Derivation, FieldCatalogue, FieldSpec, FieldType, AGE_BANDS,
};
pub use consent::{current_consent, ConsentClaims, ConsentLookup, ConsentRecord, Evidence};
pub use covenant::{
    Covenant, CovenantProblem, Delivery, DocumentFormat, Grant, LegalBasis, ParseError, Party,
    PartyRole,
};
pub use decide::{
    decide, plan, Basis, Decision, DecisionPlan, DisclosureRequest, Permit, Refusal, RefusalReason,
    Withheld, WithheldReason,
};
pub use handover::{
    accept_handover, HandoverFieldProblem, HandoverPlan, HandoverReason, HandoverRefusal,
};
pub use ids::{Bsn, ConsentId, CovenantId, FieldName, IdError, Oin, Purpose};
pub use snapshot::{AdminState, ConsentBook, CovenantEntry, CovenantSet, CovenantState, Snapshot};
