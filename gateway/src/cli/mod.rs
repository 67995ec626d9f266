//! The production subcommands of the `poortwachter` command line — `serve`, `covenant` and
//! `audit` — as argument types and the functions that run them. The binary (`main.rs`) assembles
//! the command line from these and its own development commands (`demo`, `dev`), which the
//! library does not carry.

pub mod audit;
pub mod audit_read;
pub mod covenant;
pub mod serve;
