//! Where a shadow event goes when Kafka did not take it: the dead-letter topic when Kafka refused
//! it for good, else the spool; dropped and counted only when neither can take it.

use std::time::{SystemTime, UNIX_EPOCH};

use rdkafka::error::KafkaError;

use super::dedupe::Dedupe;
use super::failure::DropReason;
use super::route_metrics::RouteCounters;
use super::shared::Shared;
use super::{failure, FailReason};
use crate::event::CanonicalEvent;
use crate::publish::spool::{Entry, SpoolError};

/// The event a spool entry holds.
pub(super) fn entry_event(e: &Entry) -> CanonicalEvent {
    CanonicalEvent {
        id: e.id.clone(),
        topic: e.topic.clone(),
        key: e.key.clone(),
        value: bytes::Bytes::from(e.value.clone()),
        headers: e.headers.clone(),
    }
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Shared {
    /// A delivery failed (or librdkafka would not queue the event at all).
    pub(super) async fn failed(
        &self,
        route: &RouteCounters,
        event: CanonicalEvent,
        order: u64,
        error: KafkaError,
        possibly_persisted: bool,
        partition: Option<i32>,
    ) {
        let reason = FailReason::of(&error);
        route.failed(reason).inc();
        if let Some(why) = failure::permanent(&error) {
            self.dead_letter(route, &event, why, &error).await;
            return;
        }
        if self.inner.spool.is_some() {
            self.spool_event(route, &event, order, possibly_persisted, partition, reason).await;
            return;
        }
        tracing::error!(route = %route.name, event_id = %event.id, topic = %event.topic, reason = reason.as_str(), possibly_persisted, %error, "event not published and no spool configured: dropped");
        route.dropped(DropReason::NoSpool).inc();
        // Perhaps not on Kafka: the sender's retry must be able to publish it.
        self.inner.dedupe.forget(&Dedupe::key(&route.name, &event.id));
    }

    /// Writes `event` to the spool (off the async threads), counting what happens. Returns whether
    /// it was spooled; if not, it is counted as dropped and forgotten by dedupe.
    pub(super) async fn spool_event(
        &self,
        route: &RouteCounters,
        event: &CanonicalEvent,
        order: u64,
        possibly_persisted: bool,
        partition: Option<i32>,
        reason: FailReason,
    ) -> bool {
        let Some(spool) = self.inner.spool.clone() else { return false };
        let entry = Entry {
            route: route.name.to_string(),
            id: event.id.clone(),
            topic: event.topic.clone(),
            key: event.key.clone(),
            headers: event.headers.clone(),
            value: event.value.to_vec(),
            possibly_persisted,
            partition,
            spooled_at_ms: now_ms(),
            order,
        };
        let appended = tokio::task::spawn_blocking(move || spool.append(&entry)).await;
        let why = match appended {
            Ok(Ok(appended)) => {
                route.spooled(reason).inc();
                self.evicted(appended.evicted);
                return true;
            }
            Ok(Err(e @ SpoolError::Full { .. })) => (DropReason::SpoolFull, e.to_string()),
            Ok(Err(e)) => (DropReason::SpoolError, e.to_string()),
            Err(e) => (DropReason::SpoolError, e.to_string()),
        };
        route.dropped(why.0).inc();
        tracing::error!(route = %route.name, event_id = %event.id, reason = why.0.as_str(), error = %why.1, "event dropped: the spool cannot take it");
        // Perhaps not on Kafka: the sender's retry must be able to publish it (a duplicate, which
        // consumers drop by `ce_id`, is better than a loss).
        self.inner.dedupe.forget(&Dedupe::key(&route.name, &event.id));
        false
    }

    /// Entries the spool deleted to make room (`drop_oldest`): lost, counted, forgotten by dedupe.
    pub(super) fn evicted(&self, lost: Vec<Entry>) {
        for lost in lost {
            self.route(&lost.route).dropped(DropReason::SpoolEvicted).inc();
            tracing::error!(route = %lost.route, event_id = %lost.id, "oldest spooled event evicted: spool full");
            self.inner.dedupe.forget(&Dedupe::key(&lost.route, &lost.id));
        }
    }
}
