//! The spool as a write-ahead log (`spool.write_ahead`): group-committed appends, acks that carry
//! the Kafka offsets they were written at, and the per-partition offsets recovery reads from.

use std::sync::atomic::Ordering;

use super::cursor::Offsets;
use super::{Appended, Entry, Spool, SpoolError};

/// Where Kafka acknowledged one event: topic, partition, offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckedAt {
    pub seq: u64,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl Spool {
    /// Appends `entries` in order with one write per frame and, under `fsync = "always"`, one
    /// fsync for the whole batch (group commit). A failed fsync is logged and marks the spool
    /// unwritable for readiness; the frames did reach the kernel, so they still count as appended.
    pub fn append_batch(&self, entries: &[Entry]) -> Vec<Result<Appended, SpoolError>> {
        let mut st = self.lock();
        let out: Vec<_> = entries.iter().map(|e| self.append_locked(&mut st, e, false)).collect();
        let mut failed = out.iter().any(|r| matches!(r, Err(SpoolError::Io { .. })));
        if st.durable {
            if let Err(e) = st.sync_active() {
                tracing::error!(error = %e, "spool: group commit fsync failed");
                failed = true;
            }
        }
        self.records.store(st.records.len() as u64, Ordering::Release);
        drop(st);
        self.write_failed.store(failed, Ordering::Release);
        out
    }

    /// Acks events Kafka acknowledged, in the order their delivery reports came, and (with
    /// `move_offsets`) moves each partition's recovery offset past them, in the same cursor write.
    /// The caller must not move offsets while an entry that Kafka may hold is still pending: it
    /// could sit below the new offset.
    pub fn ack_at(&self, acked: &[AckedAt], move_offsets: bool) -> Result<(), SpoolError> {
        let mut st = self.lock();
        for a in acked.iter().filter(|_| move_offsets) {
            let at = st.offsets.entry(a.topic.clone()).or_default().entry(a.partition).or_insert(0);
            *at = (*at).max(a.offset + 1);
        }
        let seqs: Vec<u64> = acked.iter().map(|a| a.seq).collect();
        let done = st.ack(&seqs);
        if matches!(done, Ok(false)) && !acked.is_empty() {
            // Every seq was gone already (evicted): the offsets still moved.
            st.store_cursor()?;
        }
        self.records.store(st.records.len() as u64, Ordering::Release);
        done.map(|_| ())
    }

    /// The recovery offsets: per topic and partition, at or below the offset of every event
    /// Kafka acknowledged that is still pending here.
    pub fn offsets(&self) -> Offsets {
        self.lock().offsets.clone()
    }

    /// Records `baseline` offsets for partitions that have none yet (end offsets read before this
    /// process sends anything), so a later recovery never reads a partition from its start.
    pub fn add_missing_offsets(&self, baseline: &Offsets) -> Result<(), SpoolError> {
        let mut st = self.lock();
        let mut changed = false;
        for (topic, parts) in baseline {
            let known = st.offsets.entry(topic.clone()).or_default();
            for (&p, &o) in parts {
                if let std::collections::btree_map::Entry::Vacant(v) = known.entry(p) {
                    v.insert(o);
                    changed = true;
                }
            }
        }
        if changed {
            st.store_cursor()?;
        }
        Ok(())
    }

    /// Whether `seq` is appended and not acked.
    pub fn is_pending(&self, seq: u64) -> bool {
        self.lock().records.binary_search_by_key(&seq, |r| r.seq).is_ok()
    }

    /// The oldest un-acked seq.
    pub fn oldest_pending(&self) -> Option<u64> {
        self.lock().records.front().map(|r| r.seq)
    }

    /// The seq the next append gets.
    pub fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }

    /// Sets the recovery offsets of the partitions in `ends` (the caller knows nothing sent before
    /// is unrecorded, and nothing sent after can land below them).
    pub fn replace_offsets(&self, ends: &Offsets) -> Result<(), SpoolError> {
        let mut st = self.lock();
        for (topic, parts) in ends {
            st.offsets.entry(topic.clone()).or_default().extend(parts.iter().map(|(p, o)| (*p, *o)));
        }
        st.store_cursor()
    }

    /// Un-acked entries.
    pub fn pending_count(&self) -> u64 {
        self.records.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Fsync, Settings, WhenFull};
    use super::*;

    fn entry(id: &str) -> Entry {
        Entry {
            route: "r".into(),
            id: id.into(),
            topic: "t".into(),
            key: "k".into(),
            headers: vec![],
            value: b"v".to_vec(),
            possibly_persisted: false,
            partition: None,
            spooled_at_ms: 1,
            order: 0,
        }
    }

    #[test]
    fn a_group_commit_survives_reopen_and_acks_carry_offsets_across_it() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            dir: dir.path().into(),
            max_bytes: 1 << 20,
            fsync: Fsync::Always,
            when_full: WhenFull::DropNewest,
            write_ahead: true,
        };
        let (spool, _) = Spool::open(settings.clone()).unwrap();
        let seqs: Vec<u64> =
            spool.append_batch(&[entry("a"), entry("b"), entry("c")]).into_iter().map(|r| r.unwrap().seq).collect();
        assert_eq!(seqs, [0, 1, 2]);
        let base: Offsets = [("t".to_string(), [(0, 10), (1, 20)].into())].into();
        spool.add_missing_offsets(&base).unwrap();
        // Acked out of seq order: seq 1 only; the cursor keeps 0 and 2 pending.
        spool.ack_at(&[AckedAt { seq: 1, topic: "t".into(), partition: 1, offset: 25 }], true).unwrap();
        // Not moved while something Kafka may hold is pending.
        spool.ack_at(&[AckedAt { seq: 9, topic: "t".into(), partition: 1, offset: 40 }], false).unwrap();
        spool.add_missing_offsets(&[("t".to_string(), [(0, 99), (2, 5)].into())].into()).unwrap();
        drop(spool);
        let (spool, opened) = Spool::open(settings).unwrap();
        assert_eq!(opened.records, 2);
        let ids: Vec<String> = spool.pending(10).unwrap().into_iter().map(|(_, e)| e.id).collect();
        assert_eq!(ids, ["a", "c"]);
        // A baseline never moves a recorded partition; an ack moves it past the acked offset.
        let expect: Offsets = [("t".to_string(), [(0, 10), (1, 26), (2, 5)].into())].into();
        assert_eq!(spool.offsets(), expect);
    }
}
