//! Write-ahead mode, the supervisor's side: record the end offsets before the first send, stop
//! live sends while a backlog waits, replay it in order (looking on Kafka first for what may have
//! been sent), and wait for in-flight events at start-up and shutdown.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use tokio::sync::mpsc;

use super::super::producer::{self, Report};
use super::super::shared::Shared;
use super::super::spool::AckedAt;
use super::super::spooling::entry_event;
use super::super::{failure, persisted};

/// Spooled events replayed per round.
const REPLAY_BATCH: usize = 500;
/// How often, when nothing is pending, the recovery offsets are moved up to the end offsets (so
/// a partition this replica seldom writes to is not read from far back after a crash).
const REFRESH: Duration = Duration::from_secs(60);

impl Shared {
    /// One supervisor round in write-ahead mode, Kafka being up. Returns whether it did work.
    pub(in crate::publish) async fn supervise_ahead(&self) -> anyhow::Result<bool> {
        let Some(wal) = self.wal() else { return Ok(false) };
        if !wal.lock().baselined {
            // Before anything is sent: where recovery must read from in partitions with no acks yet.
            let ends = persisted::end_offsets(&self.inner.kafka.client_config, wal.topics.clone()).await?;
            let spool = wal.spool.clone();
            tokio::task::spawn_blocking(move || spool.add_missing_offsets(&ends)).await??;
            let mut st = wal.lock();
            st.baselined = true;
            st.refreshed_at = Some(std::time::Instant::now());
        }
        self.refresh_offsets_when_quiet().await?;
        {
            let mut st = wal.lock();
            if !wal.must_replay(&st) {
                st.live = true;
                return Ok(false);
            }
            // A backlog: nothing new goes live until it is replayed, in order.
            st.live = false;
            if !st.inflight.is_empty() {
                return Ok(false);
            }
        }
        self.replay_ahead().await.map(|n| n > 0)
    }

    /// Every [`REFRESH`], when nothing is pending in the spool: reads the end offsets and, if no
    /// event was sent meanwhile, makes them the recovery offsets. Valid because every event sent
    /// afterwards lands at or above them, and none sent before is still unrecorded.
    async fn refresh_offsets_when_quiet(&self) -> anyhow::Result<()> {
        let Some(wal) = self.wal() else { return Ok(()) };
        let quiet = |st: &super::State| st.inflight.is_empty() && st.failed.is_empty() && wal.spool.pending_count() == 0;
        let before = {
            let st = wal.lock();
            let due = st.refreshed_at.is_none_or(|at| at.elapsed() >= REFRESH);
            if !(due && st.live && quiet(&st)) {
                return Ok(());
            }
            st.sends
        };
        let ends = persisted::end_offsets(&self.inner.kafka.client_config, wal.topics.clone()).await?;
        let mut st = wal.lock();
        st.refreshed_at = Some(std::time::Instant::now());
        if st.sends == before && quiet(&st) {
            // Under the lock, so no send starts before the cursor holds them (one small file write).
            wal.spool.replace_offsets(&ends)?;
            tracing::debug!(?ends, "write-ahead: recovery offsets moved to the end offsets");
        }
        Ok(())
    }

    /// Replays up to [`REPLAY_BATCH`] entries, nothing being in flight: skips those already on
    /// Kafka (read from the cursor's offsets), sends the rest, acks what Kafka acknowledged.
    async fn replay_ahead(&self) -> anyhow::Result<usize> {
        let Some(wal) = self.wal() else { return Ok(0) };
        let spool = wal.spool.clone();
        let reader = spool.clone();
        let mut batch = tokio::task::spawn_blocking(move || reader.pending(REPLAY_BATCH)).await??;
        if batch.is_empty() {
            return Ok(0);
        }
        batch.sort_by_key(|(seq, e)| (e.order, *seq));
        // Only what may have been sent is looked for: recovered at start-up, or failed in flight.
        let suspects: Vec<(String, String)> = {
            let st = wal.lock();
            let maybe_sent = |seq: &u64| *seq < st.recovered_below || st.failed.contains(seq);
            batch.iter().filter(|(seq, _)| maybe_sent(seq)).map(|(_, e)| (e.topic.clone(), e.id.clone())).collect()
        };
        let on_kafka: HashSet<String> = if suspects.is_empty() {
            HashSet::new()
        } else {
            persisted::find_from(&self.inner.kafka.client_config, suspects, spool.offsets()).await?
        };
        let metrics = &self.inner.metrics;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let shadow = self.shadow();
        let mut skipped = Vec::new();
        let mut sent = BTreeMap::new();
        for (seq, e) in &batch {
            if on_kafka.contains(&e.id) {
                metrics.replayed.with_label_values(&["already_on_kafka"]).inc();
                skipped.push(*seq);
                continue;
            }
            let out = producer::Outgoing { topic: &e.topic, key: e.key.as_bytes(), value: &e.value, headers: &e.headers };
            match producer::send_logged(&shadow, &out, *seq, &tx) {
                Ok(()) => {
                    sent.insert(*seq, e);
                }
                Err(_) => break, // queue full: the rest waits for the next round, in order
            }
        }
        drop(tx);
        let mut acked = Vec::new();
        let mut dead = skipped;
        let mut interrupted = (sent.len() + dead.len() < batch.len()).then(|| "librdkafka's queue is full".to_string());
        while let Some(l) = rx.recv().await {
            let Some(e) = sent.get(&l.seq) else { continue };
            match (l.report, l.at) {
                (Report::Acked, Some((topic, partition, offset))) => {
                    metrics.replayed.with_label_values(&["published"]).inc();
                    self.landed(&self.route(&e.route), &topic, Some(partition), &e.key);
                    acked.push(AckedAt { seq: l.seq, topic, partition, offset });
                }
                (Report::Acked, None) => {}
                (Report::Failed { error, .. }, _) => match failure::permanent(&error) {
                    Some(why) => {
                        self.dead_letter(&self.route(&e.route), &entry_event(e), why, &error).await;
                        metrics.replayed.with_label_values(&["dead_lettered"]).inc();
                        dead.push(l.seq);
                    }
                    None => interrupted = Some(error.to_string()),
                },
            }
        }
        let settled = acked.len() + dead.len();
        // Entries after this batch all have higher seqs: offsets may move only if none of them,
        // and nothing in this batch, may already be on Kafka.
        let last = batch.iter().map(|(seq, _)| *seq).max().unwrap_or(0);
        // Offsets may move only if nothing Kafka may hold stays pending: what this round settles
        // no longer counts.
        let settled_seqs: Vec<u64> = acked.iter().map(|a| a.seq).chain(dead.iter().copied()).collect();
        let quiet = interrupted.is_none()
            && {
                let st = wal.lock();
                st.failed.iter().all(|s| settled_seqs.contains(s))
            }
            && wal.no_recovered_after(Some(last));
        tokio::task::spawn_blocking(move || spool.ack_at(&acked, quiet).and_then(|()| spool.ack(&dead))).await??;
        // After the spool write: an event deciding now sees its entry acked and does not wait.
        let mut st = wal.lock();
        for seq in settled_seqs {
            st.waiting.remove(&seq);
            st.failed.remove(&seq);
        }
        drop(st);
        match interrupted {
            Some(e) => anyhow::bail!("kafka failed again during replay ({settled} settled): {e}"),
            None => Ok(settled),
        }
    }

    /// Start-up, Kafka reachable: waits (at most `within`) until new events go to Kafka at once
    /// (the end offsets are recorded and any recovered backlog replayed), so the first requests
    /// are not held behind the spool. Returns whether they do.
    pub(in crate::publish) async fn wait_live(&self, within: Duration) -> bool {
        let Some(wal) = self.wal() else { return true };
        let deadline = tokio::time::Instant::now() + within;
        while !wal.lock().live {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            self.inner.kafka.health.changed.notify_one();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Waits (at most `within`) until no write-ahead event is in flight.
    pub(in crate::publish) async fn settle_inflight(&self, within: Duration) {
        let Some(wal) = self.wal() else { return };
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = wal.settled.notified();
            if wal.inflight() == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }
}
