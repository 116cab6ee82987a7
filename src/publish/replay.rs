//! Replaying the spool once Kafka is back (the supervisor runs it; write-ahead mode replays with
//! `write_ahead` instead).
//!
//! Replay takes the oldest pending batch (with any event spooled late that belongs before its
//! newest), restores publish order within it, reads Kafka back for
//! any event that may already be there (so it is not resent blindly), sends the rest through the
//! shadow producer and acks what Kafka acknowledged. New shadow events queue behind the spool
//! until it is empty, so per-key order holds across the outage.

use super::failure;
use super::persisted::{self, Suspect};
use super::producer::{self, Outgoing, Placed, Report};
use super::shared::Shared;
use super::spooling::entry_event;

/// Every `result` of `strangler_spool_replayed_total`.
pub const REPLAYED_RESULTS: [&str; 3] = [PUBLISHED, ALREADY_ON_KAFKA, DEAD_LETTERED];
const PUBLISHED: &str = "published";
const ALREADY_ON_KAFKA: &str = "already_on_kafka";
const DEAD_LETTERED: &str = "dead_lettered";

/// Spooled events replayed per round.
const BATCH: usize = 500;
/// How far past a batch replay looks for events spooled late (purged from librdkafka after newer
/// events had gone straight to the spool) that belong before the batch's newest.
const LATE_WINDOW: usize = 1000;

impl Shared {
    /// Replays up to [`BATCH`] spooled events. Returns how many were settled.
    pub(super) async fn replay_batch(&self) -> anyhow::Result<usize> {
        let Some(spool) = self.inner.spool.clone() else { return Ok(0) };
        let reader = spool.clone();
        let mut batch = tokio::task::spawn_blocking(move || reader.pending(BATCH + LATE_WINDOW)).await??;
        if batch.is_empty() {
            return Ok(0);
        }
        take_in_order(&mut batch);
        let mark = spool.replay_mark();
        let suspects: Vec<Suspect> = batch
            .iter()
            .filter(|(seq, e)| e.possibly_persisted || mark.is_some_and(|m| *seq <= m))
            .map(|(_, e)| Suspect { topic: e.topic.clone(), partition: e.partition, id: e.id.clone(), since_ms: e.spooled_at_ms })
            .collect();
        let on_kafka = if suspects.is_empty() {
            Default::default()
        } else {
            persisted::find(&self.inner.kafka.client_config, suspects).await?
        };
        // From here on a crash leaves these events "possibly on Kafka": record that first.
        let last = batch.iter().map(|(seq, _)| *seq).max().unwrap_or(0);
        let marker = spool.clone();
        tokio::task::spawn_blocking(move || marker.mark_replaying(last)).await??;

        let metrics = &self.inner.metrics;
        let shadow = self.shadow();
        let mut acks = Vec::with_capacity(batch.len());
        let mut sent = Vec::with_capacity(batch.len());
        for (seq, e) in &batch {
            if on_kafka.contains(&e.id) {
                metrics.replayed.with_label_values(&[ALREADY_ON_KAFKA]).inc();
                acks.push(*seq);
                continue;
            }
            let out = Outgoing { topic: &e.topic, key: e.key.as_bytes(), value: &e.value, headers: &e.headers };
            match producer::send_placed(&shadow, &out) {
                Ok(report) => sent.push((*seq, e, report)),
                Err(error) => {
                    if failure::permanent(&error).is_some() {
                        sent.push((*seq, e, failed_now(error)));
                    } else {
                        break; // queue full: the rest waits for the next round, in order
                    }
                }
            }
        }
        let mut interrupted = None;
        for (seq, e, report) in sent {
            match report.await {
                Ok(Placed { report: Report::Acked, partition }) => {
                    metrics.replayed.with_label_values(&[PUBLISHED]).inc();
                    self.landed(&self.route(&e.route), &e.topic, partition, &e.key);
                    acks.push(seq);
                }
                Ok(Placed { report: Report::Failed { error, .. }, .. }) => match failure::permanent(&error) {
                    Some(why) => {
                        self.dead_letter(&self.route(&e.route), &entry_event(e), why, &error).await;
                        metrics.replayed.with_label_values(&[DEAD_LETTERED]).inc();
                        acks.push(seq);
                    }
                    None => interrupted = Some(error.to_string()),
                },
                Err(_) => interrupted = Some("delivery report lost".into()),
            }
        }
        let settled = acks.len();
        tokio::task::spawn_blocking(move || spool.ack(&acks)).await??;
        match interrupted {
            Some(e) => anyhow::bail!("kafka failed again during replay ({settled} settled): {e}"),
            None => Ok(settled),
        }
    }
}

/// Keeps the first [`BATCH`] entries (by spool position) and any later one of the window that was
/// published before the newest of them, in publish order. Events purged from librdkafka may have
/// been spooled a moment after newer ones, sometimes more than a batch later; sorting only within
/// the batch would send a newer event of a key before an older one.
fn take_in_order(window: &mut Vec<(u64, super::spool::Entry)>) {
    if window.len() > BATCH {
        let late = window.split_off(BATCH);
        let newest = window.iter().map(|(_, e)| e.order).max().unwrap_or(0);
        window.extend(late.into_iter().filter(|(_, e)| e.order < newest));
    }
    window.sort_by_key(|(seq, e)| (e.order, *seq));
}

fn failed_now(error: rdkafka::error::KafkaError) -> tokio::sync::oneshot::Receiver<Placed> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let _ = tx.send(Placed { report: Report::Failed { error, possibly_persisted: false, partition: None }, partition: None });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::spool::Entry;

    fn entry(order: u64) -> Entry {
        Entry {
            route: "orders".into(),
            id: order.to_string(),
            topic: "t".into(),
            key: "k".into(),
            headers: Vec::new(),
            value: Vec::new(),
            possibly_persisted: false,
            partition: None,
            spooled_at_ms: 0,
            order,
        }
    }

    /// A run seen in a 30 s outage test: events purged from librdkafka were spooled hundreds of
    /// positions after newer ones, past the batch's end.
    #[test]
    fn an_event_spooled_late_past_the_batch_is_replayed_before_newer_ones() {
        // Spool positions 0.. hold orders 100.. except that orders 5 and 7 come at positions
        // BATCH + 300 and BATCH + 900, and order 10_000 (newer than the batch) at BATCH + 1.
        let mut window: Vec<(u64, Entry)> = (0..(BATCH + LATE_WINDOW) as u64).map(|seq| (seq, entry(100 + seq))).collect();
        window[BATCH + 300].1.order = 5;
        window[BATCH + 900].1.order = 7;
        window[BATCH + 1].1.order = 10_000;
        take_in_order(&mut window);
        let orders: Vec<u64> = window.iter().map(|(_, e)| e.order).collect();
        assert_eq!(orders.len(), BATCH + 2, "the batch and the two late events, nothing newer");
        assert_eq!(&orders[..3], &[5, 7, 100]);
        assert!(orders.windows(2).all(|w| w[0] < w[1]), "publish order");
        assert_eq!(*orders.last().unwrap(), 100 + BATCH as u64 - 1);
    }

    #[test]
    fn a_short_spool_is_only_sorted() {
        let mut window: Vec<(u64, Entry)> = [(0, 3), (1, 1), (2, 2)].into_iter().map(|(s, o)| (s, entry(o))).collect();
        take_in_order(&mut window);
        assert_eq!(window.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [1, 2, 0]);
    }
}
