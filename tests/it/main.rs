//! Integration tests: one test binary (`cargo test --test it`) with a module per area.

mod support;

mod broker_smoke;
mod monolith_smoke;

// Proxy core (issue 2).
mod admin_api;
mod admin_property;
mod cli;
mod cli_admin;
mod cluster_parity;
mod consumer_kit;
mod control;
mod crash;
mod dedupe;
mod demo;
mod docs;
mod faults;
mod guard;
mod harness;
mod hostile;
mod lifecycle;
mod load;
mod outage;
mod parity;
mod passthrough;
mod proxy;
mod python_contract;
mod refusals;
mod reload;
mod sign;
mod split;
mod write_ahead;
