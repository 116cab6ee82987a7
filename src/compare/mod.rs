//! Comparing what the monolith and the new services decided: outcomes, the field-level diff, and
//! the comparator that joins the two by event id and records parity.

pub mod comparator;
pub mod diff;
pub mod join;
pub mod outcome;
pub mod record;
pub mod rules;
pub mod waiters;
