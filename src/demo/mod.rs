//! Demo fixtures: in-process stand-ins for the systems strangler sits in front of.

pub mod monolith;
