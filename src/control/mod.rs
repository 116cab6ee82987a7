//! Control plane: route state (the dial) and its topic, cluster-wide figures, the guard and the
//! rollout, and the admin listener.

pub mod admin;
pub mod figures;
pub mod parity;
pub mod state;
