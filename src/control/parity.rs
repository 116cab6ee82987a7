//! Placeholder until the cluster-wide parity reader lands (same signatures).

use std::time::{Duration, SystemTime};

use super::figures::Figures;

#[derive(Default)]
pub struct ClusterParity;

impl ClusterParity {
    pub fn caught_up(&self) -> bool {
        true
    }
    pub fn figures(&self, _route: &str, _since: SystemTime) -> Figures {
        Figures::default()
    }
    pub fn window(&self, _route: &str, _span: Duration) -> Figures {
        Figures::default()
    }
    pub fn mismatches(&self, _route: &str, _pointer: Option<&str>, _limit: usize) -> Vec<serde_json::Value> {
        Vec::new()
    }
    pub fn missing(&self, _route: &str, _limit: usize) -> Vec<serde_json::Value> {
        Vec::new()
    }
}
