//! Metrics of consumer lag: per group and topic (and partition with `lag.per_partition`), and
//! the lag monitor's failed refreshes per group.
//!
//! The gauges' label set depends on `lag.per_partition`, known once the file is read, so they are
//! registered by [`LagMetrics::configure`] at start-up, not by [`LagMetrics::new`].

use std::sync::{Arc, OnceLock};

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Registered at start-up; the gauges once the configured groups are known.
#[derive(Clone)]
pub struct LagMetrics {
    registry: Registry,
    /// `strangler_consumer_lag_refresh_errors_total{group}`: refreshes of a group that failed.
    pub refresh_errors: IntCounterVec,
    gauges: Arc<OnceLock<Gauges>>,
}

struct Gauges {
    per_partition: bool,
    /// `strangler_consumer_lag_records{group,topic[,partition]}`.
    records: IntGaugeVec,
    /// `strangler_consumer_lag_max_partition_records{group,topic[,partition]}`.
    max_partition: IntGaugeVec,
    /// `strangler_consumer_lag_seconds{group,topic[,partition]}`.
    seconds: GaugeVec,
}

/// One partition's figures, for [`LagMetrics::observe`] with `per_partition`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartitionFigures {
    pub partition: i32,
    pub lag_records: i64,
    pub lag_seconds: f64,
}

impl LagMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let refresh_errors = IntCounterVec::new(
            Opts::new(
                "strangler_consumer_lag_refresh_errors_total",
                "Lag refreshes of a consumer group that failed (broker unreachable, unknown topic...); the gauges keep their last values.",
            ),
            &["group"],
        )?;
        registry.register(Box::new(refresh_errors.clone()))?;
        Ok(Self { registry: registry.clone(), refresh_errors, gauges: Arc::new(OnceLock::new()) })
    }

    /// Registers the gauges (with a `partition` label when `per_partition`) and creates at zero
    /// every series known before the first refresh: each group's error counter and, without
    /// `per_partition`, each group × topic gauge. Once per process; later calls change nothing.
    pub fn configure<'a>(
        &self,
        per_partition: bool,
        groups: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> prometheus::Result<()> {
        if self.gauges.get().is_none() {
            let labels: &[&str] = if per_partition { &["group", "topic", "partition"] } else { &["group", "topic"] };
            let records = IntGaugeVec::new(
                Opts::new(
                    "strangler_consumer_lag_records",
                    "Records not yet consumed by the group (end offset minus committed offset), summed over the topic's partitions.",
                ),
                labels,
            )?;
            let max_partition = IntGaugeVec::new(
                Opts::new(
                    "strangler_consumer_lag_max_partition_records",
                    "Lag in records of the group's most lagging partition of the topic.",
                ),
                labels,
            )?;
            let seconds = GaugeVec::new(
                Opts::new(
                    "strangler_consumer_lag_seconds",
                    "Age of the oldest record the group has not consumed (now minus its timestamp), 0 when caught up.",
                ),
                labels,
            )?;
            self.registry.register(Box::new(records.clone()))?;
            self.registry.register(Box::new(max_partition.clone()))?;
            self.registry.register(Box::new(seconds.clone()))?;
            let _ = self.gauges.set(Gauges { per_partition, records, max_partition, seconds });
        }
        let g = self.gauges.get().expect("set above");
        for (group, topics) in groups {
            self.refresh_errors.with_label_values(&[group]);
            if !g.per_partition {
                for topic in topics {
                    g.records.with_label_values(&[group, topic]);
                    g.max_partition.with_label_values(&[group, topic]);
                    g.seconds.with_label_values(&[group, topic]);
                }
            }
        }
        Ok(())
    }

    /// Sets the gauges of `group` × `topic` from one refresh; a no-op before [`Self::configure`].
    pub fn observe(&self, group: &str, topic: &str, total: (i64, i64, f64), partitions: &[PartitionFigures]) {
        let Some(g) = self.gauges.get() else { return };
        if g.per_partition {
            for p in partitions {
                let id = p.partition.to_string();
                let labels = [group, topic, id.as_str()];
                g.records.with_label_values(&labels).set(p.lag_records);
                g.max_partition.with_label_values(&labels).set(p.lag_records);
                g.seconds.with_label_values(&labels).set(p.lag_seconds);
            }
        } else {
            let (records, max_partition, seconds) = total;
            g.records.with_label_values(&[group, topic]).set(records);
            g.max_partition.with_label_values(&[group, topic]).set(max_partition);
            g.seconds.with_label_values(&[group, topic]).set(seconds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(registry: &Registry) -> String {
        prometheus::TextEncoder::new().encode_to_string(&registry.gather()).unwrap()
    }

    #[test]
    fn every_group_and_topic_exists_at_zero_without_a_partition_label() {
        let registry = Registry::new();
        let m = LagMetrics::new(&registry).unwrap();
        let topics = ["a".to_string(), "b".to_string()];
        m.configure(false, [("svc", &topics[..])]).unwrap();
        let text = render(&registry);
        for topic in ["a", "b"] {
            for name in ["records", "max_partition_records", "seconds"] {
                let line = format!("strangler_consumer_lag_{name}{{group=\"svc\",topic=\"{topic}\"}} 0");
                assert!(text.contains(&line), "{line} in\n{text}");
            }
        }
        assert!(text.contains("strangler_consumer_lag_refresh_errors_total{group=\"svc\"} 0"), "{text}");
        let p = [PartitionFigures { partition: 0, lag_records: 3, lag_seconds: 1.5 }];
        m.observe("svc", "a", (3, 3, 1.5), &p);
        let text = render(&registry);
        assert!(text.contains("strangler_consumer_lag_records{group=\"svc\",topic=\"a\"} 3"), "{text}");
        assert!(text.contains("strangler_consumer_lag_seconds{group=\"svc\",topic=\"a\"} 1.5"), "{text}");
    }

    #[test]
    fn per_partition_labels_each_partition() {
        let registry = Registry::new();
        let m = LagMetrics::new(&registry).unwrap();
        let topics = ["a".to_string()];
        m.configure(true, [("svc", &topics[..])]).unwrap();
        let p = [
            PartitionFigures { partition: 0, lag_records: 2, lag_seconds: 4.0 },
            PartitionFigures { partition: 1, lag_records: 0, lag_seconds: 0.0 },
        ];
        m.observe("svc", "a", (2, 2, 4.0), &p);
        let text = render(&registry);
        assert!(text.contains("strangler_consumer_lag_records{group=\"svc\",partition=\"0\",topic=\"a\"} 2"), "{text}");
        assert!(text.contains("strangler_consumer_lag_records{group=\"svc\",partition=\"1\",topic=\"a\"} 0"), "{text}");
        assert!(!text.contains("strangler_consumer_lag_records{group=\"svc\",topic=\"a\"}"), "{text}");
    }
}
