//! Joining the legacy and new outcomes of one event within a window. Pure state, no I/O: the
//! comparator feeds it records and the clock, and it says which events are complete or expired.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::outcome::{Outcome, Source};

/// What the joiner decided about one event.
#[derive(Debug, PartialEq)]
pub enum Joined {
    /// Both outcomes are here.
    Pair { legacy: Outcome, new: Outcome },
    /// The window closed with only one side; `have` is the side that arrived.
    Expired { have: Outcome },
}

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
    legacy: Option<Outcome>,
    new: Option<Outcome>,
    deadline: Instant,
}

/// Outcomes waiting for their counterpart.
pub struct Joiner {
    pending: HashMap<String, Pending>,
    deadlines: BTreeSet<(Instant, String)>,
    decided: HashMap<String, Seen>,
    decided_order: VecDeque<String>,
    remember: usize,
}

impl Joiner {
    /// `remember`: how many decided event ids to keep (with the sides that arrived), so a record
    /// for a decided event is refused as late or duplicate rather than counted twice.
    pub fn new(remember: usize) -> Self {
        Self {
            pending: HashMap::new(),
            deadlines: BTreeSet::new(),
            decided: HashMap::new(),
            decided_order: VecDeque::new(),
            remember,
        }
    }

    /// Takes one outcome. `window` counts from the first outcome of the event.
    pub fn offer(&mut self, outcome: Outcome, window: Duration, now: Instant) -> Result<Option<Joined>, Refused> {
        if let Some(seen) = self.decided.get(&outcome.event_id) {
            let again = match outcome.source {
                Source::Legacy => seen.legacy,
                Source::New => seen.new,
            };
            return Err(if again { Refused::Duplicate } else { Refused::Late });
        }
        let id = outcome.event_id.clone();
        let mut created = false;
        let entry = self.pending.entry(id.clone()).or_insert_with(|| {
            created = true;
            Pending { legacy: None, new: None, deadline: now + window }
        });
        let slot = match outcome.source {
            Source::Legacy => &mut entry.legacy,
            Source::New => &mut entry.new,
        };
        if slot.is_some() {
            return Err(Refused::Duplicate);
        }
        *slot = Some(outcome);
        if created {
            self.deadlines.insert((now + window, id));
        } else if let Some(Pending { legacy: Some(legacy), new: Some(new), .. }) = self.finish(&id) {
            return Ok(Some(Joined::Pair { legacy, new }));
        }
        Ok(None)
    }

    /// Every event whose window closed at or before `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<Joined> {
        let mut out = Vec::new();
        while let Some((deadline, id)) = self.deadlines.first().cloned() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(p) = self.finish(&id) {
                if let Some(have) = p.legacy.or(p.new) {
                    out.push(Joined::Expired { have });
                }
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

    fn finish(&mut self, id: &str) -> Option<Pending> {
        let p = self.pending.remove(id)?;
        self.deadlines.remove(&(p.deadline, id.to_string()));
        let seen = Seen { legacy: p.legacy.is_some(), new: p.new.is_some() };
        if self.decided.insert(id.to_string(), seen).is_none() {
            self.decided_order.push_back(id.to_string());
            while self.decided_order.len() > self.remember {
                if let Some(old) = self.decided_order.pop_front() {
                    self.decided.remove(&old);
                }
            }
        }
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::outcome::EventMode;

    fn o(id: &str, source: Source) -> Outcome {
        Outcome::from_response(id, "r", source, EventMode::Shadow, 200, None, b"{}", 1.0, "t")
    }

    const W: Duration = Duration::from_secs(10);

    #[test]
    fn both_sides_in_either_order_make_a_pair() {
        let t = Instant::now();
        let mut j = Joiner::new(100);
        assert_eq!(j.offer(o("a", Source::Legacy), W, t), Ok(None));
        assert!(matches!(j.offer(o("a", Source::New), W, t), Ok(Some(Joined::Pair { .. }))));
        assert_eq!(j.offer(o("b", Source::New), W, t), Ok(None));
        assert!(matches!(j.offer(o("b", Source::Legacy), W, t), Ok(Some(Joined::Pair { .. }))));
        assert_eq!(j.pending(), 0);
        assert_eq!(j.next_deadline(), None);
    }

    #[test]
    fn a_lone_side_expires_at_the_window_and_not_before() {
        let t = Instant::now();
        let mut j = Joiner::new(100);
        j.offer(o("a", Source::Legacy), W, t).unwrap();
        j.offer(o("b", Source::New), W, t + Duration::from_secs(1)).unwrap();
        assert!(j.expire(t + W - Duration::from_millis(1)).is_empty());
        let first = j.expire(t + W);
        assert!(matches!(&first[..], [Joined::Expired { have }] if have.event_id == "a" && have.source == Source::Legacy));
        let second = j.expire(t + W + Duration::from_secs(1));
        assert!(matches!(&second[..], [Joined::Expired { have }] if have.event_id == "b" && have.source == Source::New));
    }

    #[test]
    fn late_and_duplicate_records_are_refused() {
        let t = Instant::now();
        let mut j = Joiner::new(100);
        j.offer(o("a", Source::Legacy), W, t).unwrap();
        assert_eq!(j.offer(o("a", Source::Legacy), W, t), Err(Refused::Duplicate));
        j.expire(t + W);
        assert_eq!(j.offer(o("a", Source::New), W, t + W), Err(Refused::Late), "counted once, as missing_new");
    }

    #[test]
    fn a_side_repeated_after_its_comparison_is_a_duplicate_not_late() {
        let t = Instant::now();
        let mut j = Joiner::new(100);
        j.offer(o("a", Source::Legacy), W, t).unwrap();
        assert!(matches!(j.offer(o("a", Source::New), W, t), Ok(Some(Joined::Pair { .. }))));
        // Compared, still inside the window: a consumer that crashed before committing publishes again.
        let inside = t + Duration::from_secs(1);
        assert_eq!(j.offer(o("a", Source::New), W, inside), Err(Refused::Duplicate));
        assert_eq!(j.offer(o("a", Source::Legacy), W, inside), Err(Refused::Duplicate));
        // And after the window too: it is still the same side again, not a side arriving late.
        assert_eq!(j.offer(o("a", Source::New), W, t + W * 2), Err(Refused::Duplicate));

        // An expired event: its missing side is late, its present side a duplicate.
        j.offer(o("b", Source::Legacy), W, t).unwrap();
        assert_eq!(j.expire(t + W).len(), 1);
        assert_eq!(j.offer(o("b", Source::Legacy), W, t + W), Err(Refused::Duplicate));
        assert_eq!(j.offer(o("b", Source::New), W, t + W), Err(Refused::Late));
    }

    #[test]
    fn decided_ids_are_remembered_only_up_to_the_bound() {
        let t = Instant::now();
        let mut j = Joiner::new(2);
        for id in ["a", "b", "c"] {
            j.offer(o(id, Source::Legacy), W, t).unwrap();
            j.offer(o(id, Source::New), W, t).unwrap();
        }
        assert_eq!(j.offer(o("c", Source::New), W, t), Err(Refused::Duplicate));
        assert_eq!(j.offer(o("a", Source::New), W, t), Ok(None), "forgotten after the bound");
    }
}
