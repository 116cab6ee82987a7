//! The latest invalid events per route (a bounded ring, this replica since start), for
//! `GET /api/routes/{name}/contract-violations`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;

use super::validate::Violation;

/// Samples kept per route.
pub const KEPT: usize = 20;

/// One event that failed its contract.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub event_id: String,
    /// The event's `ce_type`.
    #[serde(rename = "type")]
    pub ce_type: String,
    /// When strangler judged it, RFC 3339 with milliseconds.
    pub at: String,
    pub dataschema: String,
    pub errors: Vec<Violation>,
}

#[derive(Default)]
struct Kept {
    violations: u64,
    latest: VecDeque<Sample>,
}

/// Every route's count and latest samples.
#[derive(Default)]
pub struct Samples {
    by_route: Mutex<HashMap<String, Kept>>,
}

impl Samples {
    /// Counts one violation on `route` and keeps its sample, forgetting the oldest beyond [`KEPT`].
    pub fn record(&self, route: &str, sample: Sample) {
        let mut map = self.by_route.lock().unwrap_or_else(|p| p.into_inner());
        let kept = map.entry(route.to_string()).or_default();
        kept.violations += 1;
        if kept.latest.len() == KEPT {
            kept.latest.pop_back();
        }
        kept.latest.push_front(sample);
    }

    /// The route's violations since start.
    pub fn count(&self, route: &str) -> u64 {
        self.by_route.lock().unwrap_or_else(|p| p.into_inner()).get(route).map_or(0, |k| k.violations)
    }

    /// The route's violations since start and its samples, newest first.
    pub fn get(&self, route: &str) -> (u64, Vec<Sample>) {
        let map = self.by_route.lock().unwrap_or_else(|p| p.into_inner());
        map.get(route).map_or((0, Vec::new()), |k| (k.violations, k.latest.iter().cloned().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: usize) -> Sample {
        Sample { event_id: id.to_string(), ce_type: "t".into(), at: String::new(), dataschema: String::new(), errors: vec![] }
    }

    #[test]
    fn newest_first_bounded_and_per_route() {
        let s = Samples::default();
        for i in 0..25 {
            s.record("a", sample(i));
        }
        s.record("b", sample(99));
        let (n, latest) = s.get("a");
        assert_eq!(n, 25);
        assert_eq!(latest.len(), KEPT);
        assert_eq!(latest[0].event_id, "24");
        assert_eq!(latest[KEPT - 1].event_id, "5");
        assert_eq!((s.get("b").0, s.count("b"), s.count("a")), (1, 1, 25));
        assert_eq!(s.get("none").0, 0);
    }
}
