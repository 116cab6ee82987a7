//! Readers of whole topics: consumers outside any group, assigned every partition by hand. Every
//! replica reads the control, audit and parity topics this way, and the awaited outcomes.

use std::collections::BTreeMap;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

use super::producer::client_config;

/// Consumer context for readers that detect "caught up" with `enable.partition.eof`: librdkafka
/// also raises each end of partition as a global error, which is not one. Other errors are logged.
pub struct QuietEof;

impl ClientContext for QuietEof {
    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(error, KafkaError::Global(RDKafkaErrorCode::PartitionEOF) | KafkaError::PartitionEOF(_)) {
            tracing::error!(error = %error, reason, "librdkafka");
        }
    }
}

impl ConsumerContext for QuietEof {}

/// A consumer of every partition of `topic` (`partitions` of them) from `start`, committing
/// nothing; with `eof`, each partition's end is reported as `KafkaError::PartitionEOF`.
pub fn assigned(
    brokers: &str,
    overrides: &BTreeMap<String, String>,
    topic: &str,
    partitions: i32,
    start: Offset,
    eof: bool,
) -> anyhow::Result<StreamConsumer<QuietEof>> {
    let mut cfg = client_config(brokers, overrides);
    cfg.set("group.id", format!("strangler-reader-{}", ulid::Ulid::new()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", if eof { "true" } else { "false" })
        .set("fetch.wait.max.ms", "100");
    let consumer: StreamConsumer<QuietEof> = cfg.create_with_context(QuietEof)?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(topic, p, start)?;
    }
    consumer.assign(&assignment)?;
    Ok(consumer)
}

/// How long a stopping reader waits for its consumer to close.
const CLOSE: std::time::Duration = std::time::Duration::from_secs(10);

/// Closes a consumer off the async workers (closing leaves its group and can block while the
/// broker is unreachable), waiting for it at most a few seconds so a clean shutdown finishes
/// the close while the broker is still there.
pub async fn close<C: Send + 'static>(consumer: C) {
    let closing = tokio::task::spawn_blocking(move || drop(consumer));
    if tokio::time::timeout(CLOSE, closing).await.is_err() {
        tracing::warn!("a Kafka consumer did not close within {CLOSE:?}; leaving it behind");
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone), holding nothing across awaits.
pub async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}
