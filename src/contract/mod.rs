//! Event contracts (issue 13): JSON Schemas for a route's event data; for now the compatibility
//! check between two versions of a schema ([`compat`]) and its command ([`cli`]).

pub mod cli;
pub mod compat;
mod keywords;

#[cfg(test)]
mod tests;

pub use compat::{check, Breaking, Mode};
