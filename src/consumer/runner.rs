//! The run loop: consume with a group, one record at a time per the protocol (decode, dedupe,
//! handle with retries, publish the outcome and await its ack, then store the offset), dead-letter
//! what cannot be handled, and commit on shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::watch;

use crate::compare::outcome::{Outcome, Source};
use crate::publish::producer;

use super::config::ConsumerConfig;
use super::dedupe::Dedupe;
use super::effects::Effects;
use super::event::{decode, Event};
use super::handler::{Decision, Handler, HandlerError};
use super::ConsumerError;

/// Longest wait between two retries, however many have failed.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a produce may wait for room in librdkafka's local queue.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// What one [`run`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Events the handler decided.
    pub handled: u64,
    /// Records skipped because their event id was already answered.
    pub deduplicated: u64,
    /// Records written to a dead-letter topic.
    pub dead_lettered: u64,
    /// Outcomes the broker acknowledged.
    pub outcomes_published: u64,
    /// Side effects [`Effects::perform`] skipped because the event was a shadow one.
    pub effects_skipped: u64,
    /// Events marked `ce_stranglersignature=invalid` (observe mode), skipped unhandled: no
    /// outcome, and their id stays free for the genuine delivery.
    pub skipped_invalid: u64,
}

/// Consumes `cfg.topics` with `handler` until `shutdown` becomes `true` (or its sender is
/// dropped), then finishes the current record, commits the stored offsets and returns what it did.
///
/// Per-record problems never end the loop: undecodable records and events the handler keeps
/// failing go to the dead-letter topic; outcome and dead-letter writes are retried until the
/// broker acknowledges them (a shutdown during those retries leaves the record uncommitted, to
/// be delivered again). Errors are for clients that cannot be set up, and a failed final commit.
pub async fn run<H: Handler>(
    cfg: ConsumerConfig,
    handler: H,
    mut shutdown: watch::Receiver<bool>,
) -> Result<RunStats, ConsumerError> {
    cfg.validate()?;
    let kafka = |what| move |source| ConsumerError::Kafka { what, source };
    let consumer: StreamConsumer =
        producer::client_config(&cfg.brokers, &cfg.consumer_settings()).create().map_err(kafka("consumer"))?;
    let producer = producer::producer_config(&cfg.brokers, &cfg.producer_settings()).create().map_err(kafka("producer"))?;
    let topics: Vec<&str> = cfg.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(kafka("subscribe"))?;
    tracing::info!(group = %cfg.group_id, ?topics, service = %cfg.service_name, "consumer kit running");

    let mut kit =
        Kit { dedupe: Dedupe::new(cfg.dedupe_capacity), cfg, handler: Arc::new(handler), producer, stats: RunStats::default() };
    loop {
        let msg = tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break,
            received = consumer.recv() => match received {
                Ok(m) => m.detach(),
                Err(error) => {
                    tracing::warn!(%error, "consumer error");
                    continue;
                }
            },
        };
        if kit.process(&msg, &mut shutdown).await == Step::Abandon {
            tracing::warn!(
                topic = msg.topic(),
                partition = msg.partition(),
                offset = msg.offset(),
                "shutdown: record left uncommitted"
            );
            break;
        }
        if let Err(error) = consumer.store_offset(msg.topic(), msg.partition(), msg.offset()) {
            // The partition was revoked meanwhile: its new owner gets the record again.
            tracing::warn!(%error, topic = msg.topic(), partition = msg.partition(), offset = msg.offset(), "offset not stored");
        }
    }

    let Kit { stats, producer, .. } = kit;
    let committed = tokio::task::spawn_blocking(move || {
        let result = consumer.commit_consumer_state(CommitMode::Sync);
        drop(consumer);
        drop(producer);
        result
    })
    .await;
    tracing::info!(?stats, "consumer kit stopped");
    match committed {
        Ok(Ok(())) | Ok(Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset))) => Ok(stats),
        Ok(Err(source)) => Err(ConsumerError::Kafka { what: "commit", source }),
        Err(join) => {
            tracing::error!(%join, "commit task failed");
            Err(ConsumerError::Kafka { what: "commit", source: KafkaError::Canceled })
        }
    }
}

/// Resolves once shutdown is requested or can no longer be (the sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Whether the record is done with (its offset may be stored) or left for redelivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Done,
    Abandon,
}

struct Kit<H> {
    cfg: ConsumerConfig,
    handler: Arc<H>,
    producer: FutureProducer,
    dedupe: Dedupe,
    stats: RunStats,
}

impl<H: Handler> Kit<H> {
    async fn process(&mut self, msg: &OwnedMessage, shutdown: &mut watch::Receiver<bool>) -> Step {
        let event = match decode(msg) {
            Ok(event) => Arc::new(event),
            Err(e) => return self.dead_letter(msg, None, &format!("undecodable record: {e}"), shutdown).await,
        };
        if event.signature.as_deref() == Some("invalid") {
            // Untrusted: acting on it, or remembering its id, would let a forgery stand in for
            // the genuine delivery that carries the same id.
            tracing::warn!(event_id = %event.id, route = %event.route, "event with an invalid signature skipped");
            self.stats.skipped_invalid += 1;
            return Step::Done;
        }
        if self.dedupe.contains(&event.id) {
            tracing::debug!(event_id = %event.id, "duplicate event skipped");
            self.stats.deduplicated += 1;
            return Step::Done;
        }
        let (decision, latency_ms) = match self.decide(&event).await {
            Ok(decided) => decided,
            Err(reason) => return self.dead_letter(msg, Some(&event.id), &reason, shutdown).await,
        };
        self.stats.handled += 1;
        let outcome = Outcome::from_response(
            &event.id,
            &event.route,
            Source::New,
            event.mode,
            decision.status,
            decision.content_type.as_deref(),
            &decision.body,
            latency_ms,
            &self.cfg.service_name,
        );
        let value = match serde_json::to_vec(&outcome) {
            Ok(v) => v,
            Err(e) => return self.dead_letter(msg, Some(&event.id), &format!("outcome not serializable: {e}"), shutdown).await,
        };
        let headers = OwnedHeaders::new().insert(Header { key: "content-type", value: Some("application/json") });
        let topic = self.cfg.outcomes_topic.clone();
        if !self.produce_acked(&topic, Some(event.id.as_bytes()), Some(&value), headers, shutdown).await {
            return Step::Abandon;
        }
        self.stats.outcomes_published += 1;
        self.dedupe.insert(&event.id);
        Step::Done
    }

    /// Calls the handler until it decides, with backoff; `Err` is the dead-letter reason.
    async fn decide(&mut self, event: &Arc<Event>) -> Result<(Decision, f64), String> {
        let (mut delay, mut attempt) = (self.cfg.backoff, 0);
        loop {
            attempt += 1;
            let (handler, ev) = (self.handler.clone(), event.clone());
            let started = Instant::now();
            // A task of its own, so a panicking handler is one failed attempt, not a dead loop.
            let joined = tokio::spawn(async move {
                let effects = Effects::for_event(&ev);
                let result = handler.handle(&ev, &effects).await;
                (result, effects.skipped())
            })
            .await;
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            let error = match joined {
                Ok((result, skipped)) => {
                    self.stats.effects_skipped += skipped;
                    match result {
                        Ok(decision) => return Ok((decision, latency_ms)),
                        Err(e) => e,
                    }
                }
                Err(join) => HandlerError::retryable(format!("handler panicked: {}", panic_message(join))),
            };
            if error.is_permanent() {
                return Err(format!("permanent handler error: {error}"));
            }
            if attempt >= self.cfg.max_attempts {
                return Err(format!("handler failed {attempt} times, last: {error}"));
            }
            tracing::warn!(event_id = %event.id, attempt, %error, retry_in = ?delay, "handler failed, retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    /// Writes the record as it came, plus `dlq_reason`, to its dead-letter topic.
    async fn dead_letter(
        &mut self,
        msg: &OwnedMessage,
        event_id: Option<&str>,
        reason: &str,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Step {
        let topic = self.cfg.dead_letter_topic(msg.topic());
        tracing::warn!(%topic, partition = msg.partition(), offset = msg.offset(), event_id, reason, "dead-lettering record");
        let mut headers = OwnedHeaders::new_with_capacity(msg.headers().map_or(0, |h| h.count()) + 1);
        for h in msg.headers().into_iter().flat_map(|hs| hs.iter()) {
            headers = headers.insert(Header { key: h.key, value: h.value });
        }
        headers = headers.insert(Header { key: "dlq_reason", value: Some(reason) });
        if !self.produce_acked(&topic, msg.key(), msg.payload(), headers, shutdown).await {
            return Step::Abandon;
        }
        self.stats.dead_lettered += 1;
        if let Some(id) = event_id {
            self.dedupe.insert(id);
        }
        Step::Done
    }

    /// Produces one record and waits for its acknowledgement, retrying with backoff until it is
    /// acknowledged. `false` when shutdown was requested between retries.
    async fn produce_acked(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        headers: OwnedHeaders,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let mut delay = self.cfg.backoff;
        loop {
            let mut record = FutureRecord::<[u8], [u8]>::to(topic).headers(headers.clone());
            record.key = key;
            record.payload = payload;
            match self.producer.send(record, QUEUE_TIMEOUT).await {
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
}

fn panic_message(join: tokio::task::JoinError) -> String {
    if !join.is_panic() {
        return join.to_string();
    }
    let payload = join.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}
