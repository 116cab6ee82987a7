//! The dead-letter topic: events Kafka refused for good (too large, invalid, not authorised), and
//! events that failed a `dead_letter` contract at the edge, with the reason, so nothing accepted
//! disappears silently.
//!
//! The record keeps the event's key and headers and adds `dlq_reason`, `dlq_error`, `dlq_route`,
//! `dlq_topic` and `dlq_size`. A body too large for Kafka is cut to half of `message.max.bytes`
//! and marked `dlq_truncated: true`.

use rdkafka::error::KafkaError;

use super::failure::DropReason;
use super::producer::{self, Outgoing, Report};
use super::route_metrics::RouteCounters;
use super::shared::Shared;
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

    /// [`Shared::dead_letter`] with the error as text (`dlq_error`).
    async fn dead_letter_with(&self, route: &RouteCounters, event: &CanonicalEvent, reason: &'static str, error: &str) {
        let inner = &self.inner;
        let truncated = event.value.len() > inner.dead_letter_max_bytes;
        let value = &event.value[..event.value.len().min(inner.dead_letter_max_bytes)];
        let mut headers = event.headers.clone();
        headers.extend([
            ("dlq_reason".to_string(), reason.to_string()),
            ("dlq_error".to_string(), error.to_string()),
            ("dlq_route".to_string(), route.name.to_string()),
            ("dlq_topic".to_string(), event.topic.clone()),
            ("dlq_size".to_string(), event.value.len().to_string()),
            ("dlq_truncated".to_string(), truncated.to_string()),
        ]);
        let out = Outgoing { topic: &inner.dead_letter_topic, key: event.key.as_bytes(), value, headers: &headers };
        let why = if reason == CONTRACT_REASON { "event failed its contract" } else { "event refused by Kafka" };
        match producer::deliver(&self.shadow(), &out).await {
            Report::Acked => {
                route.dead_lettered(reason);
                tracing::error!(route = %route.name, event_id = %event.id, reason, %error, dead_letter_topic = %inner.dead_letter_topic, "{why}: sent to the dead-letter topic");
            }
            Report::Failed { error: dlq_error, .. } => {
                route.dropped(DropReason::DeadLetterFailed).inc();
                tracing::error!(route = %route.name, event_id = %event.id, reason, %error, %dlq_error, "{why} and the dead-letter topic failed too: dropped");
            }
        }
    }
}

impl EventSink {
    /// The request path's way to dead-letter an event that failed a `dead_letter` contract:
    /// `dlq_reason=contract`, `dlq_error` = `errors` (a JSON array). Returns once the dead-letter
    /// topic acknowledged it (counted in `strangler_dead_letters_total{reason="contract"}`) or
    /// refused it (counted as dropped, `dead_letter_failed`).
    pub async fn dead_letter_contract(&self, route: &str, event: &CanonicalEvent, errors: &str) {
        let counters = self.shared.route(route);
        self.shared.dead_letter_with(&counters, event, CONTRACT_REASON, errors).await;
    }
}
