//! Which offset of each partition may be stored for commit while lanes finish records out of
//! order: never past the lowest record still in flight (received, not yet done).

use std::collections::{BTreeMap, HashMap};

/// In-flight offsets per topic and partition, and the position last stored.
#[derive(Debug, Default)]
pub(super) struct Offsets {
    topics: HashMap<String, HashMap<i32, Track>>,
    in_flight: usize,
}

#[derive(Debug)]
struct Track {
    /// Offsets received and not yet done, with how many copies (a partition given back to this
    /// consumer after a rebalance may deliver a record again while its first copy is in flight).
    in_flight: BTreeMap<i64, u32>,
    /// The highest offset received.
    high: i64,
    /// The position last returned for storing (the next offset to consume); at first, the first
    /// offset received.
    stored: i64,
}

impl Offsets {
    /// Records that `offset` was received and is being worked on.
    pub(super) fn begin(&mut self, topic: &str, partition: i32, offset: i64) {
        if !self.topics.contains_key(topic) {
            self.topics.insert(topic.to_string(), HashMap::new());
        }
        let parts = self.topics.get_mut(topic).expect("inserted above");
        // Nothing below the first offset received is this consumer's to store.
        let track = parts.entry(partition).or_insert(Track { in_flight: BTreeMap::new(), high: offset - 1, stored: offset });
        *track.in_flight.entry(offset).or_insert(0) += 1;
        track.high = track.high.max(offset);
        self.in_flight += 1;
    }

    /// Records that `offset` is done (outcome acknowledged, dead-lettered or skipped). Returns
    /// the position to store when it moved forward: the lowest offset still in flight, or one
    /// past the highest received when none is.
    pub(super) fn finish(&mut self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let track = self.topics.get_mut(topic)?.get_mut(&partition)?;
        let copies = track.in_flight.get_mut(&offset)?;
        *copies -= 1;
        if *copies == 0 {
            track.in_flight.remove(&offset);
        }
        self.in_flight -= 1;
        let position = track.in_flight.keys().next().copied().unwrap_or(track.high + 1);
        (position > track.stored).then(|| {
            track.stored = position;
            position
        })
    }

    /// Records received and not yet done, over all partitions.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug)]
    enum Op {
        Begin(i64),
        /// Finish this offset; expect this position to be stored (or none).
        Finish(i64, Option<i64>),
    }
    use Op::{Begin, Finish};

    #[test]
    fn the_stored_position_never_passes_an_unfinished_record() {
        let cases: &[(&str, &[Op])] = &[
            ("in order", &[Begin(0), Begin(1), Finish(0, Some(1)), Finish(1, Some(2))]),
            (
                "a later record done first waits for the earlier one",
                &[Begin(0), Begin(1), Begin(2), Finish(2, None), Finish(1, None), Finish(0, Some(3))],
            ),
            (
                "a gap in the middle holds the position",
                &[Begin(5), Begin(6), Begin(7), Finish(5, Some(6)), Finish(7, None), Finish(6, Some(8))],
            ),
            (
                "records received after a finish move the high mark",
                &[Begin(0), Finish(0, Some(1)), Begin(1), Begin(2), Finish(2, None), Finish(1, Some(3))],
            ),
            ("offsets need not be contiguous (compaction)", &[Begin(10), Begin(14), Finish(14, None), Finish(10, Some(15))]),
            (
                "a redelivered copy after a rebalance never moves the position back",
                &[Begin(0), Begin(1), Finish(1, None), Begin(0), Finish(0, None), Finish(0, Some(2))],
            ),
            (
                "a rewind to an already stored offset stores nothing lower",
                &[
                    Begin(0),
                    Begin(1),
                    Finish(0, Some(1)),
                    Finish(1, Some(2)),
                    Begin(0),
                    Finish(0, None),
                    Begin(2),
                    Finish(2, Some(3)),
                ],
            ),
            ("an offset never begun is ignored", &[Begin(3), Finish(4, None), Finish(3, Some(4))]),
        ];
        for (name, ops) in cases {
            let mut offsets = Offsets::default();
            // How many records should be in flight: begun, not yet finished.
            let mut model: Vec<i64> = Vec::new();
            for (step, op) in ops.iter().enumerate() {
                match *op {
                    Begin(o) => {
                        offsets.begin("t", 0, o);
                        model.push(o);
                    }
                    Finish(o, want) => {
                        assert_eq!(offsets.finish("t", 0, o), want, "{name}: step {step} {op:?}");
                        if let Some(i) = model.iter().position(|&m| m == o) {
                            model.remove(i);
                        }
                    }
                }
                assert_eq!(offsets.in_flight(), model.len(), "{name}: in-flight count after step {step}");
            }
        }
    }

    #[test]
    fn partitions_and_topics_are_tracked_apart() {
        let mut offsets = Offsets::default();
        offsets.begin("a", 0, 0);
        offsets.begin("a", 1, 0);
        offsets.begin("b", 0, 7);
        assert_eq!(offsets.finish("a", 1, 0), Some(1), "partition 1 is not held by partition 0");
        assert_eq!(offsets.finish("b", 0, 7), Some(8));
        assert_eq!(offsets.in_flight(), 1);
        assert_eq!(offsets.finish("a", 0, 0), Some(1));
        assert_eq!(offsets.finish("c", 0, 0), None, "an unknown topic is ignored");
        assert_eq!(offsets.in_flight(), 0);
    }
}
