//! The event sink: the request path's only way to publish. A tower [`Service`] for shadow events
//! (enqueue and return; a task settles the delivery report), [`EventSink::publish_live`] for live
//! events (wait for the broker's acknowledgement), and the dedupe window.
//!
//! `poll_ready` says honestly whether an event would be taken now: ready unless librdkafka's queue
//! is full and no spool can take the event (or, while events queue behind the spool, the spool
//! cannot). It never returns `Pending`: shadow events put no back-pressure on the request path.
//! A caller that finds it not ready still hands the event over with [`EventSink::publish`], which
//! counts it failed and dropped exactly as a send librdkafka refused.

use std::future::{ready, Ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{BoxFuture, Either};
use rdkafka::error::KafkaError;
use tower::{Service, ServiceExt};

use super::dedupe::Dedupe;
use super::producer::{self, Placed, Report};
use super::route_metrics::RouteCounters;
use super::shared::{outgoing, Sent, Shared};
use super::{FailReason, LiveFailure};
use crate::event::CanonicalEvent;

/// A shadow event for a route.
pub struct Shadow<'a> {
    pub route: &'a str,
    pub event: CanonicalEvent,
}

/// `poll_ready`'s refusal: neither librdkafka's queue nor a spool can take an event now.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the producer queue is full and no spool can take the event")]
pub struct Full;

/// The request path's handle on publishing.
#[derive(Clone)]
pub struct EventSink {
    pub(super) shared: Shared,
}

impl<'a> Service<Shadow<'a>> for EventSink {
    type Response = ();
    type Error = Full;
    /// Ready at once when librdkafka took the event; the spool paths write to disk first.
    type Future = Either<Ready<Result<(), Full>>, BoxFuture<'static, Result<(), Full>>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Full>> {
        Poll::Ready(if self.shared.can_take() { Ok(()) } else { Err(Full) })
    }

    /// When the future completes, the event is in librdkafka's queue or written to the spool (so
    /// a process kill cannot lose a spooled event whose request was answered), or it was counted
    /// as dropped and forgotten by dedupe.
    fn call(&mut self, req: Shadow<'a>) -> Self::Future {
        let route = self.shared.route(req.route);
        let order = self.shared.next_order();
        let shared = self.shared.clone();
        if shared.inner.wal.is_some() || shared.spooling().is_some() {
            return Either::Right(Box::pin(async move {
                publish_spooled(shared, route, req.event, order).await;
                Ok(())
            }));
        }
        match shared.send_shadow(route.clone(), req.event, order) {
            Sent::Queued => Either::Left(ready(Ok(()))),
            Sent::Refused(refused) => Either::Right(Box::pin(async move {
                let (error, event) = *refused;
                shared.failed(&route, event, order, error, false, None).await;
                Ok(())
            })),
        }
    }
}

/// Write-ahead, or events queueing behind the spool: what `call` does when the spool comes first.
async fn publish_spooled(shared: Shared, route: Arc<RouteCounters>, event: CanonicalEvent, order: u64) {
    if shared.inner.wal.is_some() && shared.publish_ahead(&route, &event, order).await {
        return;
    }
    if let Some(reason) = shared.spooling() {
        shared.spool_event(&route, &event, order, false, None, reason).await;
        return;
    }
    if let Sent::Refused(refused) = shared.send_shadow(route.clone(), event, order) {
        let (error, event) = *refused;
        shared.failed(&route, event, order, error, false, None).await;
    }
}

impl EventSink {
    /// Builds the publish counters of these routes now, so their first events look up nothing
    /// by label (a route added later gets its counters on its first event).
    pub fn prepare_routes<'r>(&self, routes: impl IntoIterator<Item = &'r str>) {
        for route in routes {
            self.shared.route(route);
        }
    }

    /// Hands a shadow event over and returns without waiting for Kafka (see [`Service::call`]).
    /// An event nothing can take now is still tried, and counted failed and dropped as such.
    pub async fn publish(&self, route: &str, event: CanonicalEvent) {
        let mut sink = self.clone();
        let shadow = Shadow { route, event };
        let _ = match ServiceExt::<Shadow<'_>>::ready(&mut sink).await {
            Ok(sink) => sink.call(shadow).await,
            Err(Full) => {
                tracing::debug!(route, "event sink not ready: the event is tried anyway and counted if refused");
                sink.call(shadow).await
            }
        };
    }

    /// True the first time this route publishes `event_id` within the dedupe window. A repeat is
    /// counted in `strangler_duplicates_total`.
    pub fn first_time(&self, route: &str, event_id: &str) -> bool {
        let first = self.shared.inner.dedupe.first(&Dedupe::key(route, event_id), std::time::Instant::now());
        if !first {
            self.shared.route(route).duplicates.inc();
        }
        first
    }

    /// Publishes a live event and waits for the broker's acknowledgement. On failure the route's
    /// `on_publish_failure` decides; an event Kafka may hold after all is spooled (and checked
    /// before it is ever resent) rather than forgotten.
    pub async fn publish_live(&self, route: &str, event: &CanonicalEvent) -> Result<(), LiveFailure> {
        let shared = &self.shared;
        let counters = shared.route(route);
        let report = match shared.spooling() {
            // A live event must not overtake spooled ones, nor wait for a broker known to be down.
            Some(reason) => Err(LiveFailure { reason, error: KafkaError::Canceled, possibly_persisted: false }),
            None => match producer::deliver_placed(&shared.live(), &outgoing(event)).await {
                Placed { report: Report::Acked, partition } => {
                    shared.landed(&counters, &event.topic, partition, &event.key);
                    Ok(())
                }
                Placed { report: Report::Failed { error, possibly_persisted, .. }, .. } => {
                    Err(LiveFailure { reason: FailReason::of(&error), error, possibly_persisted })
                }
            },
        };
        match &report {
            Ok(()) => {}
            Err(f) => {
                counters.failed(f.reason).inc();
                // Kafka may hold it: keep it (and its dedupe entry) in the spool, where replay checks
                // before resending. Otherwise the sender's retry must be able to publish it.
                let spooled = f.possibly_persisted && {
                    let order = shared.next_order();
                    shared.spool_event(&counters, event, order, true, None, f.reason).await
                };
                if !spooled {
                    shared.inner.dedupe.forget(&Dedupe::key(route, &event.id));
                }
            }
        }
        report
    }
}
