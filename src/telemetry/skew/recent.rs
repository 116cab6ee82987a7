//! The hot keys of the last 5 to 10 minutes: two space-saving sketches, this 5-minute epoch's and
//! the one before, merged when asked. Pure, no I/O; time comes in as ticks of [`super::window::BUCKET`].
//!
//! The merge keeps space-saving's guarantees. A key a full sketch does not track occurred there at
//! most that sketch's smallest count, so it is counted as that much with as much error; then for
//! every key listed `count - error <= true count <= count`, and every key with more than
//! `events / capacity` of the two epochs' events is among the `capacity` listed (any `capacity`
//! keys' counts add up to at most the events of both epochs).

use std::collections::HashMap;

use super::sketch::{Counted, SpaceSaving};

/// Ticks per epoch: 30 of 10 s, 5 minutes.
pub const EPOCH_TICKS: u64 = 30;

/// The current epoch's sketch and the previous one's.
#[derive(Debug)]
pub struct Recent {
    epoch: u64,
    current: SpaceSaving,
    previous: SpaceSaving,
}

/// What [`Recent::top`] answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Top {
    /// The first tick the answer covers (the previous epoch's start, or 0).
    pub since_tick: u64,
    pub events: u64,
    pub keys: Vec<Counted>,
}

impl Recent {
    pub fn new(capacity: usize) -> Self {
        Self { epoch: 0, current: SpaceSaving::new(capacity), previous: SpaceSaving::new(capacity) }
    }

    pub fn capacity(&self) -> usize {
        self.current.capacity()
    }

    /// Counts `key` at `tick`, starting a new epoch first when `tick` is past the current one.
    pub fn observe(&mut self, tick: u64, key: &str) {
        let epoch = tick / EPOCH_TICKS;
        if epoch > self.epoch {
            let fresh = SpaceSaving::new(self.capacity());
            let old = std::mem::replace(&mut self.current, fresh);
            self.previous = if epoch == self.epoch + 1 { old } else { SpaceSaving::new(self.capacity()) };
            self.epoch = epoch;
        }
        self.current.observe(key);
    }

    /// The hottest keys of the epoch of `tick` and the one before it, highest count first (ties:
    /// smaller error, then key), at most `capacity` of them.
    pub fn top(&self, tick: u64) -> Top {
        let epoch = tick / EPOCH_TICKS;
        let since_tick = epoch.saturating_sub(1) * EPOCH_TICKS;
        let empty = SpaceSaving::new(1);
        let (older, newer) = match epoch.checked_sub(self.epoch) {
            Some(0) => (&self.previous, &self.current),
            Some(1) => (&self.current, &empty),
            _ => (&empty, &empty),
        };
        let mut keys = merge(older, newer);
        keys.truncate(self.capacity());
        Top { since_tick, events: older.events() + newer.events(), keys }
    }
}

/// The two sketches as one, sorted; a key missing from a full sketch counts as its smallest count.
fn merge(a: &SpaceSaving, b: &SpaceSaving) -> Vec<Counted> {
    let (a_top, b_top) = (a.top(), b.top());
    let floor = |s: &SpaceSaving, top: &[Counted]| if top.len() == s.capacity() { top.last().map_or(0, |c| c.count) } else { 0 };
    let (a_floor, b_floor) = (floor(a, &a_top), floor(b, &b_top));
    let mut merged: HashMap<&str, (Option<&Counted>, Option<&Counted>)> = HashMap::new();
    for c in &a_top {
        merged.entry(c.key.as_str()).or_default().0 = Some(c);
    }
    for c in &b_top {
        merged.entry(c.key.as_str()).or_default().1 = Some(c);
    }
    let side = |c: Option<&Counted>, floor: u64| c.map_or((floor, floor), |c| (c.count, c.error));
    let mut out: Vec<Counted> = merged
        .into_iter()
        .map(|(key, (in_a, in_b))| {
            let ((ca, ea), (cb, eb)) = (side(in_a, a_floor), side(in_b, b_floor));
            Counted { key: key.to_string(), count: ca + cb, error: ea + eb }
        })
        .collect();
    out.sort_by(|x, y| y.count.cmp(&x.count).then(x.error.cmp(&y.error)).then_with(|| x.key.cmp(&y.key)));
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn two_epochs_are_merged_and_older_ones_forgotten() {
        let mut r = Recent::new(64);
        for _ in 0..5 {
            r.observe(0, "old");
        }
        for _ in 0..3 {
            r.observe(EPOCH_TICKS, "new");
        }
        r.observe(EPOCH_TICKS + 1, "old");
        let top = r.top(EPOCH_TICKS + 2);
        assert_eq!((top.since_tick, top.events), (0, 9));
        assert_eq!(top.keys[0], Counted { key: "old".into(), count: 6, error: 0 }, "both epochs add up");
        assert_eq!(top.keys[1], Counted { key: "new".into(), count: 3, error: 0 });

        // Asked in the next epoch: the first one is gone, without an event to roll it over.
        let later = r.top(2 * EPOCH_TICKS);
        assert_eq!((later.since_tick, later.events), (EPOCH_TICKS, 4));
        assert_eq!(later.keys.iter().map(|c| (c.key.as_str(), c.count)).collect::<Vec<_>>(), [("new", 3), ("old", 1)]);
        assert_eq!(r.top(3 * EPOCH_TICKS).events, 0, "two epochs later nothing is left");

        // An event after a quiet gap of several epochs starts from nothing.
        r.observe(10 * EPOCH_TICKS, "fresh");
        let top = r.top(10 * EPOCH_TICKS);
        assert_eq!((top.events, top.keys.len()), (1, 1));
    }

    #[test]
    fn a_merge_of_full_sketches_keeps_the_bounds_and_every_heavy_key() {
        let mut r = Recent::new(8);
        let mut truth: HashMap<String, u64> = HashMap::new();
        // Epoch 0: "a" hot among 100 cold keys; epoch 1: "b" hot, "a" warm; both sketches full.
        for (tick, hot, warm) in [(0, "a", None), (EPOCH_TICKS, "b", Some("a"))] {
            for i in 0..3_000u64 {
                let key = match i % 10 {
                    0..=5 => hot.to_string(),
                    6 => warm.unwrap_or(hot).to_string(),
                    _ => format!("cold-{}", (i * 31) % 100),
                };
                r.observe(tick, &key);
                *truth.entry(key).or_default() += 1;
            }
        }
        let top = r.top(EPOCH_TICKS);
        assert_eq!(top.events, 6_000);
        assert!(top.keys.len() <= 8);
        for c in &top.keys {
            let real = truth.get(&c.key).copied().unwrap_or(0);
            assert!(c.count - c.error <= real && real <= c.count, "{c:?} true {real}");
        }
        let heavy: Vec<_> = truth.iter().filter(|(_, n)| **n > top.events / 8).map(|(k, _)| k.as_str()).collect();
        for key in heavy {
            assert!(top.keys.iter().any(|c| c.key == key), "{key} listed: {top:?}");
        }
        assert_eq!(top.keys[0].key, "a", "2,100 of a against 1,800 of b");
    }
}
