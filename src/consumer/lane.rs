//! One lane: handles its records one at a time per the protocol (decode, dedupe, handle with
//! retries, publish the outcome), dead-letters what cannot be handled, and reports each record
//! done so its offset can be stored: at once when skipped, once dead-lettered, and, for a
//! published outcome, when the broker acknowledges it (the lane moves on meanwhile).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};

use crate::compare::outcome::{Outcome, Source};

use super::config::ConsumerConfig;
use super::dedupe::{Claim, Dedupe};
use super::effects::Effects;
use super::event::{decode, Event};
use super::handler::{Decision, Handler, HandlerError};
use super::runner::{stopped, RunStats};

/// Longest wait between two retries, however many have failed.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a produce may wait for room in librdkafka's local queue.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// What every lane shares.
pub(super) struct Shared<H> {
    pub(super) cfg: ConsumerConfig,
    pub(super) handler: Arc<H>,
    pub(super) producer: FutureProducer,
    pub(super) dedupe: Arc<Dedupe>,
    /// Outcomes the broker acknowledged (counted where the acknowledgement is awaited).
    pub(super) outcomes_acked: AtomicU64,
}

/// A record handed to a lane, with its share of the in-flight bound.
pub(super) struct Job {
    pub(super) msg: OwnedMessage,
    pub(super) _permit: OwnedSemaphorePermit,
}

/// A record a lane is done with: its offset may be stored.
pub(super) struct Done {
    pub(super) topic: String,
    pub(super) partition: i32,
    pub(super) offset: i64,
}

/// Whether the record is done with (its offset may be stored) or left for redelivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Done,
    /// The outcome is on its way: a task reports the record done once it is acknowledged.
    Publishing,
    Abandon,
}

/// Runs one lane until its queue closes and is empty, or a shutdown leaves a record unanswered
/// (then the rest of its queue is left too: handling a later event of the same key first would
/// break the key's order on redelivery). Returns what it did.
pub(super) async fn run_lane<H: Handler>(
    shared: Arc<Shared<H>>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    done: mpsc::UnboundedSender<Done>,
    mut shutdown: watch::Receiver<bool>,
) -> RunStats {
    let mut lane = Lane { shared, stats: RunStats::default(), done: done.clone() };
    while let Some(Job { msg, _permit }) = jobs.recv().await {
        let (msg, mut permit) = (&msg, Some(_permit));
        let step = lane.process(msg, &mut permit, &mut shutdown).await;
        if step == Step::Publishing {
            continue;
        }
        if step == Step::Abandon {
            tracing::warn!(
                topic = msg.topic(),
                partition = msg.partition(),
                offset = msg.offset(),
                queued = jobs.len(),
                "shutdown: record left uncommitted, with the rest of its lane"
            );
            break;
        }
        let _ = done.send(Done { topic: msg.topic().to_string(), partition: msg.partition(), offset: msg.offset() });
    }
    lane.stats
}

struct Lane<H> {
    shared: Arc<Shared<H>>,
    stats: RunStats,
    done: mpsc::UnboundedSender<Done>,
}

impl<H: Handler> Lane<H> {
    async fn process(
        &mut self,
        msg: &OwnedMessage,
        permit: &mut Option<OwnedSemaphorePermit>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Step {
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
        let Some(claim) = self.shared.dedupe.claim(&event.id).await else {
            tracing::debug!(event_id = %event.id, "duplicate event skipped");
            self.stats.deduplicated += 1;
            return Step::Done;
        };
        let (decision, latency_ms) = match self.decide(&event).await {
            Ok(decided) => decided,
            Err(reason) => return self.dead_letter(msg, Some(claim), &reason, shutdown).await,
        };
        self.stats.handled += 1;
        let cfg = &self.shared.cfg;
        let outcome = Outcome::from_response(
            &event.id,
            &event.route,
            Source::New,
            event.mode,
            decision.status,
            decision.content_type.as_deref(),
            &decision.body,
            latency_ms,
            &cfg.service_name,
        );
        let value = match serde_json::to_vec(&outcome) {
            Ok(v) => v,
            Err(e) => return self.dead_letter(msg, Some(claim), &format!("outcome not serializable: {e}"), shutdown).await,
        };
        let headers = OwnedHeaders::new().insert(Header { key: "content-type", value: Some("application/json") });
        let mut record = FutureRecord::<[u8], [u8]>::to(&cfg.outcomes_topic).headers(headers.clone());
        (record.key, record.payload) = (Some(event.id.as_bytes()), Some(value.as_slice()));
        // Enqueued now, acknowledged later: the lane goes on to its next record meanwhile, and the
        // record counts as done (its offset storable, its id answered) only once acknowledged.
        let first = self.shared.producer.send_result(record).ok();
        let (shared, done, permit, mut shutdown) = (self.shared.clone(), self.done.clone(), permit.take(), shutdown.clone());
        let finished = Done { topic: msg.topic().to_string(), partition: msg.partition(), offset: msg.offset() };
        tokio::spawn(async move {
            let topic = &shared.cfg.outcomes_topic;
            let acked = match first {
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
            if acked || produce_acked(&shared.producer, &shared.cfg, topic, key, Some(&value), headers, &mut shutdown).await {
                shared.outcomes_acked.fetch_add(1, Ordering::Relaxed);
                claim.answered();
                let _ = done.send(finished);
            } else {
                tracing::warn!(topic = %finished.topic, partition = finished.partition, offset = finished.offset, "shutdown: outcome not acknowledged, record left uncommitted");
            }
            drop(permit);
        });
        Step::Publishing
    }

    /// Calls the handler until it decides, with backoff; `Err` is the dead-letter reason.
    async fn decide(&mut self, event: &Arc<Event>) -> Result<(Decision, f64), String> {
        let (mut delay, mut attempt) = (self.shared.cfg.backoff, 0);
        loop {
            attempt += 1;
            let (handler, ev) = (self.shared.handler.clone(), event.clone());
            let started = Instant::now();
            // A task of its own, so a panicking handler is one failed attempt, not a dead lane.
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
            if attempt >= self.shared.cfg.max_attempts {
                return Err(format!("handler failed {attempt} times, last: {error}"));
            }
            tracing::warn!(event_id = %event.id, attempt, %error, retry_in = ?delay, "handler failed, retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    /// Writes the record as it came, plus `dlq_reason`, to its dead-letter topic; the event's id
    /// (when it has one) then counts as answered.
    async fn dead_letter(
        &mut self,
        msg: &OwnedMessage,
        claim: Option<Claim>,
        reason: &str,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Step {
        let topic = self.shared.cfg.dead_letter_topic(msg.topic());
        let event_id = claim.as_ref().map(Claim::id);
        tracing::warn!(%topic, partition = msg.partition(), offset = msg.offset(), event_id, reason, "dead-lettering record");
        let mut headers = OwnedHeaders::new_with_capacity(msg.headers().map_or(0, |h| h.count()) + 1);
        for h in msg.headers().into_iter().flat_map(|hs| hs.iter()) {
            headers = headers.insert(Header { key: h.key, value: h.value });
        }
        headers = headers.insert(Header { key: "dlq_reason", value: Some(reason) });
        if !produce_acked(&self.shared.producer, &self.shared.cfg, &topic, msg.key(), msg.payload(), headers, shutdown).await {
            return Step::Abandon;
        }
        self.stats.dead_lettered += 1;
        if let Some(claim) = claim {
            claim.answered();
        }
        Step::Done
    }
}

/// Produces one record and waits for its acknowledgement, retrying with backoff until it is
/// acknowledged. `false` when shutdown was requested between retries.
async fn produce_acked(
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
