//! Kafka test helpers: create topics, read records back, inspect headers (all runtime-friendly).
//!
//! Blocking librdkafka calls (metadata, client teardown) run on `spawn_blocking`;
//! reading uses a `StreamConsumer` with an explicit partition assignment, so no consumer-group
//! rebalance is involved and the helpers work the same on Tansu and on Kafka.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::time::Instant;

/// Creates `topic` with `partitions` partitions (replication 1); an existing topic is fine.
/// Returns once the topic's partitions show up in metadata.
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().expect("admin client");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin.create_topics([&new], &opts).await.unwrap_or_else(|e| panic!("create_topics({topic}) on {brokers}: {e}"));
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => panic!("create topic {name} on {brokers}: {code:?}"),
        }
    }
    drop_blocking(admin).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let found = partitions_of(brokers, topic, deadline).await;
    assert!(!found.is_empty(), "topic {topic} not visible in metadata after creation");
}

/// Reads `topic` from the beginning of every partition until `n` messages have arrived or
/// `timeout` has elapsed; returns what it read (possibly more than `n`, never blocks past the
/// deadline). Uses a fresh, unique group id and never commits offsets.
pub async fn consume(brokers: &str, topic: &str, n: usize, timeout: Duration) -> Vec<OwnedMessage> {
    let deadline = Instant::now() + timeout;
    let partitions = partitions_of(brokers, topic, deadline).await;
    let mut out = Vec::new();
    if partitions.is_empty() {
        return out;
    }
    let consumer = consumer_for(brokers, topic, &partitions, false);
    while out.len() < n {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Err(_elapsed) => break,
            Ok(Ok(msg)) => out.push(msg.detach()),
            Ok(Err(err)) => tracing::debug!(%err, topic, "consume: transient error"),
        }
    }
    drop_blocking(consumer).await;
    out
}

/// Reads every message of every partition of `topic`, up to the end of each partition as the
/// consumer reaches it (normally: everything produced before the call). Stops early, returning
/// what it has, if `timeout` elapses first.
///
/// The end is detected with `enable.partition.eof`, i.e. from the high watermark in Fetch
/// responses, not from `fetch_watermarks` (ListOffsets): Tansu 0.6's in-memory engine answers
/// ListOffsets(latest) with "base offset of the last batch + 1", which undercounts batches.
pub async fn drain(brokers: &str, topic: &str, timeout: Duration) -> Vec<OwnedMessage> {
    let deadline = Instant::now() + timeout;
    let mut pending = partitions_of(brokers, topic, deadline).await;
    let mut out = Vec::new();
    if pending.is_empty() {
        return out;
    }
    let consumer = consumer_for(brokers, topic, &pending, true);
    while !pending.is_empty() {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Err(_elapsed) => {
                tracing::warn!(topic, ?pending, "drain: timed out before the end of every partition");
                break;
            }
            Ok(Ok(msg)) => out.push(msg.detach()),
            Ok(Err(KafkaError::PartitionEOF(p))) => pending.retain(|&q| q != p),
            Ok(Err(err)) => tracing::debug!(%err, topic, "drain: transient error"),
        }
    }
    drop_blocking(consumer).await;
    out
}

/// The value of the first header called `name`, as (lossy) UTF-8.
pub fn header(msg: &OwnedMessage, name: &str) -> Option<String> {
    let headers = msg.headers()?;
    headers.iter().find(|h| h.key == name).map(|h| String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())
}

/// Partition ids of `topic`, polling metadata until it exists or `deadline` passes (then empty).
pub async fn partitions_of(brokers: &str, topic: &str, deadline: Instant) -> Vec<i32> {
    loop {
        let (b, t) = (brokers.to_owned(), topic.to_owned());
        let found = tokio::task::spawn_blocking(move || {
            let md = base_consumer(&b).fetch_metadata(Some(&t), Duration::from_secs(5)).ok()?;
            let tm = md.topics().iter().find(|tm| tm.name() == t)?;
            if tm.error().is_some() || tm.partitions().is_empty() {
                return None;
            }
            Some(tm.partitions().iter().map(|p| p.id()).collect::<Vec<_>>())
        })
        .await
        .expect("metadata task");
        if let Some(ps) = found {
            return ps;
        }
        if Instant::now() >= deadline {
            return Vec::new();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn base_consumer(brokers: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("allow.auto.create.topics", "false")
        .create()
        .expect("base consumer")
}

/// A consumer assigned to `partitions` of `topic` from the beginning (no group membership).
fn consumer_for(brokers: &str, topic: &str, partitions: &[i32], eof: bool) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique_group())
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "false")
        .set("enable.partition.eof", if eof { "true" } else { "false" })
        .create()
        .expect("stream consumer");
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("partition offset");
    }
    consumer.assign(&tpl).expect("assign partitions");
    consumer
}

fn unique_group() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("it-{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// librdkafka client teardown can block (closing, flushing); keep it off the async workers.
async fn drop_blocking<T: Send + 'static>(client: T) {
    let _ = tokio::task::spawn_blocking(move || drop(client)).await;
}
