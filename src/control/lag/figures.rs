//! The lag arithmetic as pure functions: offsets and timestamps in, figures out, table-tested.

use serde::Serialize;

/// One partition of one topic, as a group sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionLag {
    pub partition: i32,
    /// The group's committed offset (the next record it will read); `null` when it has none.
    pub committed: Option<i64>,
    /// The end offset (high watermark): one past the last record.
    pub end: i64,
    pub lag_records: i64,
    pub lag_seconds: f64,
}

/// One topic of one group: its partitions and their sum, maximum and oldest age.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicLag {
    pub topic: String,
    pub lag_records: i64,
    pub max_partition_lag_records: i64,
    pub lag_seconds: f64,
    pub partitions: Vec<PartitionLag>,
}

/// Records a group has not consumed in one partition: `end − committed`; with no committed
/// offset (or one below the low watermark, its records deleted by retention), everything
/// retained: `end − low`. Never negative.
pub fn records(end: i64, low: i64, committed: Option<i64>) -> i64 {
    (end - first_unconsumed(low, committed)).max(0)
}

/// The offset of the oldest record the group has not consumed: where its lag's age is read.
pub fn first_unconsumed(low: i64, committed: Option<i64>) -> i64 {
    committed.unwrap_or(low).max(low)
}

/// Age in seconds of the oldest unconsumed record (`now − its timestamp`), 0 when nothing lags
/// or its timestamp is unknown or in the future.
pub fn seconds(lag_records: i64, now_ms: i64, oldest_timestamp_ms: Option<i64>) -> f64 {
    match oldest_timestamp_ms {
        Some(t) if lag_records > 0 => (now_ms - t).max(0) as f64 / 1000.0,
        _ => 0.0,
    }
}

impl TopicLag {
    /// A topic's figures from its partitions' (sorted by partition).
    pub fn new(topic: &str, mut partitions: Vec<PartitionLag>) -> Self {
        partitions.sort_by_key(|p| p.partition);
        Self {
            topic: topic.to_string(),
            lag_records: partitions.iter().map(|p| p.lag_records).sum(),
            max_partition_lag_records: partitions.iter().map(|p| p.lag_records).max().unwrap_or(0),
            lag_seconds: partitions.iter().map(|p| p.lag_seconds).fold(0.0, f64::max),
            partitions,
        }
    }

    /// Before the first refresh: zeros, no partitions.
    pub fn zero(topic: &str) -> Self {
        Self::new(topic, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_per_partition() {
        // (end, low, committed) -> lag
        let cases = [
            (10, 0, Some(10), 0, "caught up"),
            (10, 0, Some(7), 3, "three behind"),
            (10, 0, None, 10, "no commit: everything retained"),
            (10, 4, None, 6, "no commit, older records deleted"),
            (10, 4, Some(2), 6, "committed below the low watermark: what is retained"),
            (0, 0, None, 0, "empty partition"),
            (5, 5, None, 0, "everything deleted"),
            (10, 0, Some(12), 0, "committed past the end (truncated log): not negative"),
        ];
        for (end, low, committed, want, why) in cases {
            assert_eq!(records(end, low, committed), want, "{why}");
        }
        assert_eq!(first_unconsumed(4, Some(2)), 4);
        assert_eq!(first_unconsumed(0, Some(7)), 7);
        assert_eq!(first_unconsumed(3, None), 3);
    }

    #[test]
    fn seconds_is_the_age_of_the_oldest_unconsumed_record() {
        assert_eq!(seconds(3, 10_000, Some(7_500)), 2.5);
        assert_eq!(seconds(0, 10_000, Some(7_500)), 0.0, "caught up: 0 whatever the timestamp");
        assert_eq!(seconds(3, 10_000, None), 0.0, "no timestamp");
        assert_eq!(seconds(3, 10_000, Some(12_000)), 0.0, "a timestamp from the future (clock skew)");
    }

    #[test]
    fn a_topic_sums_maxes_and_takes_the_oldest() {
        let p =
            |partition, lag_records, lag_seconds| PartitionLag { partition, committed: None, end: 0, lag_records, lag_seconds };
        let t = TopicLag::new("t", vec![p(2, 1, 9.0), p(0, 4, 1.0), p(1, 0, 0.0)]);
        assert_eq!((t.lag_records, t.max_partition_lag_records, t.lag_seconds), (5, 4, 9.0));
        assert_eq!(t.partitions.iter().map(|p| p.partition).collect::<Vec<_>>(), [0, 1, 2]);
        let z = TopicLag::zero("t");
        assert_eq!((z.lag_records, z.max_partition_lag_records, z.lag_seconds, z.partitions.len()), (0, 0, 0.0, 0));
    }
}
