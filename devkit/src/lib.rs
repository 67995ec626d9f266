//! DEVELOPMENT ONLY. What the demo, the tests, the load generator and `poortwachter dev` need
//! around the gateway, and what production must never carry: throw-away certificates and keys
//! (`certs`), a mutual-TLS test client (`client`, with its own TLS client configuration in
//! `tls`), signing what the gateway verifies (`sign`: consent tokens, people's bearer tokens,
//! covenant signatures) and the demo's set-up, fixtures and guided scenario (`demo`).
//!
//! It depends on `policy` for the domain types, never on the `gateway` crate; the gateway library
//! does not depend on it (only the `poortwachter` binary and the tests do).

pub mod certs;
pub mod client;
pub mod demo;
pub mod sign;
pub mod tls;
