//! Outcomes of routes no new outcome was ever seen for: nothing can pair them, so they wait in a
//! queue per route (about 100 bytes each), not as joinable entries, until their window closes.
//!
//! When a route's first new outcome arrives, its queue moves into the [`super::join::Joiner`]
//! (without digests: a pair that needs comparing is then diffed in full), so an event in its
//! window still pairs. Ids are kept as 128-bit hashes too, to refuse a repeated record.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use xxhash_rust::xxh3::xxh3_128;

use super::join::Waiting;
use super::outcome::{BodyEncoding, EventMode, Source};

/// Per-entry bytes besides the id: the entry in its queue and a hash-set slot at 7/8 load.
pub const LONE_OVERHEAD: usize = std::mem::size_of::<Lone>() + 24;

// A lone entry costs about a third of a joinable one: checked when compiling.
const _: () = assert!(3 * LONE_OVERHEAD < super::join::ENTRY_OVERHEAD + 100);

/// One waiting outcome of a route with no new service.
pub struct Lone {
    pub id: Box<str>,
    /// Arrival number, shared with the joiner's ([`super::join::Joiner::next_seq`]).
    pub seq: u64,
    pub deadline: Instant,
    pub source: Source,
    pub mode: EventMode,
    pub status: u16,
    pub truncated: bool,
    pub encoding: BodyEncoding,
    pub at: Option<(i32, i64)>,
}

impl Lone {
    /// What the joiner keeps of it: no digest, no body.
    pub fn waiting(&self, route: Arc<str>) -> Waiting {
        Waiting {
            route,
            source: self.source,
            mode: self.mode,
            status: self.status,
            truncated: self.truncated,
            digest: None,
            encoding: self.encoding,
            kept: None,
            at: self.at,
        }
    }

    fn bytes(&self) -> usize {
        LONE_OVERHEAD + self.id.len()
    }
}

/// The queues, by route.
#[derive(Default)]
pub struct LoneQueues {
    queues: HashMap<Arc<str>, VecDeque<Lone>>,
    ids: HashSet<u128>,
    bytes: usize,
}

impl LoneQueues {
    /// True when `id` waits here.
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(&xxh3_128(id.as_bytes()))
    }

    pub fn push(&mut self, route: &Arc<str>, lone: Lone) {
        self.ids.insert(xxh3_128(lone.id.as_bytes()));
        self.bytes += lone.bytes();
        self.queues.entry(route.clone()).or_default().push_back(lone);
    }

    /// Every entry whose window closed at or before `now`, oldest first within each route.
    pub fn expire(&mut self, now: Instant) -> Vec<(Arc<str>, Lone)> {
        let mut out = Vec::new();
        for (route, queue) in &mut self.queues {
            while queue.front().is_some_and(|l| l.deadline <= now) {
                out.extend(queue.pop_front().map(|l| (route.clone(), l)));
            }
        }
        for (_, lone) in &out {
            self.forget(lone);
        }
        self.queues.retain(|_, q| !q.is_empty());
        out
    }

    /// The arrival number of the oldest entry of any route.
    pub fn oldest_seq(&self) -> Option<u64> {
        self.queues.values().filter_map(|q| q.front().map(|l| l.seq)).min()
    }

    /// Removes the oldest entry of any route.
    pub fn pop_oldest(&mut self) -> Option<(Arc<str>, Lone)> {
        let route = self.queues.iter().filter_map(|(r, q)| q.front().map(|l| (l.seq, r))).min()?.1.clone();
        let queue = self.queues.get_mut(&route)?;
        let lone = queue.pop_front()?;
        if queue.is_empty() {
            self.queues.remove(&route);
        }
        self.forget(&lone);
        Some((route, lone))
    }

    /// Takes every entry of `route`, oldest first (its first new outcome has arrived).
    pub fn take_route(&mut self, route: &str) -> VecDeque<Lone> {
        let queue = self.queues.remove(route).unwrap_or_default();
        for lone in &queue {
            self.forget(lone);
        }
        queue
    }

    /// When the next window closes here, if any is open.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queues.values().filter_map(|q| q.front().map(|l| l.deadline)).min()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Bytes accounted to the entries ([`LONE_OVERHEAD`] plus the id).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn forget(&mut self, lone: &Lone) {
        self.ids.remove(&xxh3_128(lone.id.as_bytes()));
        self.bytes -= lone.bytes();
    }
}
