//! Every labelled series a route can have exists at zero from start-up (and from the reload that
//! adds the route), so `increase()` and `rate()` alerts see the first event instead of a series
//! appearing from nothing. Label values come from the same enums and constants the code counts
//! with; a value no code can produce is never created.

use super::{Metrics, UNMATCHED};
use crate::compare::comparator::DROPPED_REASONS;
use crate::compare::outcome::{EventMode, Source};
use crate::compare::record::ParityResult;
use crate::control::auth::AuthError;
use crate::control::reload::RELOAD_RESULTS;
use crate::event::Owner;
use crate::ingress::error::ProxyError;
use crate::legacy::LegacyError;
use crate::publish::failure::{DropReason, FailReason, PERMANENT_REASONS};
use crate::publish::replay::REPLAYED_RESULTS;
use crate::publish::RecordSink;
use crate::route::RouteTable;
use crate::verify::{Mode as VerifyMode, VerifyError};

impl Metrics {
    /// Creates, at zero, the series whose labels do not name a route.
    pub fn init_fixed(&self) {
        for reason in DROPPED_REASONS {
            self.compare.dropped.with_label_values(&[reason]);
        }
        for result in REPLAYED_RESULTS {
            self.publish.replayed.with_label_values(&[result]);
        }
        for kind in RecordSink::RECORD_KINDS {
            self.publish.records_failed.with_label_values(&[kind]);
        }
        for result in RELOAD_RESULTS {
            self.control.reloads.with_label_values(&[result]);
        }
        for reason in AuthError::ALL {
            self.control.auth_failures.with_label_values(&[reason.as_str()]);
        }
    }

    /// Creates, at zero, every series of every route in `table` (and of `_unmatched` where it
    /// applies). Series that exist already keep their values; a route removed by a reload keeps
    /// its series until restart.
    pub fn init_routes(&self, table: &RouteTable) {
        self.init_fixed();
        self.contract.init(table);
        for route in table.iter() {
            // The guard's threshold, for the parity alert; a reload that drops the guard drops it.
            match &route.guard {
                Some(guard) => self.control.min_parity.with_label_values(&[&route.name]).set(guard.min_parity),
                None => {
                    let _ = self.control.min_parity.remove_label_values(&[&route.name]);
                }
            }
        }
        for route in std::iter::once(UNMATCHED).chain(table.iter().map(|r| r.name.as_str())) {
            self.ingress.latency.with_label_values(&[route, "legacy"]);
            if route != UNMATCHED {
                self.ingress.latency.with_label_values(&[route, "new"]);
            }
            self.legacy.latency.with_label_values(&[route]);
            for reason in LegacyError::REASONS {
                self.legacy.errors.with_label_values(&[route, reason]);
            }
            if route != UNMATCHED {
                self.init_route(route);
                // The route's request-path handles, built with its table (at start-up and at each reload).
                self.routes.get(route);
            }
        }
    }

    fn init_route(&self, route: &str) {
        for mode in VerifyMode::FAILING {
            for reason in VerifyError::REASONS {
                self.verify.failures.with_label_values(&[route, reason, mode.as_str()]);
            }
        }
        for owner in Owner::ALL {
            self.routing.assignments.with_label_values(&[route, owner.as_str()]);
        }
        self.routing.outcome_timeouts.with_label_values(&[route]);
        self.ingress.budget_exhausted.with_label_values(&[route]);
        for refusal in [ProxyError::AmbiguousPath, ProxyError::MethodNotAllowed(http::HeaderValue::from_static(""))] {
            self.routing.refusals.with_label_values(&[route, refusal.code()]);
        }
        let p = &self.publish;
        p.published.with_label_values(&[route]);
        p.duplicates.with_label_values(&[route]);
        // The skew ratio at 0; partition series appear with the first event on each partition.
        self.skew.route(route);
        for reason in FailReason::ALL {
            p.failed.with_label_values(&[route, reason.as_str()]);
            p.spooled.with_label_values(&[route, reason.as_str()]);
            self.routing.fallbacks.with_label_values(&[route, reason.as_str()]);
        }
        for reason in DropReason::ALL {
            p.dropped.with_label_values(&[route, reason.as_str()]);
        }
        for reason in PERMANENT_REASONS.into_iter().chain([super::contract::CONTRACT_REASON]) {
            p.dead_letters.with_label_values(&[route, reason]);
        }
        self.routing.fallbacks.with_label_values(&[route, super::contract::CONTRACT_REASON]);
        for result in ParityResult::ALL {
            match result.new_path_label() {
                Some(label) => self.compare.new_path.with_label_values(&[route, label]),
                None => self.compare.parity.with_label_values(&[route, result.as_str()]),
            };
        }
        for source in Source::ALL {
            for mode in EventMode::ALL {
                self.compare.outcomes.with_label_values(&[route, source.as_str(), mode.as_str()]);
            }
        }
        self.compare.evicted.with_label_values(&[route]);
        self.compare.pending.with_label_values(&[route]);
        self.control.guard_trips.with_label_values(&[route]);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn label_lists_have_no_duplicates_and_match_what_the_code_counts() {
        let distinct = |labels: Vec<&str>| labels.iter().collect::<HashSet<_>>().len() == labels.len();
        assert!(distinct(FailReason::ALL.map(FailReason::as_str).to_vec()));
        assert!(distinct(DropReason::ALL.map(DropReason::as_str).to_vec()));
        assert!(distinct(ParityResult::ALL.map(ParityResult::as_str).to_vec()));
        assert!(distinct(PERMANENT_REASONS.to_vec()));
        let legacy = [
            LegacyError::Unavailable(String::new()),
            LegacyError::Timeout(std::time::Duration::ZERO),
            LegacyError::BodyTooLarge,
            LegacyError::Failed(String::new()),
        ];
        assert_eq!(legacy.map(|e| e.reason()), LegacyError::REASONS);
        assert_eq!(Owner::ALL.map(Owner::as_str), ["legacy", "new"]);
        assert_eq!(VerifyMode::FAILING.map(VerifyMode::as_str), ["enforce", "observe"]);
    }

    #[test]
    fn a_route_gets_every_known_series_at_zero() {
        let metrics = Metrics::new().unwrap();
        let table = RouteTable::new(Vec::new());
        metrics.init_routes(&table);
        let text = metrics.render();
        assert!(text.contains("strangler_legacy_errors_total{reason=\"timeout\",route=\"_unmatched\"} 0"), "{text}");
        assert!(!text.contains("strangler_signature_failures_total{"), "no route, no route series: {text}");
    }

    #[test]
    fn a_guarded_route_exports_its_min_parity_until_a_reload_drops_the_guard() {
        let toml = |guard: &str| {
            format!(
                "[legacy]\nurl = \"http://127.0.0.1:9\"\n[kafka]\nbrokers = \"127.0.0.1:9\"\n[[route]]\nname = \"orders\"\n\
                 match = {{ path = \"/webhooks/orders\" }}\ntopic = \"webhooks.orders\"\n\
                 signature = {{ scheme = \"github\", mode = \"off\" }}\n{guard}"
            )
        };
        let table = |guard: &str| {
            let cfg = crate::config::load_str(&toml(guard), "guard.toml", &|_| None).unwrap();
            RouteTable::new(cfg.routes.into_iter().map(std::sync::Arc::new).collect())
        };
        let metrics = Metrics::new().unwrap();
        metrics.init_routes(&table("guard = { min_parity = 0.97 }\n"));
        assert!(metrics.render().contains("strangler_route_min_parity{route=\"orders\"} 0.97"), "{}", metrics.render());
        metrics.init_routes(&table(""));
        assert!(!metrics.render().contains("strangler_route_min_parity{"), "{}", metrics.render());
    }
}
