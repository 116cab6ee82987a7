//! Telemetry: the Prometheus registry with one metrics struct per stage, and tracing set-up.
//!
//! Labels are bounded: route names (from config, plus `_unmatched`), status codes, outcomes and
//! reasons from fixed lists. Never an event id or a raw path.

pub mod by_name;
pub mod contract;
pub mod control;
mod families;
pub mod lag;
pub mod logging;
pub mod readiness;
pub mod route;
pub mod skew;
pub mod tls;
mod zero;

pub use control::ControlMetrics;
pub use families::{CompareMetrics, IngressMetrics, LegacyMetrics, PublishMetrics, RoutingMetrics, VerifyMetrics};
pub use route::{ByRoute, RouteMetrics};

use std::sync::Arc;

use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Route label for requests that matched no route and passed straight through.
pub const UNMATCHED: &str = "_unmatched";

/// Latency buckets in seconds: 1 ms to 30 s.
const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// All stages' metrics, registered into one registry.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub ingress: IngressMetrics,
    pub verify: VerifyMetrics,
    pub legacy: LegacyMetrics,
    pub publish: PublishMetrics,
    pub routing: RoutingMetrics,
    pub compare: CompareMetrics,
    pub control: ControlMetrics,
    /// Each route's request-path handles, resolved once per route.
    pub routes: Arc<ByRoute>,
    /// TLS at the listeners.
    pub tls: tls::TlsMetrics,
    /// Event contracts at the edge: violations and their latest samples.
    pub contract: contract::ContractMetrics,
    /// Key skew per route: events per partition, skew ratio, hot keys.
    pub skew: skew::SkewMetrics,
    /// Consumer lag of the groups in `[lag]`.
    pub lag: lag::LagMetrics,
}

impl Metrics {
    /// Creates every metric and registers it into a fresh registry.
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let histogram = |name: &str, help: &str| -> prometheus::Result<HistogramVec> {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()), &["route"])?;
            registry.register(Box::new(h.clone()))?;
            Ok(h)
        };
        let request_latency = HistogramVec::new(
            HistogramOpts::new(
                "strangler_request_duration_seconds",
                "Time from request head to response head, by route and owner (new: the new path answered; legacy: everything else).",
            )
            .buckets(BUCKETS.to_vec()),
            &["route", "owner"],
        )?;
        registry.register(Box::new(request_latency.clone()))?;
        let legacy_latency = histogram("strangler_legacy_duration_seconds", "Time the monolith took to answer, by route.")?;
        let ingress = IngressMetrics {
            requests: counter(
                "strangler_requests_total",
                "Requests answered, by route, status and outcome.",
                &["route", "status", "outcome"],
            )?,
            latency: request_latency,
            budget_exhausted: counter(
                "strangler_body_budget_exhausted_total",
                "Matched requests answered 503 body_budget_exhausted, their bodies unread.",
                &["route"],
            )?,
        };
        let verify = VerifyMetrics {
            failures: counter(
                "strangler_signature_failures_total",
                "Signature checks that failed, by route, reason and mode.",
                &["route", "reason", "mode"],
            )?,
        };
        let legacy = LegacyMetrics {
            latency: legacy_latency,
            errors: counter(
                "strangler_legacy_errors_total",
                "Calls to the monolith that got no answer, by route and reason.",
                &["route", "reason"],
            )?,
        };
        let int_gauge = |name: &str, help: &str| -> prometheus::Result<IntGauge> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let float_gauge = |name: &str, help: &str| -> prometheus::Result<Gauge> {
            let g = Gauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let int_counter = |name: &str, help: &str| -> prometheus::Result<IntCounter> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let queue_depth =
            IntGauge::new("strangler_producer_queue_depth", "Messages queued in the Kafka producer, not yet acknowledged.")?;
        registry.register(Box::new(queue_depth.clone()))?;
        let dedupe_entries = IntGauge::new("strangler_dedupe_entries", "Delivery ids remembered in the dedupe window.")?;
        registry.register(Box::new(dedupe_entries.clone()))?;
        let publish = PublishMetrics {
            published: counter("strangler_events_published_total", "Events acknowledged by Kafka, by route.", &["route"])?,
            failed: counter(
                "strangler_events_failed_total",
                "Events Kafka did not take, by route and reason.",
                &["route", "reason"],
            )?,
            queue_depth,
            records_failed: counter(
                "strangler_records_failed_total",
                "Outcome and parity records Kafka did not take, by kind.",
                &["kind"],
            )?,
            duplicates: counter(
                "strangler_duplicates_total",
                "Deliveries seen before within the dedupe window, not published again.",
                &["route"],
            )?,
            dedupe_entries,
            dropped: counter(
                "strangler_events_dropped_total",
                "Accepted events that will never reach Kafka, by route and reason.",
                &["route", "reason"],
            )?,
            spooled: counter(
                "strangler_events_spooled_total",
                "Events written to the spool, by route and reason.",
                &["route", "reason"],
            )?,
            dead_letters: counter(
                "strangler_dead_letters_total",
                "Events Kafka refused for good, written to the dead-letter topic, by route and reason.",
                &["route", "reason"],
            )?,
            replayed: counter("strangler_spool_replayed_total", "Spooled events settled by replay, by result.", &["result"])?,
            spool_bytes: int_gauge("strangler_spool_bytes", "Bytes of spool segments on disk.")?,
            spool_records: int_gauge("strangler_spool_records", "Events in the spool waiting for Kafka.")?,
            spool_oldest_age: float_gauge("strangler_spool_oldest_age_seconds", "Age of the oldest event in the spool.")?,
            torn_tails: int_counter("strangler_spool_torn_tails_total", "Damaged spool tails found and truncated at start-up.")?,
            kafka_up: int_gauge(
                "strangler_kafka_up",
                "1 when events can be published: topics exist and the producer does not report every broker down.",
            )?,
            recreated: int_counter("strangler_producer_recreated_total", "Producers replaced after a fatal librdkafka error.")?,
            topics_ready: int_gauge("strangler_topics_ready", "1 once every topic strangler uses was found or created.")?,
            topic_create_failures: int_counter(
                "strangler_topic_create_failures_total",
                "Attempts to create the topics (in the background, Kafka being unreachable at start-up) that failed.",
            )?,
        };
        let gauge = |name: &str, help: &str| -> prometheus::Result<GaugeVec> {
            let g = GaugeVec::new(Opts::new(name, help), &["route"])?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let routing = RoutingMetrics {
            assignments: counter("strangler_assignments_total", "Matched requests by route and owner.", &["route", "owner"])?,
            fallbacks: counter(
                "strangler_fallbacks_total",
                "New-owned requests forwarded to the monolith instead, by reason.",
                &["route", "reason"],
            )?,
            outcome_timeouts: counter(
                "strangler_outcome_timeouts_total",
                "Awaited new outcomes that did not arrive in time.",
                &["route"],
            )?,
            share: gauge("strangler_route_share_percent", "Percent of entities owned by the new path.")?,
            refusals: counter(
                "strangler_route_refusals_total",
                "Requests near a route refused: ambiguous_path (400) or method_not_allowed (405).",
                &["route", "reason"],
            )?,
        };
        let compare = CompareMetrics {
            parity: counter(
                "strangler_parity_total",
                "Comparisons of legacy and new outcomes, by route and result.",
                &["route", "result"],
            )?,
            ratio: gauge("strangler_parity_ratio", "Share of matches among the last comparator.parity_window results.")?,
            new_path: counter(
                "strangler_new_path_total",
                "Live (new-owned) events by the new path's result: ok, error (status 5xx) or missing.",
                &["route", "result"],
            )?,
            outcomes: counter(
                "strangler_outcomes_total",
                "Outcome records read by the comparator.",
                &["route", "source", "mode"],
            )?,
            dropped: counter("strangler_outcomes_dropped_total", "Outcome records not compared, by reason.", &["reason"])?,
            evicted: counter(
                "strangler_comparator_evicted_total",
                "Waiting events decided before their window closed because the comparator's bounds were reached.",
                &["route"],
            )?,
            pending: {
                let g = IntGaugeVec::new(
                    Opts::new("strangler_comparator_pending", "Events waiting for their second outcome."),
                    &["route"],
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            pending_bytes: int_gauge(
                "strangler_comparator_pending_bytes",
                "Bytes accounted to the comparator's waiting events.",
            )?,
        };
        let control = ControlMetrics::new(&registry)?;
        let routes = Arc::new(ByRoute::new(route::Vecs::new(&ingress, &legacy, &verify, &routing)));
        let tls = tls::TlsMetrics::new(&registry)?;
        let contract = contract::ContractMetrics::new(&registry)?;
        let skew = skew::SkewMetrics::new(&registry)?;
        let lag = lag::LagMetrics::new(&registry)?;
        Ok(Self { registry, ingress, verify, legacy, publish, routing, compare, control, routes, tls, contract, skew, lag })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let encoder = prometheus::TextEncoder::new();
        if let Err(e) = encoder.encode_utf8(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}
