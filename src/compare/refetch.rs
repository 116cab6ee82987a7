//! Reading one outcome record again by (partition, offset), for a pair whose digests differ and
//! whose first body was too long to keep in memory. Mismatches are rare, so one record at a time
//! through one consumer outside any group, assigned to the record's partition at its offset.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::outcome::Outcome;
use crate::publish::reader::{self, QuietEof};

/// How long one read may take before the pair is given up as not comparable.
const READ: Duration = Duration::from_secs(10);

/// Reads outcome records again; the consumer is made on first use.
pub struct Refetch {
    brokers: String,
    overrides: BTreeMap<String, String>,
    topic: String,
    consumer: Option<StreamConsumer<QuietEof>>,
}

impl Refetch {
    pub fn new(brokers: String, overrides: BTreeMap<String, String>, topic: String) -> Self {
        Self { brokers, overrides, topic, consumer: None }
    }

    /// The outcome record of `event_id` at `(partition, offset)`, or `None` when it cannot be read
    /// (gone from the topic, or Kafka unreachable for [`READ`]).
    pub async fn outcome(&mut self, (partition, offset): (i32, i64), event_id: &str) -> Option<Outcome> {
        match self.read(partition, offset, event_id).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, partition, offset, event_id, "reading an outcome again for a full diff");
                None
            }
        }
    }

    async fn read(&mut self, partition: i32, offset: i64, event_id: &str) -> anyhow::Result<Option<Outcome>> {
        if self.consumer.is_none() {
            let c = reader::assigned(&self.brokers, &self.overrides, &self.topic, 0, Offset::Beginning, false)?;
            self.consumer = Some(c);
        }
        let consumer = self.consumer.as_ref().expect("made above");
        let mut at = TopicPartitionList::new();
        at.add_partition_offset(&self.topic, partition, Offset::Offset(offset))?;
        consumer.assign(&at)?;
        let deadline = tokio::time::Instant::now() + READ;
        loop {
            let m = tokio::time::timeout_at(deadline, consumer.recv()).await??;
            if m.partition() != partition || m.offset() < offset {
                continue;
            }
            if m.offset() > offset {
                return Ok(None);
            }
            let found = m.payload().and_then(|p| serde_json::from_slice::<Outcome>(p).ok());
            return Ok(found.filter(|o| o.event_id == event_id));
        }
    }
}

impl Drop for Refetch {
    fn drop(&mut self) {
        if let Some(c) = self.consumer.take() {
            // Closing can block while the broker is unreachable: off the async workers.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(reader::close(c));
            }
        }
    }
}
