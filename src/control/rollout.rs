//! Placeholder until the rollout lands (same signatures).
use std::time::SystemTime;
use crate::control::state::{Change, DialState};
use crate::route::assign::{Mode, Share};
use crate::route::RolloutSpec;
pub fn position(_s: &RolloutSpec, _d: &DialState) -> (Option<usize>, Option<Share>) { (None, None) }
pub fn next_at(_s: &RolloutSpec, _d: &DialState) -> Option<SystemTime> { None }
pub fn resume(route: &str, by: &str, reason: &str, spec: &RolloutSpec, dial: &DialState) -> Change {
    Change { route: route.into(), mode: Mode::Split, share: spec.steps[0], by: by.into(), reason: reason.into(), expected_version: None, rollout_paused: false, guard_tripped: dial.guard_tripped && false }
}
