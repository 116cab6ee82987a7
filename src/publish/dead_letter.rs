//! The dead-letter topic: events Kafka refused for good (too large, invalid, not authorised), and
//! events that failed a `dead_letter` contract at the edge, with the reason, so nothing accepted
//! disappears silently.
//!
//! The record keeps the event's key and headers and adds `dlq_reason`, `dlq_error`, `dlq_route`,
//! `dlq_topic` and `dlq_size`. A body too large for Kafka is cut to half of `message.max.bytes`
//! and marked `dlq_truncated: true`.

use rdkafka::error::KafkaError;

use super::failure::DropReason;
use super::producer::{self, Report};
use super::route_metrics::RouteCounters;
use super::shared::{outgoing, Shared};
use super::EventSink;
use crate::event::CanonicalEvent;
use crate::telemetry::contract::CONTRACT_REASON;

impl Shared {
    /// Writes `event` to the dead-letter topic and counts it; if even that fails, counts a drop.
    pub(super) async fn dead_letter(
        &self,
        route: &RouteCounters,
        event: &CanonicalEvent,
        reason: &'static str,
        error: &KafkaError,
    ) {
        self.dead_letter_with(route, event, reason, &error.to_string()).await;
    }

    /// [`Shared::dead_letter`] with the error as text (`dlq_error`). A dead-letter record that
    /// Kafka refused for good is not wrapped again: it is counted as dropped.
    async fn dead_letter_with(&self, route: &RouteCounters, event: &CanonicalEvent, reason: &'static str, error: &str) {
        if event.topic == self.inner.dead_letter_topic {
            route.dropped(DropReason::DeadLetterFailed).inc();
            tracing::error!(route = %route.name, event_id = %event.id, %error, "the dead-letter topic refused the event for good: dropped");
            return;
        }
        let record = self.dead_letter_record(&route.name, event, reason, error);
        match producer::deliver(&self.shadow(), &outgoing(&record)).await {
            Report::Acked => {
                route.dead_lettered(reason);
                tracing::error!(route = %route.name, event_id = %event.id, reason, %error, dead_letter_topic = %record.topic, "event refused by Kafka: sent to the dead-letter topic");
            }
            Report::Failed { error: dlq_error, .. } => {
                route.dropped(DropReason::DeadLetterFailed).inc();
                tracing::error!(route = %route.name, event_id = %event.id, reason, %error, %dlq_error, "event refused by Kafka and the dead-letter topic failed too: dropped");
            }
        }
    }

    /// The dead-letter topic's record for `event`: its key and headers plus the `dlq_*` headers,
    /// the value cut to `dead_letter_max_bytes`.
    fn dead_letter_record(&self, route: &str, event: &CanonicalEvent, reason: &str, error: &str) -> CanonicalEvent {
        let inner = &self.inner;
        let truncated = event.value.len() > inner.dead_letter_max_bytes;
        let mut headers = event.headers.clone();
        headers.extend([
            ("dlq_reason".to_string(), reason.to_string()),
            ("dlq_error".to_string(), error.to_string()),
            ("dlq_route".to_string(), route.to_string()),
            ("dlq_topic".to_string(), event.topic.clone()),
            ("dlq_size".to_string(), event.value.len().to_string()),
            ("dlq_truncated".to_string(), truncated.to_string()),
        ]);
        CanonicalEvent {
            id: event.id.clone(),
            topic: inner.dead_letter_topic.clone(),
            key: event.key.clone(),
            value: event.value.slice(..event.value.len().min(inner.dead_letter_max_bytes)),
            headers,
        }
    }

    /// An acknowledged event that was a contract's dead letter (the publish paths put nothing
    /// else on the dead-letter topic; the ingress logged the violation with the event's id):
    /// counted in `strangler_dead_letters_total{reason="contract"}`. False for any other topic.
    pub(super) fn landed_dead_letter(&self, route: &RouteCounters, topic: &str) -> bool {
        if topic != self.inner.dead_letter_topic {
            return false;
        }
        route.dead_lettered(CONTRACT_REASON);
        tracing::debug!(route = %route.name, dead_letter_topic = topic, "a contract's dead letter acknowledged");
        true
    }
}

impl EventSink {
    /// The request path's way to dead-letter an event that failed a `dead_letter` contract:
    /// `dlq_reason=contract`, `dlq_error` = `errors` (a JSON array). The record takes the shadow
    /// path of any event (write-ahead, the spool while Kafka is down, replay), so it is as safe
    /// as the route's own events; once Kafka acknowledges it, it is counted in
    /// `strangler_dead_letters_total{reason="contract"}`. Returns when a shadow publish would.
    pub async fn dead_letter_contract(&self, route: &str, event: &CanonicalEvent, errors: &str) {
        let record = self.shared.dead_letter_record(route, event, CONTRACT_REASON, errors);
        self.publish(route, record).await;
    }
}
