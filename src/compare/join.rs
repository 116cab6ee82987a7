//! Joining the legacy and new outcomes of one event within a window, in bounded memory. Pure
//! state, no I/O: the comparator offers each side and the clock, and the joiner says which
//! events are complete, expired, or evicted because a bound was reached.
//!
//! Each waiting event holds a compact [`Waiting`] (a digest of its first side, not the parsed
//! outcome). At most `max_pending` events and about `max_pending_bytes` bytes wait; past either
//! bound the oldest waiting events are evicted, and the comparator decides them as if their
//! window had closed.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xxhash_rust::xxh3::xxh3_128;

use super::digest::BodyDigest;
use super::outcome::{BodyEncoding, EventMode, Source};

/// What is kept of an event's first outcome while it waits for the second.
#[derive(Clone, Debug, PartialEq)]
pub struct Waiting {
    pub route: Arc<str>,
    pub source: Source,
    pub mode: EventMode,
    pub status: u16,
    pub truncated: bool,
    /// `None`: not hashed (the route had no new service yet, the event is live, or the rules
    /// make digests unsound); the pair is then diffed in full if it needs comparing.
    pub digest: Option<BodyDigest>,
    pub encoding: BodyEncoding,
    /// The body's JSON text as in the record, when it was at most `comparator.keep_body_bytes`.
    pub kept: Option<Box<str>>,
    /// Where the record is on the outcomes topic (partition, offset), to read it again.
    pub at: Option<(i32, i64)>,
}

impl Waiting {
    /// Bytes this entry is accounted for: the id (stored twice), the kept body, and a fixed
    /// share for the entry itself and the map, queue and deadline-index slots that point at it.
    pub fn bytes(&self, id: &str) -> usize {
        ENTRY_OVERHEAD + 2 * id.len() + self.kept.as_ref().map_or(0, |k| k.len())
    }
}

/// Per-entry bytes besides the id and the kept body (the `Pending` value, a hash map slot at
/// 7/8 load, two B-tree entries at about 2/3 fill, the shared id's allocation). `benches/comparator.rs`
/// checks this estimate against an allocator count (335 bytes measured per entry, 26-byte ids).
pub const ENTRY_OVERHEAD: usize = 288;

/// Why a record was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// A side that had not arrived came after its event was decided: the window closed without
    /// it (the event was counted `missing_new`/`missing_legacy`/`live_missing`).
    Late,
    /// A side that had already arrived came again, whether its event is still waiting or already
    /// decided (a producer retry, or a consumer that crashed between publishing and committing).
    Duplicate,
}

/// Which sides of a decided event arrived.
#[derive(Clone, Copy)]
struct Seen {
    legacy: bool,
    new: bool,
}

struct Pending {
    waiting: Waiting,
    seq: u64,
    deadline: Instant,
    bytes: usize,
}

/// The bounds on waiting events.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_pending: usize,
    pub max_pending_bytes: usize,
}

/// Outcomes waiting for their counterpart.
pub struct Joiner {
    limits: Limits,
    pending: HashMap<Arc<str>, Pending>,
    /// Arrival order, for eviction.
    order: BTreeMap<u64, Arc<str>>,
    deadlines: BTreeSet<(Instant, u64)>,
    bytes: usize,
    seq: u64,
    /// Decided events by a 128-bit hash of their id (16 bytes each, whatever the id's length).
    decided: HashMap<u128, Seen>,
    decided_order: VecDeque<u128>,
    remember: usize,
}

impl Joiner {
    /// `remember`: how many decided event ids to keep (with the sides that arrived), so a record
    /// for a decided event is refused as late or duplicate rather than counted twice.
    pub fn new(remember: usize, limits: Limits) -> Self {
        Self {
            limits,
            pending: HashMap::new(),
            order: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            bytes: 0,
            seq: 0,
            decided: HashMap::new(),
            decided_order: VecDeque::new(),
            remember,
        }
    }

    /// The waiting first side of `id` when `source` is its counterpart, `None` when `id` is not
    /// waiting, or why `source` is refused. [`Self::take`] then decides the event.
    pub fn peek_other(&self, id: &str, source: Source) -> Result<Option<&Waiting>, Refused> {
        if let Some(seen) = self.decided.get(&xxh3_128(id.as_bytes())) {
            let again = match source {
                Source::Legacy => seen.legacy,
                Source::New => seen.new,
            };
            return Err(if again { Refused::Duplicate } else { Refused::Late });
        }
        match self.pending.get(id) {
            None => Ok(None),
            Some(p) if p.waiting.source == source => Err(Refused::Duplicate),
            Some(p) => Ok(Some(&p.waiting)),
        }
    }

    /// Removes the waiting side of `id`: its counterpart arrived, the event is decided.
    pub fn take(&mut self, id: &str) -> Option<Waiting> {
        self.finish(id, true)
    }

    /// Makes `id` wait for its counterpart until `now + window` (call after [`Self::peek_other`]
    /// said it is not waiting). Returns the oldest events evicted to stay within the limits.
    pub fn wait(&mut self, id: &str, waiting: Waiting, window: Duration, now: Instant) -> Vec<(Arc<str>, Waiting)> {
        let seq = self.next_seq();
        self.insert(Arc::from(id), waiting, seq, now + window);
        let mut evicted = Vec::new();
        while self.pending.len() > self.limits.max_pending || self.bytes > self.limits.max_pending_bytes {
            let Some(oldest) = self.evict_oldest() else { break };
            evicted.push(oldest);
        }
        evicted
    }

    /// The next arrival number: waiting events kept elsewhere ([`super::lone`]) take theirs from
    /// here too, so "oldest" means the same across both.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Makes `id` wait until `deadline` as arrival `seq`, without applying the limits (the
    /// caller does, with [`Self::evict_oldest`]).
    pub fn insert(&mut self, id: Arc<str>, waiting: Waiting, seq: u64, deadline: Instant) {
        let bytes = waiting.bytes(&id);
        self.order.insert(seq, id.clone());
        self.deadlines.insert((deadline, seq));
        self.pending.insert(id, Pending { waiting, seq, deadline, bytes });
        self.bytes += bytes;
    }

    /// The arrival number of the oldest waiting event.
    pub fn oldest_seq(&self) -> Option<u64> {
        self.order.first_key_value().map(|(seq, _)| *seq)
    }

    /// Removes the oldest waiting event, remembered as decided without its counterpart.
    pub fn evict_oldest(&mut self) -> Option<(Arc<str>, Waiting)> {
        let oldest = self.order.first_key_value()?.1.clone();
        self.finish(&oldest, false).map(|w| (oldest, w))
    }

    /// Remembers `id` as decided with only its `first` side, for an event that waited elsewhere.
    pub fn remember_one_sided(&mut self, id: &str, first: Source) {
        self.remember(id, Seen { legacy: first == Source::Legacy, new: first == Source::New });
    }

    /// Every event whose window closed at or before `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<(Arc<str>, Waiting)> {
        let mut out = Vec::new();
        while let Some(&(deadline, seq)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            let Some(id) = self.order.get(&seq).cloned() else {
                self.deadlines.pop_first();
                continue;
            };
            if let Some(w) = self.finish(&id, false) {
                out.push((id, w));
            }
        }
        out
    }

    /// When the next window closes, if any is open.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(d, _)| *d)
    }

    /// Events still waiting for a counterpart.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Bytes accounted to the waiting events ([`Waiting::bytes`]).
    pub fn pending_bytes(&self) -> usize {
        self.bytes
    }

    /// Removes a waiting event and remembers it as decided (`both`: its counterpart arrived).
    fn finish(&mut self, id: &str, both: bool) -> Option<Waiting> {
        let p = self.pending.remove(id)?;
        self.order.remove(&p.seq);
        self.deadlines.remove(&(p.deadline, p.seq));
        self.bytes -= p.bytes;
        let first = p.waiting.source;
        self.remember(id, Seen { legacy: both || first == Source::Legacy, new: both || first == Source::New });
        Some(p.waiting)
    }

    fn remember(&mut self, id: &str, seen: Seen) {
        let key = xxh3_128(id.as_bytes());
        if self.decided.insert(key, seen).is_none() {
            self.decided_order.push_back(key);
            while self.decided_order.len() > self.remember {
                if let Some(old) = self.decided_order.pop_front() {
                    self.decided.remove(&old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
