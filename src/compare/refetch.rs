//! Reading outcome records again by (partition, offset), for pairs that must be diffed in full
//! and whose first body was not kept in memory: a disagreeing pair with a long body, or a pair
//! whose first side came before its route's first new outcome.
//!
//! One consumer per partition (outside any group), made on first use, reads **forward**: records
//! asked for in offset order, as waiting events come due, cost one pass over the partition, and
//! records passed over are remembered (up to [`RECENT_BYTES`] per partition) for a request that
//! comes slightly out of order. Only a request behind both re-positions the consumer.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::outcome::Outcome;
use crate::publish::producer::client_config;
use crate::publish::reader::{self, QuietEof};

/// How long one read may take before the pair is given up as not comparable.
const READ: Duration = Duration::from_secs(10);

/// After a read fails, reads are not tried for this long (each would stall the comparator).
const COOL_OFF: Duration = Duration::from_secs(30);

/// Records passed over and remembered, per partition.
const RECENT_BYTES: usize = 1 << 20;

/// One partition's reader: `next` is the offset its consumer delivers next.
struct Lane {
    consumer: StreamConsumer<QuietEof>,
    next: i64,
    recent: VecDeque<(i64, Vec<u8>)>,
    recent_bytes: usize,
}

/// Reads outcome records again.
pub struct Refetch {
    brokers: String,
    overrides: BTreeMap<String, String>,
    topic: String,
    lanes: HashMap<i32, Lane>,
    /// No reads before this instant (Kafka just failed one).
    paused_until: Option<tokio::time::Instant>,
}

impl Refetch {
    pub fn new(brokers: String, overrides: BTreeMap<String, String>, topic: String) -> Self {
        Self { brokers, overrides, topic, lanes: HashMap::new(), paused_until: None }
    }

    /// The outcome record of `event_id` at `(partition, offset)`, or `None` when it cannot be read
    /// (gone from the topic, or Kafka unreachable for [`READ`]; then for [`COOL_OFF`] no read is
    /// tried, so an outage costs the comparator one stall, not one per pair).
    pub async fn outcome(&mut self, (partition, offset): (i32, i64), event_id: &str) -> Option<Outcome> {
        if self.paused_until.is_some_and(|until| tokio::time::Instant::now() < until) {
            return None;
        }
        let payload = match self.read(partition, offset).await {
            Ok(found) => found?,
            Err(e) => {
                tracing::warn!(error = %e, partition, offset, event_id, "reading an outcome again for a full diff");
                self.paused_until = Some(tokio::time::Instant::now() + COOL_OFF);
                return None;
            }
        };
        serde_json::from_slice::<Outcome>(&payload).ok().filter(|o| o.event_id == event_id)
    }

    /// The payload at `offset`. Some brokers (Tansu) answer a fetch from inside a batch with the
    /// batch after it, so a record passed over is looked for again from a little further back.
    async fn read(&mut self, partition: i32, offset: i64) -> anyhow::Result<Option<Vec<u8>>> {
        for back in [0, 16, 256, 4096] {
            let from = if back == 0 { None } else { Some((offset - back).max(0)) };
            match self.read_from(partition, offset, from).await? {
                Some(payload) => return Ok(Some(payload)),
                None if offset - back <= 0 => break,
                None => {}
            }
        }
        Ok(None)
    }

    /// Reads forward to `offset`, first positioning at `from` (or at `offset` when the consumer
    /// is behind it already or the record was passed over and forgotten).
    async fn read_from(&mut self, partition: i32, offset: i64, from: Option<i64>) -> anyhow::Result<Option<Vec<u8>>> {
        if !self.lanes.contains_key(&partition) {
            let consumer = self.consumer()?;
            self.lanes.insert(partition, Lane { consumer, next: -1, recent: VecDeque::new(), recent_bytes: 0 });
        }
        let topic = self.topic.clone();
        let lane = self.lanes.get_mut(&partition).expect("inserted above");
        if let Some(i) = lane.recent.iter().position(|(o, _)| *o == offset) {
            let (_, payload) = lane.recent.remove(i).expect("found above");
            lane.recent_bytes -= payload.len();
            return Ok(Some(payload));
        }
        let start = match from {
            Some(from) => Some(from),
            None if offset < lane.next || lane.next < 0 => Some(offset),
            None => None,
        };
        if let Some(start) = start {
            let mut at = TopicPartitionList::new();
            at.add_partition_offset(&topic, partition, Offset::Offset(start))?;
            lane.consumer.assign(&at)?;
            lane.next = start;
        }
        let deadline = tokio::time::Instant::now() + READ;
        loop {
            let m = tokio::time::timeout_at(deadline, lane.consumer.recv()).await??;
            if m.partition() != partition || m.offset() < lane.next {
                continue; // left over from an earlier position
            }
            lane.next = m.offset() + 1;
            let payload = m.payload().unwrap_or_default().to_vec();
            if m.offset() == offset {
                return Ok(Some(payload));
            }
            lane.recent_bytes += payload.len();
            lane.recent.push_back((m.offset(), payload));
            while lane.recent_bytes > RECENT_BYTES {
                let Some((_, old)) = lane.recent.pop_front() else { break };
                lane.recent_bytes -= old.len();
            }
            if m.offset() > offset {
                return Ok(None); // passed over, or no record there (compacted away)
            }
        }
    }

    fn consumer(&self) -> anyhow::Result<StreamConsumer<QuietEof>> {
        let mut cfg = client_config(&self.brokers, &self.overrides);
        cfg.set("group.id", format!("strangler-refetch-{}", ulid::Ulid::new()))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "100")
            // A position the broker calls out of range (seen on a fresh consumer's first fetch)
            // restarts from the beginning and reads forward, instead of jumping to the end.
            .set("auto.offset.reset", "earliest")
            // Bound what librdkafka prefetches for a reader that reads little.
            .set("queued.max.messages.kbytes", "4096");
        Ok(cfg.create_with_context(QuietEof)?)
    }
}

impl Drop for Refetch {
    fn drop(&mut self) {
        for (_, lane) in self.lanes.drain() {
            // Closing can block while the broker is unreachable: off the async workers.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(reader::close(lane.consumer));
            }
        }
    }
}
