//! Each route's request-path metric handles ([`RouteMetrics`]), resolved by label once per route
//! and then held, so a request touches its series directly instead of looking each one up by
//! label strings; the route's name travels with them as an `Arc<str>`.
//!
//! Only series that [`super::Metrics::init_routes`] creates at zero anyway are resolved up front;
//! `strangler_requests_total{route,status,outcome}`, whose status varies, is resolved on first use
//! of each (status, outcome) and kept in a small per-route cache, so `/metrics` shows exactly the
//! series it showed when every request looked them up.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use http::StatusCode;
use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec};

use super::by_name::ByName;
use super::{IngressMetrics, LegacyMetrics, RoutingMetrics, VerifyMetrics, UNMATCHED};
use crate::event::Owner;
use crate::legacy::LegacyError;
use crate::publish::failure::FailReason;
use crate::verify::{Mode as VerifyMode, VerifyError};

/// The most (status, outcome) pairs a route caches; past it they are looked up by label.
const CACHED_ANSWERS: usize = 32;

/// Reasons of `strangler_route_refusals_total`, as [`crate::ingress::error::ProxyError::code`] gives them.
const REFUSALS: [&str; 2] = ["ambiguous_path", "method_not_allowed"];

/// One route's handles (or `_unmatched`'s, which has only the passthrough series).
pub struct RouteMetrics {
    /// The route label.
    pub name: Arc<str>,
    /// `strangler_request_duration_seconds{route,owner="legacy"}`: answers the new path did not give.
    pub latency: Histogram,
    /// `strangler_request_duration_seconds{route,owner="new"}`: answers the new path gave (split,
    /// cutover); `None` for `_unmatched`.
    pub new_latency: Option<Histogram>,
    /// `strangler_legacy_duration_seconds{route}`.
    pub legacy_latency: Histogram,
    legacy_errors: [IntCounter; LegacyError::REASONS.len()],
    /// `strangler_requests_total{route,status,outcome}` seen so far.
    answers: ArcSwap<Vec<(StatusCode, &'static str, IntCounter)>>,
    /// Serialises adding to `answers` (rare); reads never take it.
    adding: Mutex<()>,
    matched: Option<Matched>,
    vecs: Vecs,
}

/// The series only a configured route has.
struct Matched {
    verify_failures: [[IntCounter; VerifyError::REASONS.len()]; VerifyMode::FAILING.len()],
    assignments: [IntCounter; Owner::ALL.len()],
    refusals: [IntCounter; REFUSALS.len()],
    fallbacks: [IntCounter; FailReason::ALL.len()],
    outcome_timeouts: IntCounter,
}

/// The families, for a label outside the fixed lists (none today) and for new answers.
#[derive(Clone)]
pub(super) struct Vecs {
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub legacy_latency: HistogramVec,
    pub legacy_errors: IntCounterVec,
    pub verify_failures: IntCounterVec,
    pub assignments: IntCounterVec,
    pub refusals: IntCounterVec,
    pub fallbacks: IntCounterVec,
    pub outcome_timeouts: IntCounterVec,
}

impl Vecs {
    pub(super) fn new(
        ingress: &IngressMetrics,
        legacy: &LegacyMetrics,
        verify: &VerifyMetrics,
        routing: &RoutingMetrics,
    ) -> Self {
        Self {
            requests: ingress.requests.clone(),
            latency: ingress.latency.clone(),
            legacy_latency: legacy.latency.clone(),
            legacy_errors: legacy.errors.clone(),
            verify_failures: verify.failures.clone(),
            assignments: routing.assignments.clone(),
            refusals: routing.refusals.clone(),
            fallbacks: routing.fallbacks.clone(),
            outcome_timeouts: routing.outcome_timeouts.clone(),
        }
    }
}

/// The handle of `label` among `labels`, else `label`'s series looked up in `vec` under `route`.
fn pick(handles: &[IntCounter], labels: &[&str], label: &str, vec: &IntCounterVec, route: &[&str]) -> IntCounter {
    match labels.iter().position(|l| *l == label) {
        Some(i) => handles[i].clone(),
        None => vec.with_label_values(&[route, &[label]].concat()),
    }
}

impl RouteMetrics {
    pub(super) fn new(v: &Vecs, route: &str) -> Self {
        let matched = (route != UNMATCHED).then(|| Matched {
            verify_failures: VerifyMode::FAILING
                .map(|m| VerifyError::REASONS.map(|r| v.verify_failures.with_label_values(&[route, r, m.as_str()]))),
            assignments: Owner::ALL.map(|o| v.assignments.with_label_values(&[route, o.as_str()])),
            refusals: REFUSALS.map(|r| v.refusals.with_label_values(&[route, r])),
            fallbacks: FailReason::ALL.map(|r| v.fallbacks.with_label_values(&[route, r.as_str()])),
            outcome_timeouts: v.outcome_timeouts.with_label_values(&[route]),
        });
        Self {
            name: route.into(),
            latency: v.latency.with_label_values(&[route, "legacy"]),
            new_latency: (route != UNMATCHED).then(|| v.latency.with_label_values(&[route, "new"])),
            legacy_latency: v.legacy_latency.with_label_values(&[route]),
            legacy_errors: LegacyError::REASONS.map(|r| v.legacy_errors.with_label_values(&[route, r])),
            answers: ArcSwap::default(),
            adding: Mutex::new(()),
            matched,
            vecs: v.clone(),
        }
    }

    /// Counts one answer on `strangler_requests_total{route,status,outcome}`.
    pub fn answered(&self, status: StatusCode, outcome: &'static str) {
        if let Some((_, _, c)) = self.answers.load().iter().find(|(s, o, _)| *s == status && *o == outcome) {
            c.inc();
            return;
        }
        let counter = self.vecs.requests.with_label_values(&[&self.name, status.as_str(), outcome]);
        counter.inc();
        let _adding = self.adding.lock().unwrap_or_else(|p| p.into_inner());
        // A copy, so no read guard is held across the store.
        let mut more = Vec::clone(&self.answers.load());
        if more.len() < CACHED_ANSWERS && !more.iter().any(|(s, o, _)| *s == status && *o == outcome) {
            more.push((status, outcome, counter));
            self.answers.store(Arc::new(more));
        }
    }

    /// `strangler_legacy_errors_total{route,reason}`.
    pub fn legacy_error(&self, reason: &str) {
        pick(&self.legacy_errors, &LegacyError::REASONS, reason, &self.vecs.legacy_errors, &[&self.name]).inc();
    }

    /// `strangler_signature_failures_total{route,reason,mode}`.
    pub fn verify_failure(&self, reason: &str, mode: VerifyMode) {
        match (&self.matched, VerifyMode::FAILING.iter().position(|m| *m == mode)) {
            (Some(m), Some(i)) => {
                pick(&m.verify_failures[i], &VerifyError::REASONS, reason, &self.vecs.verify_failures, &[&self.name]).inc()
            }
            _ => self.vecs.verify_failures.with_label_values(&[&self.name, reason, mode.as_str()]).inc(),
        }
    }

    /// `strangler_assignments_total{route,owner}`.
    pub fn assigned(&self, owner: Owner) {
        match &self.matched {
            Some(m) => m.assignments[owner as usize].inc(),
            None => self.vecs.assignments.with_label_values(&[&self.name, owner.as_str()]).inc(),
        }
    }

    /// `strangler_route_refusals_total{route,reason}`.
    pub fn refused(&self, reason: &str) {
        match &self.matched {
            Some(m) => pick(&m.refusals, &REFUSALS, reason, &self.vecs.refusals, &[&self.name]).inc(),
            None => self.vecs.refusals.with_label_values(&[&self.name, reason]).inc(),
        }
    }

    /// `strangler_fallbacks_total{route,reason}`.
    pub fn fell_back(&self, reason: FailReason) {
        match &self.matched {
            Some(m) => m.fallbacks[reason as usize].inc(),
            None => self.vecs.fallbacks.with_label_values(&[&self.name, reason.as_str()]).inc(),
        }
    }

    /// `strangler_fallbacks_total{route,reason="contract"}`: a new-owned event failed a
    /// `dead_letter` contract and the monolith got the request.
    pub fn fell_back_contract(&self) {
        self.vecs.fallbacks.with_label_values(&[&self.name, super::contract::CONTRACT_REASON]).inc();
    }

    /// `strangler_outcome_timeouts_total{route}`.
    pub fn outcome_timed_out(&self) {
        match &self.matched {
            Some(m) => m.outcome_timeouts.inc(),
            None => self.vecs.outcome_timeouts.with_label_values(&[&self.name]).inc(),
        }
    }
}

/// The handles of every route, by name: built with the route table (`Metrics::init_routes`, at
/// start-up and at each reload), or on first use for a name no table listed; a reload keeps them,
/// as the series they point to outlive it.
pub struct ByRoute {
    vecs: Vecs,
    unmatched: Arc<RouteMetrics>,
    built: ByName<RouteMetrics>,
}

impl ByRoute {
    pub(super) fn new(vecs: Vecs) -> Self {
        let unmatched = Arc::new(RouteMetrics::new(&vecs, UNMATCHED));
        Self { vecs, unmatched, built: ByName::default() }
    }

    /// `_unmatched`'s handles.
    pub fn unmatched(&self) -> &Arc<RouteMetrics> {
        &self.unmatched
    }

    /// The handles of `route`.
    pub fn get(&self, route: &str) -> Arc<RouteMetrics> {
        if route == UNMATCHED {
            return self.unmatched.clone();
        }
        self.built.get_or_build(route, || RouteMetrics::new(&self.vecs, route))
    }

    #[cfg(test)]
    fn is_built(&self, route: &str) -> bool {
        self.built.contains(route)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Metrics;

    #[test]
    fn handles_count_on_the_series_labels_name_and_create_no_others() {
        let metrics = Metrics::new().unwrap();
        let before = metrics.render();
        let orders = metrics.routes.get("orders");
        assert!(Arc::ptr_eq(&orders, &metrics.routes.get("orders")), "built once");
        assert!(Arc::ptr_eq(metrics.routes.unmatched(), &metrics.routes.get(UNMATCHED)));
        for _ in 0..2 {
            orders.answered(StatusCode::OK, "forwarded");
        }
        orders.answered(StatusCode::BAD_GATEWAY, "legacy_unavailable");
        orders.assigned(Owner::New);
        orders.verify_failure("stale", VerifyMode::Observe);
        orders.legacy_error("timeout");
        orders.refused("method_not_allowed");
        orders.fell_back(FailReason::KafkaDown);
        orders.outcome_timed_out();
        orders.latency.observe(0.002);
        metrics.routes.unmatched().answered(StatusCode::OK, "forwarded");
        metrics.routes.unmatched().legacy_latency.observe(0.001);
        let requests = |r: &str, s: &str, o: &str| metrics.ingress.requests.with_label_values(&[r, s, o]).get();
        assert_eq!(requests("orders", "200", "forwarded"), 2);
        assert_eq!(requests("orders", "502", "legacy_unavailable"), 1);
        assert_eq!(requests(UNMATCHED, "200", "forwarded"), 1);
        assert_eq!(metrics.routing.assignments.with_label_values(&["orders", "new"]).get(), 1);
        assert_eq!(metrics.routing.assignments.with_label_values(&["orders", "legacy"]).get(), 0);
        assert_eq!(metrics.verify.failures.with_label_values(&["orders", "stale", "observe"]).get(), 1);
        assert_eq!(metrics.legacy.errors.with_label_values(&["orders", "timeout"]).get(), 1);
        assert_eq!(metrics.routing.refusals.with_label_values(&["orders", "method_not_allowed"]).get(), 1);
        assert_eq!(metrics.routing.fallbacks.with_label_values(&["orders", "kafka_down"]).get(), 1);
        assert_eq!(metrics.routing.outcome_timeouts.with_label_values(&["orders"]).get(), 1);
        assert_eq!(metrics.ingress.latency.with_label_values(&["orders", "legacy"]).get_sample_count(), 1);
        assert_eq!(metrics.ingress.latency.with_label_values(&["orders", "new"]).get_sample_count(), 0);
        assert_eq!(metrics.legacy.latency.with_label_values(&[UNMATCHED]).get_sample_count(), 1);
        // `_unmatched` has only the passthrough series, and an answer only its own.
        let text = metrics.render();
        assert!(!before.contains("strangler_requests_total{"), "{before}");
        assert!(!text.contains("strangler_assignments_total{owner=\"legacy\",route=\"_unmatched\"}"), "{text}");
        assert_eq!(text.matches("strangler_requests_total{").count(), 3, "{text}");
    }

    #[test]
    fn a_route_table_builds_its_routes_handles() {
        let toml = "[legacy]\nurl = \"http://127.0.0.1:9\"\n[kafka]\nbrokers = \"127.0.0.1:9\"\n[[route]]\nname = \"orders\"\n\
                    match = { path = \"/webhooks/orders\" }\ntopic = \"webhooks.orders\"\n\
                    signature = { scheme = \"stripe\", secrets_env = [\"S\"] }\n";
        let cfg = crate::config::load_str(toml, "handles.toml", &|_| Some("s".into())).unwrap();
        let table = crate::route::RouteTable::new(cfg.routes.into_iter().map(Arc::new).collect());
        let metrics = Metrics::new().unwrap();
        assert!(!metrics.routes.is_built("orders"));
        metrics.init_routes(&table);
        assert!(metrics.routes.is_built("orders"), "built with the table, before any request");
    }
}
