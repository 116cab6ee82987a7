//! Demo fixtures: in-process stand-ins for the systems strangler sits in front of, and the
//! `strangler demo` scene built from them.

pub mod cli;
pub mod decision;
pub mod generator;
pub mod listen;
pub mod monolith;
pub mod scene;
pub mod service;
