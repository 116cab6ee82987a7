//! A sliding window of events per partition: [`BUCKETS`] buckets of [`BUCKET`] each (5 minutes),
//! and the skew ratio over it. Pure: the caller passes the bucket number ("tick") of now.

use std::time::Duration;

/// One bucket's span.
pub const BUCKET: Duration = Duration::from_secs(10);
/// Buckets in the window: 30 × 10 s = 5 minutes.
pub const BUCKETS: usize = 30;
/// The window as the API names it.
pub const WINDOW_LABEL: &str = "5m";

#[derive(Debug, Clone)]
struct Slot {
    /// The tick this slot counts, `u64::MAX` while unused.
    tick: u64,
    /// Events per partition.
    counts: Vec<u64>,
}

/// Events per partition over the last [`BUCKETS`] ticks.
#[derive(Debug)]
pub struct Window {
    slots: Vec<Slot>,
    /// One more than the highest partition ever recorded.
    seen: usize,
}

impl Default for Window {
    fn default() -> Self {
        Self { slots: vec![Slot { tick: u64::MAX, counts: Vec::new() }; BUCKETS], seen: 0 }
    }
}

impl Window {
    /// Counts one event on `partition` at `tick`. Allocates only the first time a slot meets a
    /// partition number higher than any before.
    pub fn record(&mut self, tick: u64, partition: usize) {
        let slot = &mut self.slots[(tick % BUCKETS as u64) as usize];
        if slot.tick != tick {
            slot.tick = tick;
            slot.counts.iter_mut().for_each(|c| *c = 0);
        }
        if slot.counts.len() <= partition {
            slot.counts.resize(partition + 1, 0);
        }
        slot.counts[partition] += 1;
        self.seen = self.seen.max(partition + 1);
    }

    /// Events per partition over the window ending at `tick`, for `partitions` partitions (at
    /// least as many as were seen).
    pub fn per_partition(&self, tick: u64, partitions: usize) -> Vec<u64> {
        let mut out = vec![0u64; partitions.max(self.seen)];
        for slot in &self.slots {
            let live = slot.tick <= tick && tick - slot.tick < BUCKETS as u64;
            if live {
                for (p, c) in slot.counts.iter().enumerate() {
                    out[p] += c;
                }
            }
        }
        out
    }
}

/// The busiest partition's events over the mean events per partition (all of `counts`'
/// partitions, idle ones included); `None` without events. 1 is perfectly even; a single hot
/// partition of `n` gives `n`.
pub fn ratio(counts: &[u64]) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    let max = counts.iter().copied().max()?;
    (total > 0).then(|| max as f64 * counts.len() as f64 / total as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_max_over_mean_of_all_partitions() {
        let cases: [(&[u64], Option<f64>); 6] = [
            (&[], None),
            (&[0, 0, 0], None),
            (&[5, 5, 5, 5], Some(1.0)),
            (&[8, 0, 0, 0], Some(4.0)),
            (&[90, 4, 3, 3], Some(3.6)),
            (&[6, 2], Some(1.5)),
        ];
        for (counts, want) in cases {
            assert_eq!(ratio(counts), want, "{counts:?}");
        }
    }

    #[test]
    fn events_leave_the_window_after_thirty_ticks() {
        let mut w = Window::default();
        for _ in 0..3 {
            w.record(100, 2);
        }
        w.record(110, 0);
        assert_eq!(w.per_partition(110, 4), [1, 0, 3, 0], "idle partitions count as zero");
        assert_eq!(w.per_partition(129, 4), [1, 0, 3, 0], "tick 100 is still inside at 129");
        assert_eq!(w.per_partition(130, 4), [1, 0, 0, 0], "tick 100 left at 130");
        assert_eq!(w.per_partition(140, 4), [0, 0, 0, 0]);
        assert_eq!(ratio(&w.per_partition(140, 4)), None);
    }

    #[test]
    fn a_reused_slot_forgets_its_old_tick() {
        let mut w = Window::default();
        w.record(5, 1);
        w.record(5 + BUCKETS as u64, 0);
        assert_eq!(w.per_partition(5 + BUCKETS as u64, 1), [1, 0], "partitions seen extend the list");
    }
}
