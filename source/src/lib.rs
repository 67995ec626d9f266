//! The reference source service (UWV side) for live disclosure: it answers the gateway's
//! question "these fields of this subject, for this purpose" over mutual TLS, only to the
//! gateway's pinned client certificate, with exactly the fields asked for. Its interface is
//! `schemas/source-openapi.yaml`. It logs who asked, for what purpose, under which covenant and
//! disclosure id, and which field names it answered; never a BSN, never a value.

pub mod config;
pub mod data;
pub mod server;
pub mod wire;
