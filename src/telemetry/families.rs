//! The metric families of each stage: one struct per stage, its fields the families it counts
//! on. [`super::Metrics::new`] creates and registers them.

use prometheus::{Gauge, GaugeVec, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec};

/// Ownership decisions and the new path.
#[derive(Clone)]
pub struct RoutingMetrics {
    /// `strangler_assignments_total{route,owner}`.
    pub assignments: IntCounterVec,
    /// `strangler_fallbacks_total{route,reason}`: new-owned requests sent to the monolith instead.
    pub fallbacks: IntCounterVec,
    /// `strangler_outcome_timeouts_total{route}`: awaited new outcomes that came too late.
    pub outcome_timeouts: IntCounterVec,
    /// `strangler_route_share_percent{route}`: the share currently dialled (100 in cutover, 0 in shadow).
    pub share: GaugeVec,
    /// `strangler_route_refusals_total{route,reason}`: requests near a route refused
    /// (`ambiguous_path`, `method_not_allowed`).
    pub refusals: IntCounterVec,
}

/// The comparator.
#[derive(Clone)]
pub struct CompareMetrics {
    /// `strangler_parity_total{route,result}`.
    pub parity: IntCounterVec,
    /// `strangler_parity_ratio{route}`: matches over the last `comparator.parity_window` results.
    pub ratio: GaugeVec,
    /// `strangler_new_path_total{route,result}`: live events by the new path's verdict (`ok`,
    /// `error`, `missing`).
    pub new_path: IntCounterVec,
    /// `strangler_outcomes_total{route,source,mode}`: outcome records read.
    pub outcomes: IntCounterVec,
    /// `strangler_outcomes_dropped_total{reason}`: undecodable, unknown route, late or duplicate.
    pub dropped: IntCounterVec,
    /// `strangler_comparator_evicted_total{route}`: waiting events decided early because
    /// `comparator.max_pending` or `comparator.max_pending_bytes` was reached.
    pub evicted: IntCounterVec,
    /// `strangler_comparator_pending{route}`: events waiting for their second outcome.
    pub pending: IntGaugeVec,
    /// `strangler_comparator_pending_bytes`: bytes accounted to the waiting events.
    pub pending_bytes: IntGauge,
}

/// Requests at the public listener.
#[derive(Clone)]
pub struct IngressMetrics {
    /// `strangler_requests_total{route,status,outcome}`.
    pub requests: IntCounterVec,
    /// `strangler_request_duration_seconds{route,owner}`: from request head to response head.
    pub latency: HistogramVec,
    /// `strangler_body_budget_exhausted_total{route}`: matched requests refused for the body budget.
    pub budget_exhausted: IntCounterVec,
}

/// Signature verification.
#[derive(Clone)]
pub struct VerifyMetrics {
    /// `strangler_signature_failures_total{route,reason,mode}`.
    pub failures: IntCounterVec,
}

/// Calls to the monolith.
#[derive(Clone)]
pub struct LegacyMetrics {
    /// `strangler_legacy_duration_seconds{route}`.
    pub latency: HistogramVec,
    /// `strangler_legacy_errors_total{route,reason}`: connect failures and timeouts.
    pub errors: IntCounterVec,
}

/// The Kafka producer.
#[derive(Clone)]
pub struct PublishMetrics {
    /// `strangler_events_published_total{route}`: acknowledged by the broker.
    pub published: IntCounterVec,
    /// `strangler_events_failed_total{route,reason}`.
    pub failed: IntCounterVec,
    /// `strangler_producer_queue_depth`: messages waiting in librdkafka, refreshed at each scrape.
    pub queue_depth: IntGauge,
    /// `strangler_records_failed_total{kind}`: outcome and parity records Kafka did not take.
    pub records_failed: IntCounterVec,
    /// `strangler_duplicates_total{route}`: deliveries seen before, not published again.
    pub duplicates: IntCounterVec,
    /// `strangler_dedupe_entries`: delivery ids in the dedupe window, refreshed at each scrape.
    pub dedupe_entries: IntGauge,
    /// `strangler_events_dropped_total{route,reason}`: accepted events that will never reach Kafka.
    pub dropped: IntCounterVec,
    /// `strangler_events_spooled_total{route,reason}`: events written to the spool.
    pub spooled: IntCounterVec,
    /// `strangler_dead_letters_total{route,reason}`: events Kafka refused for good, on the dead-letter topic.
    pub dead_letters: IntCounterVec,
    /// `strangler_spool_replayed_total{result}`: spooled events settled by replay.
    pub replayed: IntCounterVec,
    /// `strangler_spool_bytes`, `strangler_spool_records`, `strangler_spool_oldest_age_seconds`.
    pub spool_bytes: IntGauge,
    pub spool_records: IntGauge,
    pub spool_oldest_age: Gauge,
    /// `strangler_spool_torn_tails_total`: damaged spool tails found and truncated at start-up.
    pub torn_tails: IntCounter,
    /// `strangler_kafka_up`: 0 while librdkafka reports every broker down.
    pub kafka_up: IntGauge,
    /// `strangler_producer_recreated_total`: producers replaced after a fatal error.
    pub recreated: IntCounter,
    /// `strangler_topics_ready`: 1 once start-up found or created every topic strangler uses.
    pub topics_ready: IntGauge,
    /// `strangler_topic_create_failures_total`: background attempts to create the topics that failed.
    pub topic_create_failures: IntCounter,
}
