//! Control plane: route state (the dial) and the control and audit topics, cluster-wide parity,
//! the guard and the rollout as pure decisions, hot reload, the admin API and the
//! operator console it serves.

pub mod api;
pub mod audit;
pub mod auth;
pub mod autopilot;
pub mod client;
pub mod console;
pub mod figures;
pub mod guard;
pub mod lag;
pub mod parity;
pub mod record;
pub mod reload;
pub mod rollout;
pub mod state;
pub mod topic;
