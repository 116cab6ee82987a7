//! Metrics of the control plane: the dial in force, the guard, changes, reloads and the admin API.

use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::control::state::DialState;
use crate::route::assign::Mode;

/// The control plane's metrics. Labels: route names, token names, fixed lists.
#[derive(Clone)]
pub struct ControlMetrics {
    /// `strangler_route_share_ratio{route}`: the share of entities the new path owns in effect (0–1).
    pub share_ratio: GaugeVec,
    /// `strangler_route_mode{route,mode}`: 1 for the mode in force, 0 for the others.
    pub mode: IntGaugeVec,
    /// `strangler_route_dial_version{route}`: the version of the dial in force.
    pub version: IntGaugeVec,
    /// `strangler_guard_tripped{route}`: 1 while the guard's trip is not cleared.
    pub guard_tripped: IntGaugeVec,
    /// `strangler_route_min_parity{route}`: the route's `guard.min_parity` (0–1), for routes with
    /// a guard; set with the route table (start-up and each reload).
    pub min_parity: GaugeVec,
    /// `strangler_ready`: 1 when `/readyz` would answer ready, 0 if not; probed at each `/metrics`
    /// scrape and each `/readyz` call.
    pub ready: IntGauge,
    /// `strangler_guard_trips_total{route}`: changes that tripped the guard.
    pub guard_trips: IntCounterVec,
    /// `strangler_control_changes_total{route,by}`: changes applied, by who made them.
    pub changes: IntCounterVec,
    /// `strangler_control_records_invalid_total`: control records that could not be decoded.
    pub bad_records: IntCounter,
    /// `strangler_config_reloads_total{result}`: `ok` or `error`.
    pub reloads: IntCounterVec,
    /// `strangler_admin_requests_total{endpoint,status}`: admin API answers.
    pub requests: IntCounterVec,
    /// `strangler_admin_auth_failures_total{reason}`: `missing` or `invalid` tokens.
    pub auth_failures: IntCounterVec,
}

const MODES: [Mode; 4] = [Mode::Passthrough, Mode::Shadow, Mode::Split, Mode::Cutover];

impl ControlMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let counter = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let int_gauge = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntGaugeVec> {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let share_ratio = GaugeVec::new(
            Opts::new("strangler_route_share_ratio", "Share of entities owned by the new path in effect (0 to 1)."),
            &["route"],
        )?;
        registry.register(Box::new(share_ratio.clone()))?;
        let bad_records =
            IntCounter::new("strangler_control_records_invalid_total", "Control records that could not be decoded.")?;
        registry.register(Box::new(bad_records.clone()))?;
        let min_parity = GaugeVec::new(
            Opts::new("strangler_route_min_parity", "The route's guard.min_parity: parity below it trips the guard (0 to 1)."),
            &["route"],
        )?;
        registry.register(Box::new(min_parity.clone()))?;
        let ready = IntGauge::new("strangler_ready", "1 when /readyz would answer ready (200), 0 if not.")?;
        registry.register(Box::new(ready.clone()))?;
        Ok(Self {
            min_parity,
            ready,
            share_ratio,
            mode: int_gauge("strangler_route_mode", "1 for the route's mode in force, 0 for the others.", &["route", "mode"])?,
            version: int_gauge("strangler_route_dial_version", "Version of the route's dial in force.", &["route"])?,
            guard_tripped: int_gauge("strangler_guard_tripped", "1 while the route's guard trip is not cleared.", &["route"])?,
            guard_trips: counter("strangler_guard_trips_total", "Times the route's guard tripped.", &["route"])?,
            changes: counter("strangler_control_changes_total", "Dial changes applied, by route and who.", &["route", "by"])?,
            bad_records,
            reloads: counter("strangler_config_reloads_total", "Configuration reloads, by result.", &["result"])?,
            requests: counter(
                "strangler_admin_requests_total",
                "Admin API answers, by endpoint and status.",
                &["endpoint", "status"],
            )?,
            auth_failures: counter(
                "strangler_admin_auth_failures_total",
                "Admin API calls refused for a missing or wrong token.",
                &["reason"],
            )?,
        })
    }

    /// Sets the dial gauges of `route` from `state`.
    pub fn observe(&self, route: &str, state: &DialState) {
        self.share_ratio.with_label_values(&[route]).set(state.effective_share().percent() / 100.0);
        for m in MODES {
            self.mode.with_label_values(&[route, m.as_str()]).set(i64::from(m == state.mode));
        }
        self.version.with_label_values(&[route]).set(i64::try_from(state.version).unwrap_or(i64::MAX));
        self.guard_tripped.with_label_values(&[route]).set(i64::from(state.guard_tripped));
    }
}
