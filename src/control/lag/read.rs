//! The blocking Kafka reads behind one refresh: partitions (metadata), low and end offsets
//! (watermarks), a group's committed offsets (OffsetFetch) and the timestamp of its oldest
//! unconsumed record. Runs on a blocking thread, never on the async runtime.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::figures::{self, PartitionLag, TopicLag};

/// Bound on each broker call, and on reading the oldest records of one topic.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The group id of the reader that fetches metadata and reads records by assignment (librdkafka
/// needs one to assign partitions). It never subscribes, so it never joins a group, and never
/// commits.
pub const READER_GROUP: &str = "strangler-lag-reader";

/// Client errors are the refresh's to report (once per change), not librdkafka's log's.
pub(super) struct Quiet;

impl ClientContext for Quiet {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "lag monitor: client error");
    }
}

impl ConsumerContext for Quiet {}

/// The clients of the monitor, kept from one refresh to the next.
pub(super) struct Reader {
    config: ClientConfig,
    reader: BaseConsumer<Quiet>,
    /// One consumer per group, created with `group.id = <group>` to fetch its committed offsets;
    /// never subscribed (an OffsetFetch does not join the group), never committing.
    groups: HashMap<String, BaseConsumer<Quiet>>,
}

impl Reader {
    /// `config`: strangler's client settings (brokers, TLS, SASL, `[kafka.librdkafka]`).
    pub(super) fn new(config: ClientConfig) -> Result<Self, KafkaError> {
        // The reader wants one record per partition: small fetches and a small local queue, so a
        // group far behind does not have megabytes fetched (and dropped) at every refresh.
        let mut small = config.clone();
        small
            .set("fetch.message.max.bytes", "65536")
            .set("fetch.max.bytes", "1048576")
            .set("queued.min.messages", "1")
            .set("queued.max.messages.kbytes", "1024");
        let reader = consumer(&small, READER_GROUP)?;
        Ok(Self { config, reader, groups: HashMap::new() })
    }

    /// The lag of `group` on each of `topics`, now. `Err`: what failed, for the API and the log.
    pub(super) fn group(&mut self, group: &str, topics: &[String], now_ms: i64) -> Result<Vec<TopicLag>, String> {
        if !self.groups.contains_key(group) {
            let c = consumer(&self.config, group).map_err(|e| format!("creating a client for group {group}: {e}"))?;
            self.groups.insert(group.to_string(), c);
        }
        let committer = &self.groups[group];
        let mut out = Vec::new();
        for topic in topics {
            out.push(topic_lag(&self.reader, committer, topic, now_ms).map_err(|e| format!("topic {topic}: {e}"))?);
        }
        Ok(out)
    }
}

fn consumer(config: &ClientConfig, group: &str) -> Result<BaseConsumer<Quiet>, KafkaError> {
    config
        .clone()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .create_with_context(Quiet)
}

fn topic_lag(
    reader: &BaseConsumer<Quiet>,
    committer: &BaseConsumer<Quiet>,
    topic: &str,
    now_ms: i64,
) -> Result<TopicLag, String> {
    let metadata = reader.fetch_metadata(Some(topic), TIMEOUT).map_err(|e| format!("metadata: {e}"))?;
    let t = metadata.topics().iter().find(|t| t.name() == topic).ok_or("not in the broker's metadata")?;
    if let Some(e) = t.error() {
        return Err(format!("metadata: {:?}", rdkafka::types::RDKafkaErrorCode::from(e)));
    }
    let ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    if ids.is_empty() {
        return Err("no partitions (does the topic exist?)".into());
    }
    let mut wanted = TopicPartitionList::new();
    for &p in &ids {
        wanted.add_partition(topic, p);
    }
    let committed = committer.committed_offsets(wanted, TIMEOUT).map_err(|e| format!("committed offsets: {e}"))?;
    let mut partitions = Vec::new();
    let mut oldest: BTreeMap<i32, i64> = BTreeMap::new();
    for &p in &ids {
        let (low, end) = reader.fetch_watermarks(topic, p, TIMEOUT).map_err(|e| format!("partition {p} watermarks: {e}"))?;
        let at = committed.find_partition(topic, p);
        if let Some(Err(e)) = at.as_ref().map(|e| e.error()) {
            return Err(format!("partition {p} committed offset: {e}"));
        }
        let committed = at.and_then(|e| match e.offset() {
            Offset::Offset(n) if n >= 0 => Some(n),
            _ => None,
        });
        let lag_records = figures::records(end, low, committed);
        if lag_records > 0 {
            oldest.insert(p, figures::first_unconsumed(low, committed));
        }
        partitions.push(PartitionLag { partition: p, committed, end, lag_records, lag_seconds: 0.0 });
    }
    let stamps = timestamps(reader, topic, &oldest)?;
    for p in &mut partitions {
        p.lag_seconds = figures::seconds(p.lag_records, now_ms, stamps.get(&p.partition).copied().flatten());
    }
    Ok(TopicLag::new(topic, partitions))
}

/// The timestamp of the first record at or after each `(partition, offset)`; `None` where the
/// record carries none. One assignment for the whole topic, polled until each partition gave one.
fn timestamps(reader: &BaseConsumer<Quiet>, topic: &str, at: &BTreeMap<i32, i64>) -> Result<HashMap<i32, Option<i64>>, String> {
    let mut found = HashMap::new();
    if at.is_empty() {
        return Ok(found);
    }
    let mut assignment = TopicPartitionList::new();
    for (&p, &offset) in at {
        assignment.add_partition_offset(topic, p, Offset::Offset(offset)).map_err(|e| e.to_string())?;
    }
    reader.assign(&assignment).map_err(|e| format!("assigning to read the oldest records: {e}"))?;
    let deadline = Instant::now() + TIMEOUT;
    let result = loop {
        if found.len() == at.len() {
            break Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let missing: Vec<i32> = at.keys().filter(|p| !found.contains_key(*p)).copied().collect();
            break Err(format!("the oldest unconsumed records of partitions {missing:?} could not be read within {TIMEOUT:?}"));
        }
        match reader.poll(left) {
            Some(Ok(m)) if m.topic() == topic && at.get(&m.partition()).is_some_and(|o| m.offset() >= *o) => {
                found.entry(m.partition()).or_insert(m.timestamp().to_millis());
            }
            Some(Err(e)) => tracing::debug!(error = %e, topic, "lag monitor: reading the oldest records"),
            _ => {}
        }
    };
    let _ = reader.unassign();
    result.map(|()| found)
}
