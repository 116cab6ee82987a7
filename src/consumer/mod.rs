//! The consumer kit: what a Rust team uses to write a new service against strangler's events.
