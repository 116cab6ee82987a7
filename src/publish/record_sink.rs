//! The record sink: outcome and parity records (JSON) through the shadow producer, never waited
//! for and never spooled. While every broker is down they are counted and skipped at once.

use std::sync::Arc;

use prometheus::IntCounter;
use rdkafka::error::KafkaError;

use super::kafka::Kafka;
use super::producer::{self, Outgoing, Report};
use crate::telemetry::PublishMetrics;

/// The handle for outcome and parity records.
#[derive(Clone)]
pub struct RecordSink {
    kafka: Arc<Kafka>,
    /// `strangler_records_failed_total{kind}`, one per [`RecordSink::RECORD_KINDS`].
    failed: Arc<[IntCounter; 2]>,
}

impl RecordSink {
    /// Every `kind` of `strangler_records_failed_total`: [`Self::send_record`]'s callers use these.
    pub const RECORD_KINDS: [&'static str; 2] = [Self::OUTCOME_RECORD, Self::PARITY_RECORD];
    pub const OUTCOME_RECORD: &'static str = "outcome";
    pub const PARITY_RECORD: &'static str = "parity";

    pub(super) fn new(kafka: Arc<Kafka>, metrics: &PublishMetrics) -> Self {
        let failed = Self::RECORD_KINDS.map(|kind| metrics.records_failed.with_label_values(&[kind]));
        Self { kafka, failed: Arc::new(failed) }
    }

    /// Enqueues a JSON record (an outcome or a parity result) without waiting. `kind`, one of
    /// [`Self::RECORD_KINDS`], labels failures.
    pub fn send_record(&self, topic: &str, key: &str, value: Vec<u8>, kind: &'static str) {
        let counter = self.failed[usize::from(kind != Self::OUTCOME_RECORD)].clone();
        if !self.kafka.up() {
            counter.inc();
            tracing::debug!(kind, key, "record skipped: kafka is down");
            return;
        }
        let failed = move |e: &KafkaError| {
            counter.inc();
            tracing::error!(kind, error = %e, "record not published");
        };
        let out = Outgoing { topic, key: key.as_bytes(), value: &value, headers: &[] };
        match producer::send(&self.kafka.shadow(), &out) {
            Ok(report) => {
                tokio::spawn(async move {
                    match report.await {
                        Ok(Report::Acked) => {}
                        Ok(Report::Failed { error, .. }) => failed(&error),
                        Err(_) => failed(&KafkaError::Canceled),
                    }
                });
            }
            Err(e) => failed(&e),
        }
    }
}
