//! Delivery ids seen recently, per replica: a sender's retry of a delivery is not published twice.
//!
//! Bounded twice over: an entry lives `ttl`, and past `max_entries` the oldest go first. An event
//! Kafka could not take and that was not spooled is forgotten again, so the sender's retry gets
//! another chance.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window of recently published delivery ids.
pub struct Dedupe {
    ttl: Duration,
    max_entries: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    seen: HashMap<String, Instant>,
    /// Insertion order, for expiry; entries whose time no longer matches `seen` are stale.
    order: VecDeque<(Instant, String)>,
}

impl Dedupe {
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self { ttl, max_entries, inner: Mutex::new(Inner::default()) }
    }

    /// The key of one delivery on one route.
    pub fn key(route: &str, event_id: &str) -> String {
        format!("{route}\u{0}{event_id}")
    }

    /// Records `key` and returns true if it was not seen within the window.
    pub fn first(&self, key: &str, now: Instant) -> bool {
        let mut inner = self.lock();
        self.evict(&mut inner, now);
        if self.max_entries == 0 || inner.seen.contains_key(key) {
            return self.max_entries == 0;
        }
        inner.seen.insert(key.to_string(), now);
        inner.order.push_back((now, key.to_string()));
        self.evict(&mut inner, now);
        true
    }

    /// Forgets `key`, so the next delivery with it is published.
    pub fn forget(&self, key: &str) {
        self.lock().seen.remove(key);
    }

    /// Delivery ids currently remembered.
    pub fn len(&self) -> usize {
        self.lock().seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn evict(&self, inner: &mut Inner, now: Instant) {
        while let Some((at, key)) = inner.order.front() {
            let live = inner.seen.get(key) == Some(at);
            let expired = now.saturating_duration_since(*at) >= self.ttl;
            if live && !expired && inner.seen.len() <= self.max_entries {
                break;
            }
            if live {
                inner.seen.remove(key);
            }
            inner.order.pop_front();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_within_the_ttl_is_a_duplicate_and_after_it_is_not() {
        let d = Dedupe::new(Duration::from_secs(60), 100);
        let t = Instant::now();
        assert!(d.first("a", t));
        assert!(!d.first("a", t + Duration::from_secs(59)));
        assert!(d.first("a", t + Duration::from_secs(60)), "expired");
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn past_max_entries_the_oldest_are_forgotten_first() {
        let d = Dedupe::new(Duration::from_secs(60), 2);
        let t = Instant::now();
        for k in ["a", "b", "c"] {
            assert!(d.first(k, t));
        }
        assert_eq!(d.len(), 2);
        assert!(!d.first("c", t) && !d.first("b", t));
        assert!(d.first("a", t), "evicted by size");
    }

    #[test]
    fn a_forgotten_key_is_new_again_and_stale_order_entries_do_no_harm() {
        let d = Dedupe::new(Duration::from_secs(60), 10);
        let t = Instant::now();
        assert!(d.first("a", t));
        d.forget("a");
        assert!(d.first("a", t + Duration::from_secs(30)));
        // The first insertion's expiry must not evict the second.
        assert!(!d.first("a", t + Duration::from_secs(61)));
        assert!(d.first("a", t + Duration::from_secs(91)));
    }

    #[test]
    fn zero_entries_disables_dedupe() {
        let d = Dedupe::new(Duration::from_secs(60), 0);
        let t = Instant::now();
        assert!(d.first("a", t) && d.first("a", t));
        assert!(d.is_empty());
    }
}
