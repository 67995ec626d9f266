//! poortwachter gateway: the mutual-TLS server, storage, audit log, token verification and CLI
//! around the pure `policy` crate.

pub mod catalogue;
pub mod cli;
