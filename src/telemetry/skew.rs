//! Key skew per route, counted where Kafka acknowledges an event: events per partition
//! (`strangler_partition_events_total{route,partition}`), the skew ratio over the last 5 minutes
//! (`strangler_partition_skew_ratio{route}`, computed at scrape time) and the hot keys of the
//! last 5 to 10 minutes from space-saving sketches (the admin API only: keys are never metric
//! labels).

mod recent;
mod sketch;
mod window;

pub use sketch::{Counted, CAPACITY};
pub use window::WINDOW_LABEL;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounter, IntCounterVec, Opts, Registry};

use recent::Recent;
use window::Window;

/// How soon a failed or fruitless partition-count lookup may be tried again.
const REFRESH_BACKOFF: Duration = Duration::from_secs(10);

/// The skew families and every route's skew state.
#[derive(Clone)]
pub struct SkewMetrics {
    board: Arc<Board>,
}

struct Board {
    events: IntCounterVec,
    ratio: GaugeVec,
    routes: Mutex<BTreeMap<String, Arc<RouteSkew>>>,
}

impl Board {
    fn routes(&self) -> MutexGuard<'_, BTreeMap<String, Arc<RouteSkew>>> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Sets each route's ratio from its window as Prometheus scrapes, so no event pays for it.
struct RatioAtScrape(Arc<Board>);

impl Collector for RatioAtScrape {
    fn desc(&self) -> Vec<&Desc> {
        self.0.ratio.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        for (name, route) in self.0.routes().iter() {
            self.0.ratio.with_label_values(&[name]).set(route.view().ratio.unwrap_or(0.0));
        }
        self.0.ratio.collect()
    }
}

impl SkewMetrics {
    /// Creates the families and registers them into `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let events = IntCounterVec::new(
            Opts::new(
                "strangler_partition_events_total",
                "Events Kafka acknowledged, by route and the partition they landed on.",
            ),
            &["route", "partition"],
        )?;
        registry.register(Box::new(events.clone()))?;
        let ratio = GaugeVec::new(
            Opts::new(
                "strangler_partition_skew_ratio",
                "Events on the busiest partition of the route's topic over the mean per partition, last 5 minutes; 0 without events.",
            ),
            &["route"],
        )?;
        let board = Arc::new(Board { events, ratio, routes: Mutex::default() });
        registry.register(Box::new(RatioAtScrape(board.clone())))?;
        Ok(Self { board })
    }

    /// The skew state of `route`, built (with its ratio series at zero) on first use.
    pub fn route(&self, route: &str) -> Arc<RouteSkew> {
        let mut routes = self.board.routes();
        routes
            .entry(route.to_string())
            .or_insert_with(|| {
                self.board.ratio.with_label_values(&[route]).set(0.0);
                Arc::new(RouteSkew::new(route, self.board.events.clone()))
            })
            .clone()
    }
}

/// One route's skew: the sketch, the window and its partition counters.
pub struct RouteSkew {
    name: String,
    events: IntCounterVec,
    start: Instant,
    /// `start` on the wall clock, for [`HotKeys::since`].
    started_at: SystemTime,
    /// The topic's partition count from the producer's metadata; 0 until known.
    partitions: AtomicUsize,
    /// Millis since `start` before which no partition-count lookup is asked for.
    refresh_after_ms: AtomicU64,
    state: Mutex<State>,
}

struct State {
    keys: Recent,
    window: Window,
    /// `strangler_partition_events_total` handles, by partition, made when first seen.
    counters: Vec<IntCounter>,
}

/// One route's events per partition over the window.
#[derive(Debug, Clone, PartialEq)]
pub struct SkewView {
    pub ratio: Option<f64>,
    pub events: u64,
    /// Events per partition: every partition of the topic, idle ones at 0.
    pub partitions: Vec<u64>,
}

/// The sketches' answer: the hot keys since `since` (5 to 10 minutes ago, or start-up).
#[derive(Debug, Clone)]
pub struct HotKeys {
    pub capacity: usize,
    pub since: SystemTime,
    pub events: u64,
    pub keys: Vec<Counted>,
}

impl RouteSkew {
    fn new(name: &str, events: IntCounterVec) -> Self {
        Self {
            name: name.to_string(),
            events,
            start: Instant::now(),
            started_at: SystemTime::now(),
            partitions: AtomicUsize::new(0),
            refresh_after_ms: AtomicU64::new(0),
            state: Mutex::new(State { keys: Recent::new(CAPACITY), window: Window::default(), counters: Vec::new() }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tick(&self) -> u64 {
        self.start.elapsed().as_secs() / window::BUCKET.as_secs()
    }

    /// Counts an event Kafka acknowledged on `partition` with `key`. True when the caller should
    /// look up the topic's partition count (unknown, or lower than this partition) and
    /// [`RouteSkew::set_partitions`]; at most once per 10 s.
    pub fn landed(&self, partition: i32, key: &str) -> bool {
        let tick = self.tick();
        let mut st = self.state();
        st.keys.observe(tick, key);
        let Ok(p) = usize::try_from(partition) else { return false };
        st.window.record(tick, p);
        while st.counters.len() <= p {
            let label = st.counters.len().to_string();
            st.counters.push(self.events.with_label_values(&[&self.name, &label]));
        }
        st.counters[p].inc();
        drop(st);
        if p < self.partitions.load(Ordering::Relaxed) {
            return false;
        }
        let now = self.start.elapsed().as_millis() as u64;
        let after = self.refresh_after_ms.load(Ordering::Relaxed);
        now >= after
            && self
                .refresh_after_ms
                .compare_exchange(after, now + REFRESH_BACKOFF.as_millis() as u64, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// The topic's partition count, from metadata.
    pub fn set_partitions(&self, n: usize) {
        self.partitions.fetch_max(n, Ordering::Relaxed);
    }

    /// Events per partition over the last 5 minutes, over every partition of the topic (the
    /// metadata's count, or the partitions seen when it is not known).
    pub fn view(&self) -> SkewView {
        let partitions = self.partitions.load(Ordering::Relaxed);
        let counts = self.state().window.per_partition(self.tick(), partitions);
        SkewView { ratio: window::ratio(&counts), events: counts.iter().sum(), partitions: counts }
    }

    /// The hot keys of this 5-minute epoch and the one before, highest count first.
    pub fn hot_keys(&self) -> HotKeys {
        let st = self.state();
        let top = st.keys.top(self.tick());
        let since = self.started_at + window::BUCKET * u32::try_from(top.since_tick).unwrap_or(u32::MAX);
        HotKeys { capacity: st.keys.capacity(), since, events: top.events, keys: top.keys }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_partitions_keys_and_the_ratio_over_the_topics_partitions() {
        let registry = Registry::new();
        let skew = SkewMetrics::new(&registry).unwrap();
        let route = skew.route("orders");
        assert!(Arc::ptr_eq(&route, &skew.route("orders")), "built once");
        assert_eq!(route.view(), SkewView { ratio: None, events: 0, partitions: vec![] });
        assert!(route.landed(1, "hot"), "partition count unknown: look it up");
        assert!(!route.landed(1, "hot"), "not again within the back-off");
        route.set_partitions(4);
        for _ in 0..7 {
            assert!(!route.landed(1, "hot"));
        }
        route.landed(3, "cold");
        let view = route.view();
        assert_eq!(view.partitions, [0, 9, 0, 1]);
        assert_eq!(view.events, 10);
        assert_eq!(view.ratio, Some(3.6));
        let keys = route.hot_keys();
        assert_eq!((keys.capacity, keys.events), (CAPACITY, 10));
        assert_eq!(keys.keys[0], Counted { key: "hot".into(), count: 9, error: 0 });
        assert_eq!(skew.board.events.with_label_values(&["orders", "1"]).get(), 9);
        let text = prometheus::TextEncoder::new().encode_to_string(&registry.gather()).unwrap();
        assert!(text.contains("strangler_partition_skew_ratio{route=\"orders\"} 3.6"), "{text}");
        assert!(!text.contains("hot"), "keys never become labels");
    }

    #[test]
    fn a_route_without_events_shows_ratio_zero() {
        let registry = Registry::new();
        let skew = SkewMetrics::new(&registry).unwrap();
        skew.route("idle");
        let text = prometheus::TextEncoder::new().encode_to_string(&registry.gather()).unwrap();
        assert!(text.contains("strangler_partition_skew_ratio{route=\"idle\"} 0"), "{text}");
    }
}
