//! The publisher's supervisor: notices Kafka going down and coming back, moves queued events to
//! the spool, replays the spool in order once Kafka is back, and recreates a producer that hit a
//! fatal error.
//!
//! Replay takes the oldest pending batch, restores publish order within it, reads Kafka back for
//! any event that may already be there (so it is not resent blindly), sends the rest through the
//! shadow producer and acks what Kafka acknowledged. New shadow events queue behind the spool
//! until it is empty, so per-key order holds across the outage.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{Producer as _, PurgeConfig};
use tokio::sync::watch;

use super::persisted::{self, Suspect};
use super::producer::{self, Outgoing, Report};
use super::spooling::entry_event;
use super::{failure, Publisher};

/// Every `result` of `strangler_spool_replayed_total`.
pub const REPLAYED_RESULTS: [&str; 3] = [PUBLISHED, ALREADY_ON_KAFKA, DEAD_LETTERED];
const PUBLISHED: &str = "published";
const ALREADY_ON_KAFKA: &str = "already_on_kafka";
const DEAD_LETTERED: &str = "dead_lettered";

/// Spooled events replayed per round.
const BATCH: usize = 500;
/// How often to look again when nothing woke the supervisor.
const TICK: Duration = Duration::from_millis(500);

impl Publisher {
    /// Runs until `stop` turns true.
    pub async fn supervise(self, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let health = self.inner.health.clone();
        let mut was_down = false;
        while !*stop.borrow() {
            if health.take_fatal() || self.fatal_error().is_some() {
                self.recreate().await;
            }
            let down = health.is_down();
            if down && !was_down {
                self.purge_to_spool().await;
            }
            was_down = down;
            let mut busy = false;
            if down {
                // librdkafka reconnects by itself; a metadata round trip tells when it has.
                if self.kafka_reachable(Duration::from_secs(1)).await {
                    health.set_up();
                    busy = true;
                }
            } else if self.kafka_up() && self.inner.wal.is_some() {
                match self.supervise_ahead().await {
                    Ok(worked) => busy = worked,
                    Err(e) => tracing::warn!(error = %e, "write-ahead replay paused"),
                }
            } else if self.kafka_up() && self.inner.spool.as_ref().is_some_and(|s| !s.is_empty()) {
                match self.replay_batch().await {
                    Ok(n) => busy = n > 0,
                    Err(e) => tracing::warn!(error = %e, "spool replay paused"),
                }
            }
            if !busy {
                tokio::select! {
                    _ = stop.changed() => {}
                    _ = health.changed.notified() => {}
                    _ = tokio::time::sleep(TICK) => {}
                }
            }
        }
        Ok(())
    }

    /// The fatal error either producer is in, if any: such a producer can never send again.
    fn fatal_error(&self) -> Option<(rdkafka::error::RDKafkaErrorCode, String)> {
        self.shadow().client().fatal_error().or_else(|| self.live().client().fatal_error())
    }

    /// Every broker is down: take every event back from librdkafka so it waits in the spool, not in
    /// memory. Those already sent come back marked possibly persisted, so replay checks Kafka before
    /// resending them. The purge leaves holes in the producer's idempotence sequence, so the
    /// emptied producer is replaced by a fresh one (a new producer id) instead of being reused.
    async fn purge_to_spool(&self) {
        if self.inner.spool.is_none() {
            return;
        }
        match producer::create(&self.inner.shadow_config, self.inner.health.clone()) {
            Ok(fresh) => {
                let old = std::mem::replace(&mut *self.inner.shadow.write().unwrap_or_else(|e| e.into_inner()), Arc::new(fresh));
                let _ = tokio::task::spawn_blocking(move || {
                    old.purge(PurgeConfig::default().queue().inflight());
                    // Serves the purged messages' delivery reports before the old producer goes.
                    let _ = old.flush(Duration::from_millis(500));
                })
                .await;
            }
            Err(e) => {
                tracing::error!(error = %e, "creating a fresh producer failed; purging only the queue");
                let shadow = self.shadow();
                let _ = tokio::task::spawn_blocking(move || shadow.purge(PurgeConfig::default().queue())).await;
            }
        }
    }

    /// Replaces both producers after a fatal error. Whatever the old ones still held comes back
    /// through its delivery reports and is spooled (or counted as dropped without a spool).
    async fn recreate(&self) {
        let inner = &self.inner;
        let fatal = self.fatal_error();
        tracing::error!(?fatal, "recreating the Kafka producers after a fatal error");
        let created = producer::create(&inner.shadow_config, inner.health.clone())
            .and_then(|s| producer::create(&inner.live_config, inner.health.clone()).map(|l| (s, l)));
        let (shadow, live) = match created {
            Ok(pair) => pair,
            Err(e) => {
                tracing::error!(error = %e, "recreating the Kafka producers failed; will retry");
                inner.health.set_fatal();
                return;
            }
        };
        let old_shadow = std::mem::replace(&mut *inner.shadow.write().unwrap_or_else(|e| e.into_inner()), Arc::new(shadow));
        let old_live = std::mem::replace(&mut *inner.live.write().unwrap_or_else(|e| e.into_inner()), Arc::new(live));
        inner.metrics.recreated.inc();
        let _ = tokio::task::spawn_blocking(move || {
            for old in [old_shadow, old_live] {
                old.purge(PurgeConfig::default().queue().inflight());
                let _ = old.flush(Duration::from_secs(1));
            }
        })
        .await;
    }

    /// Replays up to [`BATCH`] spooled events. Returns how many were settled.
    async fn replay_batch(&self) -> anyhow::Result<usize> {
        let Some(spool) = self.inner.spool.clone() else { return Ok(0) };
        let reader = spool.clone();
        let mut batch = tokio::task::spawn_blocking(move || reader.pending(BATCH)).await??;
        if batch.is_empty() {
            return Ok(0);
        }
        // Events purged from librdkafka may have been spooled a moment after newer ones.
        batch.sort_by_key(|(seq, e)| (e.order, *seq));
        let mark = spool.replay_mark();
        let suspects: Vec<Suspect> = batch
            .iter()
            .filter(|(seq, e)| e.possibly_persisted || mark.is_some_and(|m| *seq <= m))
            .map(|(_, e)| Suspect { topic: e.topic.clone(), partition: e.partition, id: e.id.clone(), since_ms: e.spooled_at_ms })
            .collect();
        let on_kafka =
            if suspects.is_empty() { Default::default() } else { persisted::find(&self.inner.client_config, suspects).await? };
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
            match producer::send(&shadow, &out) {
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
                Ok(Report::Acked) => {
                    metrics.replayed.with_label_values(&[PUBLISHED]).inc();
                    metrics.published.with_label_values(&[&e.route]).inc();
                    acks.push(seq);
                }
                Ok(Report::Failed { error, .. }) => match failure::permanent(&error) {
                    Some(why) => {
                        self.dead_letter(&e.route, &entry_event(e), why, &error).await;
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

fn failed_now(error: rdkafka::error::KafkaError) -> tokio::sync::oneshot::Receiver<Report> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let _ = tx.send(Report::Failed { error, possibly_persisted: false, partition: None });
    rx
}
