//! The covenant lifecycle for covenant administrators, one job per file: `acts` (draft, amend,
//! sign, suspend, resume, terminate — each audited before it takes effect), `views` (what the
//! administration endpoints show), `snapshot` (the covenant snapshot rebuilt from the database,
//! every stored signature re-verified) and `sync` (picking up changes made by other instances).
//! Only a signature that verifies over a version's own document counts; nothing else activates.

pub mod acts;
pub mod snapshot;
pub mod sync;
pub mod views;
