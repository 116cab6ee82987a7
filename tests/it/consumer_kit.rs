//! The consumer kit against a real broker.
