//! The check before resending an event Kafka may already hold: read its partition back from a
//! little before the event was spooled and look for its `ce_id`.
//!
//! Used for events librdkafka reported "possibly persisted" (timed out in flight) and for events a
//! crashed process was replaying. Reading starts at the offset for `since - margin` by timestamp;
//! a broker that cannot look offsets up by time (or has nothing that recent) is read from the start.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::spool::Offsets;

/// An event that may be on Kafka already.
pub(super) struct Suspect {
    pub topic: String,
    pub partition: Option<i32>,
    pub id: String,
    pub since_ms: u64,
}

/// How far before `since_ms` to start reading: the producer's message timeout plus clock slack.
const MARGIN_MS: u64 = 5 * 60 * 1000;
const TIMEOUT: Duration = Duration::from_secs(20);

/// Keeps the reader's expected end-of-partition signals out of the error log.
struct Quiet;

impl ClientContext for Quiet {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "possibly-persisted check: client error");
    }
}

impl ConsumerContext for Quiet {}

/// The ids among `suspects` that are on Kafka. An error means "unknown": the caller must not resend.
pub(super) async fn find(config: &ClientConfig, suspects: Vec<Suspect>) -> anyhow::Result<HashSet<String>> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || find_blocking(&config, &suspects)).await?
}

fn find_blocking(config: &ClientConfig, suspects: &[Suspect]) -> anyhow::Result<HashSet<String>> {
    let wanted: HashSet<&str> = suspects.iter().map(|s| s.id.as_str()).collect();
    let mut by_topic: BTreeMap<&str, Vec<&Suspect>> = BTreeMap::new();
    for s in suspects {
        by_topic.entry(&s.topic).or_default().push(s);
    }
    let deadline = Instant::now() + TIMEOUT;
    let mut found = HashSet::new();
    for (topic, suspects) in by_topic {
        let consumer = reader(config)?;
        let all = partitions_of(&consumer, topic)?;
        // The earliest moment each partition must be read from.
        let mut since: BTreeMap<i32, u64> = BTreeMap::new();
        for s in &suspects {
            let partitions = match s.partition {
                Some(p) => vec![p],
                None => all.clone(),
            };
            for p in partitions {
                let t = s.since_ms.saturating_sub(MARGIN_MS);
                since.entry(p).and_modify(|v| *v = (*v).min(t)).or_insert(t);
            }
        }
        let mut by_time = TopicPartitionList::new();
        for (&p, &t) in &since {
            by_time.add_partition_offset(topic, p, Offset::Offset(t as i64))?;
        }
        let starts = consumer.offsets_for_times(by_time, Duration::from_secs(5)).ok();
        let mut from = Vec::new();
        for &p in since.keys() {
            let start = starts
                .as_ref()
                .and_then(|l| l.find_partition(topic, p))
                .filter(|e| e.error().is_ok())
                .map(|e| e.offset())
                .filter(|o| matches!(o, Offset::Offset(n) if *n >= 0))
                .unwrap_or(Offset::Beginning);
            from.push((p, start));
        }
        read_ids(&consumer, topic, &from, &wanted, deadline, &mut found)?;
    }
    Ok(found)
}

/// Write-ahead recovery: the ids among `suspects` (topic, id) found by reading each of their
/// topics' partitions from `offsets` (from the start where none is recorded) to the end.
pub(super) async fn find_from(
    config: &ClientConfig,
    suspects: Vec<(String, String)>,
    offsets: Offsets,
) -> anyhow::Result<HashSet<String>> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || {
        let wanted: HashSet<&str> = suspects.iter().map(|(_, id)| id.as_str()).collect();
        let topics: std::collections::BTreeSet<&str> = suspects.iter().map(|(t, _)| t.as_str()).collect();
        let deadline = Instant::now() + TIMEOUT;
        let mut found = HashSet::new();
        for topic in topics {
            let consumer = reader(&config)?;
            let known = offsets.get(topic);
            let from: Vec<(i32, Offset)> = partitions_of(&consumer, topic)?
                .into_iter()
                .map(|p| (p, known.and_then(|k| k.get(&p)).map_or(Offset::Beginning, |o| Offset::Offset(*o))))
                .collect();
            read_ids(&consumer, topic, &from, &wanted, deadline, &mut found)?;
        }
        Ok(found)
    })
    .await?
}

/// The end offset of every partition of `topics`, as the broker reports it now.
pub(super) async fn end_offsets(config: &ClientConfig, topics: Vec<String>) -> anyhow::Result<Offsets> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || {
        let consumer = reader(&config)?;
        let mut out = Offsets::new();
        for topic in topics {
            for p in partitions_of(&consumer, &topic)? {
                let (_, high) = consumer.fetch_watermarks(&topic, p, Duration::from_secs(5))?;
                out.entry(topic.clone()).or_default().insert(p, high);
            }
        }
        Ok(out)
    })
    .await?
}

fn reader(config: &ClientConfig) -> anyhow::Result<BaseConsumer<Quiet>> {
    Ok(config
        .clone()
        .set("group.id", "strangler-spool-check")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .create_with_context(Quiet)?)
}

fn partitions_of(consumer: &BaseConsumer<Quiet>, topic: &str) -> anyhow::Result<Vec<i32>> {
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))?;
    let all: Vec<i32> = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if all.is_empty() {
        anyhow::bail!("topic {topic} has no partitions (does it exist?)");
    }
    Ok(all)
}

/// Whether the reader's position in `partition` is at or past the partition's high watermark
/// (asked of the broker; only when a poll found nothing). librdkafka signals EOF only when the
/// position *equals* the watermark; a broker that reports a watermark below the last batch's end
/// (Tansu 0.6's in-memory engine: the batch's base offset + 1) leaves the position past it and
/// never signals EOF, so a write-ahead replay would wait for it forever.
fn past_the_end(consumer: &BaseConsumer<Quiet>, topic: &str, partition: i32) -> bool {
    let Ok((_, high)) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(2)) else { return false };
    let position = consumer.position().ok().and_then(|tpl| tpl.find_partition(topic, partition).map(|e| e.offset()));
    matches!(position, Some(Offset::Offset(at)) if high >= 0 && at >= high)
}

/// Reads each `(partition, start)` of `topic` to its end, adding to `found` the `ce_id`s in `wanted`.
fn read_ids(
    consumer: &BaseConsumer<Quiet>,
    topic: &str,
    from: &[(i32, Offset)],
    wanted: &HashSet<&str>,
    deadline: Instant,
    found: &mut HashSet<String>,
) -> anyhow::Result<()> {
    let mut assignment = TopicPartitionList::new();
    for &(p, start) in from {
        assignment.add_partition_offset(topic, p, start)?;
    }
    consumer.assign(&assignment)?;
    let mut open: HashSet<i32> = from.iter().map(|(p, _)| *p).collect();
    while !open.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            anyhow::bail!("reading {topic} back did not reach the end of partitions {open:?} in {TIMEOUT:?}");
        }
        match consumer.poll(left.min(Duration::from_millis(500))) {
            None => open.retain(|p| !past_the_end(consumer, topic, *p)),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            Some(Err(e)) => tracing::debug!(error = %e, topic, "possibly-persisted check: transient error"),
            Some(Ok(msg)) => {
                let id = msg.headers().and_then(|h| h.iter().find(|h| h.key == "ce_id").and_then(|h| h.value));
                if let Some(id) = id.and_then(|v| std::str::from_utf8(v).ok()) {
                    if wanted.contains(id) {
                        found.insert(id.to_string());
                    }
                }
            }
        }
    }
    Ok(())
}
