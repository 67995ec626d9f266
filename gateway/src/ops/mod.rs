//! The use-cases: disclose, hand over, register and revoke consents, covenant acts, retention.
//! Each decides through `policy`, reads and writes through `store`, makes its audit record
//! durable before it answers, and returns `error::OpError`; none of them speaks HTTP.

pub mod consent;
pub mod covenants;
pub mod disclose;
pub mod error;
pub mod handover;
pub mod periodic;
pub mod retention;
