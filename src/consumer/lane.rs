//! One lane: handles its records one at a time per the protocol (decode, dedupe, handle with
//! retries, publish the outcome and await its ack), dead-letters what cannot be handled, and
//! reports each record done so its offset can be stored.

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
    let mut lane = Lane { shared, stats: RunStats::default() };
    while let Some(job) = jobs.recv().await {
        let msg = &job.msg;
        if lane.process(msg, &mut shutdown).await == Step::Abandon {
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
}

impl<H: Handler> Lane<H> {
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
        if !self.produce_acked(&cfg.outcomes_topic, Some(event.id.as_bytes()), Some(&value), headers, shutdown).await {
            return Step::Abandon;
        }
        self.stats.outcomes_published += 1;
        claim.answered();
        Step::Done
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
        if !self.produce_acked(&topic, msg.key(), msg.payload(), headers, shutdown).await {
            return Step::Abandon;
        }
        self.stats.dead_lettered += 1;
        if let Some(claim) = claim {
            claim.answered();
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
        let mut delay = self.shared.cfg.backoff;
        loop {
            let mut record = FutureRecord::<[u8], [u8]>::to(topic).headers(headers.clone());
            record.key = key;
            record.payload = payload;
            match self.shared.producer.send(record, QUEUE_TIMEOUT).await {
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
