//! DEVELOPMENT ONLY. What the demo, the tests, the load generator and `poortwachter dev` need
//! around the gateway and that production must never carry: throw-away certificates and keys
//! (`certs`) and a mutual-TLS test client (`client`, with its own TLS client configuration in
//! `tls`). It does not depend on the `gateway` crate, and the gateway library does not depend
//! on it.

pub mod certs;
pub mod client;
pub mod tls;
