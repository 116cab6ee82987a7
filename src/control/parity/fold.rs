//! The pure fold behind [`super::ClusterParity`]: parity records in, per-route figures out. No I/O
//! and no clock: every call is given `now`, so the tests can walk time.
//!
//! Per route: one hour of 10-second buckets in a ring (a bucket is reused once its time is more
//! than an hour old), the last mismatches with both sides, the last missing events. Memory is
//! bounded by the route cap, the sample bound and the dedupe bound.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::compare::comparator::{Parity, ParityResult, Side};
use crate::compare::diff::FieldDiff;
use crate::control::figures::Figures;

/// Width of one bucket: the granularity of every span asked for.
pub const BUCKET: Duration = Duration::from_secs(10);
/// Buckets kept: one hour.
pub const BUCKETS: u64 = 360;

/// One route's hour, bucket by bucket.
pub struct Buckets {
    /// Slot `i % BUCKETS` holds bucket number `i` (seconds since the epoch / 10); `(0, _)` is empty.
    slots: Vec<(u64, Figures)>,
}

fn index(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / BUCKET.as_secs()
}

/// False when `at` is an hour or more before `now` (a time after `now` counts as `now`).
fn within_hour(at: SystemTime, now: SystemTime) -> bool {
    index(at.min(now)) + BUCKETS > index(now)
}

fn bump(f: &mut Figures, result: ParityResult) {
    let n = match result {
        ParityResult::Match => &mut f.matched,
        ParityResult::Mismatch => &mut f.mismatched,
        ParityResult::MissingNew => &mut f.missing_new,
        ParityResult::MissingLegacy => &mut f.missing_legacy,
        ParityResult::LiveOk => &mut f.live_ok,
        ParityResult::LiveError => &mut f.live_error,
        ParityResult::LiveMissing => &mut f.live_missing,
        ParityResult::Truncated => &mut f.truncated,
    };
    *n += 1;
}

impl Default for Buckets {
    fn default() -> Self {
        Self { slots: vec![(0, Figures::default()); BUCKETS as usize] }
    }
}

impl Buckets {
    /// Counts `result` in the bucket of `at`; false (not counted) when `at` is an hour or more
    /// before `now`. A time after `now` (another replica's clock ahead) counts as `now`.
    pub fn add(&mut self, at: SystemTime, result: ParityResult, now: SystemTime) -> bool {
        if !within_hour(at, now) {
            return false;
        }
        let i = index(at.min(now));
        let slot = &mut self.slots[(i % BUCKETS) as usize];
        if slot.0 > i {
            // Holds a newer bucket: only possible when the clock went back.
            return false;
        }
        if slot.0 < i {
            *slot = (i, Figures::default());
        }
        bump(&mut slot.1, result);
        true
    }

    /// Counts in the buckets from the one holding `since` (rounded down to 10 s) up to `now`,
    /// never older than an hour.
    pub fn sum(&self, since: SystemTime, now: SystemTime) -> Figures {
        let now_i = index(now);
        let from = index(since).max((now_i + 1).saturating_sub(BUCKETS));
        let mut total = Figures::default();
        for (i, f) in &self.slots {
            if (from..=now_i).contains(i) {
                total.add(f);
            }
        }
        total
    }

    /// Every bucket of the last hour with its start time, oldest first (empty ones included).
    pub fn trend(&self, now: SystemTime) -> Vec<(SystemTime, Figures)> {
        let now_i = index(now);
        ((now_i + 1).saturating_sub(BUCKETS)..=now_i)
            .map(|i| {
                let (held, f) = &self.slots[(i % BUCKETS) as usize];
                (UNIX_EPOCH + Duration::from_secs(i * BUCKET.as_secs()), if *held == i { *f } else { Figures::default() })
            })
            .collect()
    }
}

/// A mismatch kept for people to read, from the parity record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MismatchSample {
    pub event_id: String,
    pub at: String,
    pub diff: Vec<FieldDiff>,
    /// Absent in records from a strangler that did not carry the sides yet.
    pub legacy: Option<Side>,
    pub new: Option<Side>,
}

/// An event one side never answered for in time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MissingSample {
    pub event_id: String,
    /// `missing_new`, `missing_legacy` or `live_missing`.
    pub result: ParityResult,
    pub at: String,
}

/// One route's figures and samples.
#[derive(Default)]
pub struct RouteFold {
    pub buckets: Buckets,
    mismatches: VecDeque<MismatchSample>,
    missing: VecDeque<MissingSample>,
}

impl RouteFold {
    /// Newest first; with `pointer`, only samples with a diff under it (`/body/risk`, `/status`).
    pub fn mismatches(&self, pointer: Option<&str>, limit: usize) -> Vec<MismatchSample> {
        let under = |s: &&MismatchSample| pointer.is_none_or(|p| s.diff.iter().any(|d| d.pointer.starts_with(p)));
        self.mismatches.iter().rev().filter(under).take(limit).cloned().collect()
    }

    /// Newest first.
    pub fn missing(&self, limit: usize) -> Vec<MissingSample> {
        self.missing.iter().rev().take(limit).cloned().collect()
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, item: T, keep: usize) {
    q.push_back(item);
    while q.len() > keep {
        q.pop_front();
    }
}

/// Records the fold did not count, by why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// A second record for an event already counted (a comparator rebalance re-decided it).
    pub duplicates: u64,
    /// Decided an hour or more ago.
    pub too_old: u64,
    /// For a route beyond the route cap.
    pub over_route_cap: u64,
    /// Not a parity record this version can read.
    pub undecodable: u64,
}

/// Every route's fold, and the recent events already counted.
pub struct Fold {
    routes: HashMap<String, RouteFold>,
    keep: usize,
    max_routes: usize,
    /// Hashes of (route, event id) counted recently, oldest first; a per-process random key, so
    /// a sender cannot pick ids that collide.
    seen: HashSet<u64>,
    seen_order: VecDeque<u64>,
    remember: usize,
    hasher: RandomState,
    pub skipped: Skipped,
}

impl Fold {
    /// `keep` samples of each kind per route, at most `max_routes` routes, `remember` event ids.
    pub fn new(keep: usize, max_routes: usize, remember: usize) -> Self {
        Self {
            routes: HashMap::new(),
            keep,
            max_routes,
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            remember,
            hasher: RandomState::new(),
            skipped: Skipped::default(),
        }
    }

    pub fn route(&self, name: &str) -> Option<&RouteFold> {
        self.routes.get(name)
    }

    /// Counts one parity record, by its own `at` (else `now`, the arrival time). Each event is
    /// counted once, by the first record read for it.
    pub fn add(&mut self, p: Parity, now: SystemTime) {
        if !self.routes.contains_key(&p.route) && self.routes.len() >= self.max_routes {
            self.skipped.over_route_cap += 1;
            return;
        }
        let key = self.hasher.hash_one((&p.route, &p.event_id));
        if !self.seen.insert(key) {
            self.skipped.duplicates += 1;
            return;
        }
        self.seen_order.push_back(key);
        while self.seen_order.len() > self.remember {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
        let at = humantime::parse_rfc3339_weak(&p.at).unwrap_or(now);
        if !within_hour(at, now) {
            self.skipped.too_old += 1;
            return;
        }
        let keep = self.keep;
        let route = self.routes.entry(p.route).or_default();
        if !route.buckets.add(at, p.result, now) {
            // Only when the clock went back: the slot holds a newer bucket.
            self.skipped.too_old += 1;
            return;
        }
        match p.result {
            ParityResult::Mismatch => {
                let sample = MismatchSample { event_id: p.event_id, at: p.at, diff: p.diff, legacy: p.legacy, new: p.new };
                push_bounded(&mut route.mismatches, sample, keep);
            }
            ParityResult::MissingNew | ParityResult::MissingLegacy | ParityResult::LiveMissing => {
                push_bounded(&mut route.missing, MissingSample { event_id: p.event_id, result: p.result, at: p.at }, keep);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
