//! Metrics of event contracts at the edge: `strangler_contract_violations_total{route,type}`, and
//! the latest violations per route that the admin API shows beside it.
//!
//! `type` is bounded by configuration: the type key of the schema that judged the event (`*` for
//! the route-level schema), never a value taken from the request.

use std::sync::Arc;

use prometheus::{IntCounterVec, Opts, Registry};

use crate::contract::samples::{Sample, Samples};
use crate::route::RouteTable;

/// The `reason` of `strangler_dead_letters_total` and `strangler_fallbacks_total` for an event
/// that failed a `dead_letter` contract.
pub const CONTRACT_REASON: &str = "contract";

#[derive(Clone)]
pub struct ContractMetrics {
    /// `strangler_contract_violations_total{route,type}`.
    pub violations: IntCounterVec,
    /// The latest invalid events per route, this replica since start.
    pub samples: Arc<Samples>,
}

impl ContractMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let violations = IntCounterVec::new(
            Opts::new(
                "strangler_contract_violations_total",
                "Events that failed their route's contract, by route and contract type key (* for the route-level schema).",
            ),
            &["route", "type"],
        )?;
        registry.register(Box::new(violations.clone()))?;
        Ok(Self { violations, samples: Arc::default() })
    }

    /// Creates, at zero, the series of every schema of every route's contract in `table`.
    pub fn init(&self, table: &RouteTable) {
        for route in table.iter() {
            for (key, _) in route.contract.iter().flat_map(|c| c.schemas()) {
                self.violations.with_label_values(&[&route.name, key]);
            }
        }
    }

    /// Counts one violation and keeps its sample.
    pub fn violated(&self, route: &str, type_key: &str, sample: Sample) {
        self.violations.with_label_values(&[route, type_key]).inc();
        self.samples.record(route, sample);
    }
}
