//! Cluster-wide figures for one route over one span of time, as the guard, the rollout and the
//! admin API read them. Built from the parity topic by [`super::parity`]; plain data here.

use serde::Serialize;

/// Counts over one span of time (every replica computes the same ones from the parity topic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// Shadow comparisons: `match`.
    pub matched: u64,
    /// Shadow comparisons: `mismatch`.
    pub mismatched: u64,
    /// Shadow comparisons: the new service did not answer within the window.
    pub missing_new: u64,
    /// Shadow comparisons: the legacy outcome never came.
    pub missing_legacy: u64,
    /// Live (new-owned) events whose new outcome was read: status below 500.
    pub live_ok: u64,
    /// Live events whose new outcome had status 500 or more.
    pub live_error: u64,
    /// Live events with no new outcome within the window.
    pub live_missing: u64,
    /// Shadow events not compared because an outcome was `truncated`; not in the samples.
    pub truncated: u64,
}

impl Figures {
    /// Shadow comparisons of any result: the guard's sample count.
    pub fn samples(&self) -> u64 {
        self.matched + self.mismatched + self.missing_new + self.missing_legacy
    }

    /// Matches over samples; `None` with no samples.
    pub fn parity_ratio(&self) -> Option<f64> {
        let n = self.samples();
        (n > 0).then(|| self.matched as f64 / n as f64)
    }

    /// Live events counted on the new path.
    pub fn live(&self) -> u64 {
        self.live_ok + self.live_error + self.live_missing
    }

    /// Live events that failed (status ≥ 500 or no outcome in time) over live events; `None` with none.
    pub fn new_error_rate(&self) -> Option<f64> {
        let n = self.live();
        (n > 0).then(|| (self.live_error + self.live_missing) as f64 / n as f64)
    }

    /// Adds another span's counts.
    pub fn add(&mut self, other: &Figures) {
        self.matched += other.matched;
        self.mismatched += other.mismatched;
        self.missing_new += other.missing_new;
        self.missing_legacy += other.missing_legacy;
        self.live_ok += other.live_ok;
        self.live_error += other.live_error;
        self.live_missing += other.live_missing;
        self.truncated += other.truncated;
    }
}
