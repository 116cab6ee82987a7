//! Event contracts (issue 13): JSON Schemas for a route's event data. The contract as loaded
//! ([`model`]), judging an event at the edge ([`validate`]), the latest violations ([`samples`]),
//! and the compatibility check between two versions of a schema ([`compat`]) and its command ([`cli`]).

pub mod cli;
pub mod compat;
mod keywords;
pub mod model;
pub mod samples;
pub mod validate;

#[cfg(test)]
mod tests;

pub use compat::{check, Breaking, Mode};
pub use model::{Contract, OnInvalid, Schema, WhenNewOwned, ANY_TYPE};
pub use validate::{judge, judge_parsed, Verdict, Violation};
