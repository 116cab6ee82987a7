//! Each route's publish counters (`strangler_events_published_total{route}` and the rest), looked
//! up by label once per route name and then held, so an event costs one map read, not one label
//! lookup per counter it touches.

use std::sync::Arc;

use prometheus::{IntCounter, IntCounterVec};

use super::failure::{DropReason, FailReason, PERMANENT_REASONS};
use crate::telemetry::by_name::ByName;
use crate::telemetry::skew::{RouteSkew, SkewMetrics};
use crate::telemetry::PublishMetrics;

/// One route's publish counters.
pub struct RouteCounters {
    pub name: Arc<str>,
    /// `strangler_events_published_total{route}`.
    pub published: IntCounter,
    /// `strangler_duplicates_total{route}`.
    pub duplicates: IntCounter,
    /// Where its events land and their keys (`strangler_partition_*`, the hot-keys sketch).
    pub skew: Arc<RouteSkew>,
    failed: [IntCounter; FailReason::ALL.len()],
    spooled: [IntCounter; FailReason::ALL.len()],
    dropped: [IntCounter; DropReason::ALL.len()],
    dead_letters: [IntCounter; PERMANENT_REASONS.len()],
    /// For a dead-letter reason outside [`PERMANENT_REASONS`]: `contract` (a contract's dead letter).
    dead_letters_vec: IntCounterVec,
}

impl RouteCounters {
    fn new(m: &PublishMetrics, skew: &SkewMetrics, route: &str) -> Self {
        Self {
            name: route.into(),
            published: m.published.with_label_values(&[route]),
            duplicates: m.duplicates.with_label_values(&[route]),
            skew: skew.route(route),
            failed: FailReason::ALL.map(|r| m.failed.with_label_values(&[route, r.as_str()])),
            spooled: FailReason::ALL.map(|r| m.spooled.with_label_values(&[route, r.as_str()])),
            dropped: DropReason::ALL.map(|r| m.dropped.with_label_values(&[route, r.as_str()])),
            dead_letters: PERMANENT_REASONS.map(|r| m.dead_letters.with_label_values(&[route, r])),
            dead_letters_vec: m.dead_letters.clone(),
        }
    }

    /// `strangler_events_failed_total{route,reason}`.
    pub fn failed(&self, reason: FailReason) -> &IntCounter {
        &self.failed[reason as usize]
    }

    /// `strangler_events_spooled_total{route,reason}`.
    pub fn spooled(&self, reason: FailReason) -> &IntCounter {
        &self.spooled[reason as usize]
    }

    /// `strangler_events_dropped_total{route,reason}`.
    pub fn dropped(&self, reason: DropReason) -> &IntCounter {
        &self.dropped[reason as usize]
    }

    /// `strangler_dead_letters_total{route,reason}`.
    pub fn dead_lettered(&self, reason: &str) {
        match PERMANENT_REASONS.iter().position(|r| *r == reason) {
            Some(i) => self.dead_letters[i].inc(),
            None => self.dead_letters_vec.with_label_values(&[&self.name, reason]).inc(),
        }
    }
}

/// The counters of every route that published so far, built on first use.
pub struct ByRoute {
    metrics: PublishMetrics,
    skew: SkewMetrics,
    built: ByName<RouteCounters>,
}

impl ByRoute {
    pub fn new(metrics: PublishMetrics, skew: SkewMetrics) -> Self {
        Self { metrics, skew, built: ByName::default() }
    }

    /// The counters of `route`.
    pub fn get(&self, route: &str) -> Arc<RouteCounters> {
        self.built.get_or_build(route, || RouteCounters::new(&self.metrics, &self.skew, route))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Metrics;

    #[test]
    fn reasons_index_their_own_series() {
        for (i, r) in FailReason::ALL.into_iter().enumerate() {
            assert_eq!(r as usize, i, "{r:?}");
        }
        for (i, r) in DropReason::ALL.into_iter().enumerate() {
            assert_eq!(r as usize, i, "{r:?}");
        }
        let metrics = Metrics::new().unwrap();
        let routes = ByRoute::new(metrics.publish.clone(), metrics.skew.clone());
        let orders = routes.get("orders");
        assert!(Arc::ptr_eq(&orders, &routes.get("orders")), "built once");
        orders.failed(FailReason::Purged).inc();
        orders.spooled(FailReason::KafkaDown).inc();
        orders.dropped(DropReason::SpoolFull).inc();
        orders.dead_lettered("not_authorized");
        orders.published.inc();
        routes.get("refunds").published.inc_by(2);
        let m = &metrics.publish;
        assert_eq!(m.failed.with_label_values(&["orders", "purged"]).get(), 1);
        assert_eq!(m.failed.with_label_values(&["orders", "queue_full"]).get(), 0);
        assert_eq!(m.spooled.with_label_values(&["orders", "kafka_down"]).get(), 1);
        assert_eq!(m.dropped.with_label_values(&["orders", "spool_full"]).get(), 1);
        assert_eq!(m.dead_letters.with_label_values(&["orders", "not_authorized"]).get(), 1);
        assert_eq!(m.published.with_label_values(&["orders"]).get(), 1);
        assert_eq!(m.published.with_label_values(&["refunds"]).get(), 2);
    }
}
