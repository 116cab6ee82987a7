//! One lane: handles its records one at a time per the protocol (decode, dedupe, handle with
//! retries, publish the outcome), dead-letters what cannot be handled, and reports the records it
//! is done with, in batches, so their offsets can be stored: at once when skipped, once
//! dead-lettered, and, for a published outcome, when the broker acknowledges it (the lane moves
//! on meanwhile; the acknowledgements are awaited in the lane's own task, beside its records).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use futures_util::stream::{FuturesUnordered, StreamExt};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::{mpsc, watch};

use crate::compare::outcome::{Outcome, Source};

use super::config::ConsumerConfig;
use super::dedupe::{Claim, Dedupe};
use super::effects::Effects;
use super::event::{decode_record, Event};
use super::handler::{Decision, Handler, HandlerError};
use super::raw::Raw;
use super::runner::RunStats;
use super::settle::{outcome_headers, produce_acked, settle, Done, Publishing, MAX_BACKOFF};

/// What every lane shares.
pub(super) struct Shared<H> {
    pub(super) cfg: ConsumerConfig,
    pub(super) handler: H,
    pub(super) producer: FutureProducer,
    pub(super) dedupe: Arc<Dedupe>,
    /// Outcomes the broker acknowledged (counted where the acknowledgement is awaited).
    pub(super) outcomes_acked: AtomicU64,
}

/// A record handed to a lane, copied out where it was received; the lane decodes it.
pub(super) struct Job {
    pub(super) raw: Raw,
}

impl Job {
    fn done(&self) -> Done {
        Done { topic: self.raw.topic_name().clone(), partition: self.raw.partition(), offset: self.raw.offset() }
    }
}

/// Whether the record is done with (its offset may be stored) or left for redelivery.
enum Step {
    Done,
    /// The outcome is on its way: the record is done once it is acknowledged.
    Publishing(Publishing),
    Abandon,
}

/// Runs one lane until its queue closes and is empty and every outcome on its way is settled, or
/// a shutdown leaves a record unanswered (then the rest of its queue is left too: handling a later
/// event of the same key first would break the key's order on redelivery). Returns what it did.
pub(super) async fn run_lane<H: Handler>(
    shared: Arc<Shared<H>>,
    mut jobs: mpsc::UnboundedReceiver<Vec<Job>>,
    done: mpsc::UnboundedSender<Vec<Done>>,
    mut shutdown: watch::Receiver<bool>,
) -> RunStats {
    let settle_shutdown = shutdown.clone();
    let mut lane = Lane { shared: shared.clone(), stats: RunStats::default() };
    let mut pending = FuturesUnordered::new();
    let mut finished: Vec<Done> = Vec::new();
    'lane: loop {
        let batch = tokio::select! {
            biased;
            () = settled(&mut pending, &mut finished), if !pending.is_empty() => None,
            batch = jobs.recv() => match batch {
                Some(batch) => Some(batch),
                None => break 'lane,
            },
        };
        for (i, job) in batch.iter().flatten().enumerate() {
            // Acknowledgements keep being settled while the handler works.
            let step = {
                let mut step = std::pin::pin!(lane.process(job, &mut shutdown));
                loop {
                    tokio::select! {
                        biased;
                        step = &mut step => break step,
                        () = settled(&mut pending, &mut finished), if !pending.is_empty() => {
                            let _ = done.send(std::mem::take(&mut finished));
                        }
                    }
                }
            };
            match step {
                Step::Done => finished.push(job.done()),
                Step::Publishing(publishing) => pending.push(settle(&shared, publishing, &settle_shutdown)),
                Step::Abandon => {
                    tracing::warn!(
                        topic = job.raw.topic(),
                        partition = job.raw.partition(),
                        offset = job.raw.offset(),
                        queued = batch.as_ref().map_or(0, Vec::len) - i - 1,
                        queued_batches = jobs.len(),
                        "shutdown: record left uncommitted, with the rest of its lane"
                    );
                    break 'lane;
                }
            }
        }
        if !finished.is_empty() {
            let _ = done.send(std::mem::take(&mut finished));
        }
    }
    // What is still on its way is acknowledged, or abandoned at the stop.
    while let Some(settled) = pending.next().await {
        finished.extend(settled);
    }
    if !finished.is_empty() {
        let _ = done.send(finished);
    }
    lane.stats
}

/// Resolves once at least one outcome on its way has settled, with every one settled by then
/// added to `finished` (many acknowledgements, one wake-up).
async fn settled<F: Future<Output = Option<Done>>>(pending: &mut FuturesUnordered<F>, finished: &mut Vec<Done>) {
    std::future::poll_fn(|cx| {
        let mut any = false;
        while let Poll::Ready(Some(settled)) = pending.poll_next_unpin(cx) {
            finished.extend(settled);
            any = true;
        }
        if any {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

struct Lane<H> {
    shared: Arc<Shared<H>>,
    stats: RunStats,
}

impl<H: Handler> Lane<H> {
    async fn process(&mut self, job: &Job, shutdown: &mut watch::Receiver<bool>) -> Step {
        let event = match decode_record(&job.raw, job.raw.body()) {
            Ok(event) => event,
            Err(e) => return self.dead_letter(job, None, &format!("undecodable record: {e}"), shutdown).await,
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
            Err(reason) => return self.dead_letter(job, Some(claim), &reason, shutdown).await,
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
            Err(e) => return self.dead_letter(job, Some(claim), &format!("outcome not serializable: {e}"), shutdown).await,
        };
        let mut record = FutureRecord::<[u8], [u8]>::to(&cfg.outcomes_topic).headers(outcome_headers());
        (record.key, record.payload) = (Some(event.id.as_bytes()), Some(value.as_slice()));
        // Enqueued now, acknowledged later: the lane goes on to its next record meanwhile, and the
        // record counts as done (its offset storable, its id answered) only once acknowledged.
        let delivery = self.shared.producer.send_result(record).ok();
        Step::Publishing(Publishing { delivery, claim, value, done: job.done() })
    }

    /// Calls the handler until it decides, with backoff; `Err` is the dead-letter reason.
    async fn decide(&mut self, event: &Event) -> Result<(Decision, f64), String> {
        let (mut delay, mut attempt) = (self.shared.cfg.backoff, 0);
        loop {
            attempt += 1;
            let effects = Effects::for_event(event);
            let started = Instant::now();
            // A panicking handler is one failed attempt, not a dead lane.
            let result = catch_unwind(self.shared.handler.handle(event, &effects)).await;
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            self.stats.effects_skipped += effects.skipped();
            let error = match result {
                Ok(Ok(decision)) => return Ok((decision, latency_ms)),
                Ok(Err(e)) => e,
                Err(panic) => HandlerError::retryable(format!("handler panicked: {panic}")),
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
    async fn dead_letter(&mut self, job: &Job, claim: Option<Claim>, reason: &str, shutdown: &mut watch::Receiver<bool>) -> Step {
        let msg = &job.raw;
        let topic = self.shared.cfg.dead_letter_topic(msg.topic());
        let event_id = claim.as_ref().map(Claim::id);
        tracing::warn!(%topic, partition = msg.partition(), offset = msg.offset(), event_id, reason, "dead-lettering record");
        // The record as it came: the same key, value and headers.
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

/// Runs `fut`; a panic while polling it becomes `Err` with the panic's message (the future is then
/// dropped, never polled again). In place, without a task of its own per call.
async fn catch_unwind<T>(fut: impl Future<Output = T>) -> Result<T, String> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
        Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(payload) => Poll::Ready(Err(payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default())),
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_future_is_an_error_not_a_dead_lane() {
        assert_eq!(catch_unwind(async { 7 }).await, Ok(7));
        let after_a_wait = async {
            tokio::task::yield_now().await;
            if true {
                panic!("handler bug");
            }
            0
        };
        assert_eq!(catch_unwind(after_a_wait).await, Err("handler bug".to_string()));
        let formatted = async { panic!("bad id {}", 42) };
        assert_eq!(catch_unwind(formatted).await, Err::<(), _>("bad id 42".to_string()));
    }
}
