//! Field-level diff of two outcomes under a route's comparison rules.
