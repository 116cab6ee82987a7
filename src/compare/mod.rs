//! Comparing what the monolith and the new services decided: outcomes, the field-level diff, and
//! the comparator that joins the two by event id and records parity.

pub mod comparator;
pub mod core;
pub mod diff;
pub mod digest;
pub mod join;
pub mod lone;
pub mod outcome;
pub mod record;
pub mod refetch;
pub mod rules;
pub mod waiters;
