//! The bounded memory of answered event ids that makes redeliveries harmless (protocol step 2).

use std::collections::{HashSet, VecDeque};

/// The ids of the last `capacity` events answered (outcome published or dead-lettered).
pub(super) struct Dedupe {
    seen: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl Dedupe {
    pub(super) fn new(capacity: usize) -> Self {
        Self { seen: HashSet::new(), order: VecDeque::new(), capacity }
    }

    pub(super) fn contains(&self, id: &str) -> bool {
        self.seen.contains(id)
    }

    pub(super) fn insert(&mut self, id: &str) {
        if self.capacity == 0 || !self.seen.insert(id.to_string()) {
            return;
        }
        self.order.push_back(id.to_string());
        if self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_forgets_the_oldest_beyond_capacity() {
        let mut d = Dedupe::new(2);
        for id in ["a", "b", "a", "c"] {
            d.insert(id);
        }
        assert_eq!((d.contains("a"), d.contains("b"), d.contains("c")), (false, true, true));
        let mut none = Dedupe::new(0);
        none.insert("a");
        assert!(!none.contains("a"));
    }
}
