//! A space-saving heavy-hitters sketch (Metwally, Agrawal, El Abbadi, 2005): a fixed number of
//! counters that finds the most frequent keys of an unbounded stream. Pure, no I/O.
//!
//! Each counter holds a key, a count and the most the count may overstate the key's true
//! frequency (`error`). A new key, when every counter is taken, replaces the key with the smallest
//! count and inherits that count as its error. So for every key listed,
//! `count - error <= true count <= count`, and every key whose true count exceeds
//! `events / capacity` is listed. With no more distinct keys than counters, counts are exact.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

/// Counters per sketch (the figure docs/operations.md gives); a route keeps two, see `recent`.
pub const CAPACITY: usize = 64;

/// One key the sketch tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub key: String,
    pub count: u64,
    /// The most `count` may exceed the key's true count by.
    pub error: u64,
}

/// The sketch. An update compares hashes over at most [`CAPACITY`] counters (a fixed bound, no
/// allocation once a counter's key buffer is large enough).
#[derive(Debug)]
pub struct SpaceSaving {
    capacity: usize,
    counters: Vec<(u64, Counted)>,
    events: u64,
}

fn hash(key: &str) -> u64 {
    // Deterministic (fixed SipHash keys): the sketch only needs equal keys to hash equally.
    BuildHasherDefault::<DefaultHasher>::default().hash_one(key)
}

impl SpaceSaving {
    /// A sketch of `capacity` counters (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self { capacity, counters: Vec::with_capacity(capacity), events: 0 }
    }

    /// Counts one occurrence of `key`.
    pub fn observe(&mut self, key: &str) {
        self.events += 1;
        let h = hash(key);
        if let Some((_, c)) = self.counters.iter_mut().find(|(ch, c)| *ch == h && c.key == key) {
            c.count += 1;
            return;
        }
        if self.counters.len() < self.capacity {
            self.counters.push((h, Counted { key: key.to_string(), count: 1, error: 0 }));
            return;
        }
        // Every counter taken: the smallest gives way, and its count becomes the newcomer's error.
        let Some((slot_hash, min)) = self.counters.iter_mut().min_by_key(|(_, c)| c.count) else { return };
        *slot_hash = h;
        min.key.clear();
        min.key.push_str(key);
        min.error = min.count;
        min.count += 1;
    }

    /// Events observed since the sketch was made.
    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The tracked keys, highest count first (ties: smaller error, then key).
    pub fn top(&self) -> Vec<Counted> {
        let mut all: Vec<Counted> = self.counters.iter().map(|(_, c)| c.clone()).collect();
        all.sort_by(|a, b| b.count.cmp(&a.count).then(a.error.cmp(&b.error)).then_with(|| a.key.cmp(&b.key)));
        all
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn counts_are_exact_while_keys_fit() {
        let mut s = SpaceSaving::new(CAPACITY);
        let mut truth: HashMap<String, u64> = HashMap::new();
        for i in 0..5_000u64 {
            let key = format!("k{}", (i * 7919) % CAPACITY as u64);
            s.observe(&key);
            *truth.entry(key).or_default() += 1;
        }
        let top = s.top();
        assert_eq!(top.len(), CAPACITY);
        assert_eq!(s.events(), 5_000);
        for c in &top {
            assert_eq!(c.error, 0, "{c:?}");
            assert_eq!(c.count, truth[&c.key], "{c:?}");
        }
        assert!(top.windows(2).all(|w| w[0].count >= w[1].count), "sorted by count");
    }

    #[test]
    fn a_skewed_stream_beyond_capacity_keeps_the_bounds_and_the_hot_key_first() {
        let mut s = SpaceSaving::new(CAPACITY);
        let mut truth: HashMap<String, u64> = HashMap::new();
        // 90 % one key, 10 % spread over 1,000 keys (far beyond 64 counters), interleaved.
        let mut cold = 0u64;
        for i in 0..20_000u64 {
            let key = if i % 10 == 9 {
                cold += 1;
                format!("cold-{}", (cold * 7) % 1_000)
            } else {
                "hot".to_string()
            };
            s.observe(&key);
            *truth.entry(key).or_default() += 1;
        }
        let top = s.top();
        assert_eq!(top.len(), CAPACITY);
        assert_eq!(top[0].key, "hot");
        assert_eq!(top[0].count, 18_000, "a key that was never evicted is counted exactly");
        for c in &top {
            let real = truth[&c.key];
            assert!(c.count - c.error <= real && real <= c.count, "{c:?} true {real}");
        }
        // The counts of all counters add up to the events seen (space-saving's invariant).
        assert_eq!(top.iter().map(|c| c.count).sum::<u64>(), s.events());
    }

    #[test]
    fn a_newcomer_inherits_the_smallest_count_as_its_error() {
        let mut s = SpaceSaving::new(2);
        for key in ["a", "a", "a", "b", "c"] {
            s.observe(key);
        }
        let top = s.top();
        assert_eq!(top[0], Counted { key: "a".into(), count: 3, error: 0 });
        assert_eq!(top[1], Counted { key: "c".into(), count: 2, error: 1 });
        assert!(SpaceSaving::new(0).capacity() == 1, "at least one counter");
    }
}
