//! Integration tests: one test binary (`cargo test --test it`) with a module per area.

mod support;

mod broker_smoke;
mod monolith_smoke;
