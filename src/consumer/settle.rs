//! Writing what a record produced and waiting for the broker: an outcome is enqueued at once and
//! settled later beside its lane ([`settle`]), a dead letter is written and awaited in place
//! ([`produce_acked`]); both retry with backoff until acknowledged or shut down.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use tokio::sync::watch;

use super::config::ConsumerConfig;
use super::dedupe::Claim;
use super::handler::Handler;
use super::lane::Shared;
use super::runner::stopped;

/// Longest wait between two retries, however many have failed.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a produce may wait for room in librdkafka's local queue.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// A record a lane is done with: its offset may be stored.
pub(super) struct Done {
    pub(super) topic: Arc<str>,
    pub(super) partition: i32,
    pub(super) offset: i64,
}

/// An outcome handed to the producer, not yet acknowledged.
pub(super) struct Publishing {
    /// The first attempt's delivery; `None` when it could not even be enqueued.
    pub(super) delivery: Option<DeliveryFuture>,
    pub(super) claim: Claim,
    pub(super) value: Vec<u8>,
    pub(super) done: Done,
}

/// Waits for an outcome's acknowledgement, writing it again with backoff until one comes. Then
/// the event id counts as answered and the record as done; `None` when shutdown was requested
/// first (the record is left uncommitted, its claim released).
pub(super) async fn settle<H: Handler>(
    shared: &Shared<H>,
    publishing: Publishing,
    shutdown: &watch::Receiver<bool>,
) -> Option<Done> {
    let Publishing { delivery, claim, value, done } = publishing;
    let topic = &shared.cfg.outcomes_topic;
    let acked = match delivery {
        Some(delivery) => match delivery.await {
            Ok(Ok(_)) => true,
            Ok(Err((error, _))) => {
                tracing::error!(topic, %error, "publish failed, retrying");
                false
            }
            Err(_canceled) => false,
        },
        None => false,
    };
    let key = Some(claim.id().as_bytes());
    // The retries are boxed: kept inline, they would make every pending outcome's future as big.
    if acked
        || Box::pin(produce_acked(
            &shared.producer,
            &shared.cfg,
            topic,
            key,
            Some(&value),
            outcome_headers(),
            &mut shutdown.clone(),
        ))
        .await
    {
        shared.outcomes_acked.fetch_add(1, Ordering::Relaxed);
        claim.answered();
        Some(done)
    } else {
        tracing::warn!(topic = %done.topic, partition = done.partition, offset = done.offset, "shutdown: outcome not acknowledged, record left uncommitted");
        None
    }
}

/// An outcome record's headers.
pub(super) fn outcome_headers() -> OwnedHeaders {
    OwnedHeaders::new_with_capacity(1).insert(rdkafka::message::Header { key: "content-type", value: Some("application/json") })
}

/// Produces one record and waits for its acknowledgement, retrying with backoff until it is
/// acknowledged. `false` when shutdown was requested between retries.
pub(super) async fn produce_acked(
    producer: &FutureProducer,
    cfg: &ConsumerConfig,
    topic: &str,
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    headers: OwnedHeaders,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let mut delay = cfg.backoff;
    loop {
        let mut record = FutureRecord::<[u8], [u8]>::to(topic).headers(headers.clone());
        record.key = key;
        record.payload = payload;
        match producer.send(record, QUEUE_TIMEOUT).await {
            Ok(_) => return true,
            Err((error, _)) => tracing::error!(topic, %error, retry_in = ?delay, "publish failed, retrying"),
        }
        tokio::select! {
            biased;
            _ = stopped(shutdown) => return false,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_BACKOFF);
    }
}
