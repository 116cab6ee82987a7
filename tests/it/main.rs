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
mod comparator_bound;
mod console;
mod console_browser;
mod consumer_kit;
mod consumer_lag;
mod consumer_lanes;
mod contract_cli;
mod control;
mod crash;
mod dedupe;
mod demo;
mod deploy_live;
mod deploy_metrics;
mod deploy_static;
mod docs;
mod embedded;
mod faults;
mod guard;
mod harness;
mod held_bodies;
mod hostile;
mod hygiene;
mod kafka_tls;
mod large_answer;
mod lifecycle;
mod load;
mod metrics_zero;
mod outage;
mod parity;
mod passthrough;
mod playbook;
mod proxy;
mod python_contract;
mod python_ownership;
mod refusals;
mod reload;
mod route_spelling;
mod route_templates;
mod sign;
mod split;
mod tls_edge;
mod upstream_tls;
mod version;
mod write_ahead;
