//! DEVELOPMENT ONLY. What the demo, the tests, the load generator and `poortwachter dev` need
//! around the gateway and that production must never carry: throw-away certificates and keys
//! (`certs`). It does not depend on the `gateway` crate, and the gateway library does not
//! depend on it.

pub mod certs;
