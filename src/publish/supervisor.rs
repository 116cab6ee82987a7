//! The supervisor: notices Kafka going down and coming back, moves queued events to the spool,
//! replays the spool in order once Kafka is back ([`super::replay`], `write_ahead`),
//! recreates a producer that hit a fatal error, and flushes at shutdown. `app` keeps it; it also
//! answers start-up's questions (is Kafka reachable, are the topics ready).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{Producer as _, PurgeConfig};
use tokio::sync::watch;

use super::producer;
use super::shared::Shared;
use super::spool::Spool;

/// How often to look again when nothing woke the supervisor.
const TICK: Duration = Duration::from_millis(500);

/// The handle that runs publishing's background work.
#[derive(Clone)]
pub struct Supervisor {
    pub(super) shared: Shared,
}

impl Supervisor {
    /// Runs until `stop` turns true.
    pub async fn supervise(self, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let shared = &self.shared;
        let kafka = &shared.inner.kafka;
        let health = kafka.health.clone();
        let mut was_down = false;
        while !*stop.borrow() {
            if health.take_fatal() || kafka.fatal_error().is_some() {
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
                if kafka.reachable(Duration::from_secs(1)).await {
                    health.set_up();
                    busy = true;
                }
            } else if shared.kafka_up() && shared.inner.wal.is_some() {
                match shared.supervise_ahead().await {
                    Ok(worked) => busy = worked,
                    Err(e) => tracing::warn!(error = %e, "write-ahead replay paused"),
                }
            } else if shared.kafka_up() && shared.inner.spool.as_ref().is_some_and(|s| !s.is_empty()) {
                match shared.replay_batch().await {
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

    /// Every broker is down: take every event back from librdkafka so it waits in the spool, not in
    /// memory. Those already sent come back marked possibly persisted, so replay checks Kafka before
    /// resending them. The purge leaves holes in the producer's idempotence sequence, so the
    /// emptied producer is replaced by a fresh one (a new producer id) instead of being reused.
    async fn purge_to_spool(&self) {
        let inner = &self.shared.inner;
        if inner.spool.is_none() {
            return;
        }
        match producer::create(&inner.kafka.shadow_config, inner.kafka.health.clone()) {
            Ok(fresh) => {
                let old = inner.kafka.replace_shadow(fresh);
                let _ = tokio::task::spawn_blocking(move || {
                    old.purge(PurgeConfig::default().queue().inflight());
                    // Serves the purged messages' delivery reports before the old producer goes.
                    let _ = old.flush(Duration::from_millis(500));
                })
                .await;
            }
            Err(e) => {
                tracing::error!(error = %e, "creating a fresh producer failed; purging only the queue");
                let shadow = inner.kafka.shadow();
                let _ = tokio::task::spawn_blocking(move || shadow.purge(PurgeConfig::default().queue())).await;
            }
        }
    }

    /// Replaces both producers after a fatal error. Whatever the old ones still held comes back
    /// through its delivery reports and is spooled (or counted as dropped without a spool).
    async fn recreate(&self) {
        let inner = &self.shared.inner;
        let kafka = &inner.kafka;
        let fatal = kafka.fatal_error();
        tracing::error!(?fatal, "recreating the Kafka producers after a fatal error");
        let created = producer::create(&kafka.shadow_config, kafka.health.clone())
            .and_then(|s| producer::create(&kafka.live_config, kafka.health.clone()).map(|l| (s, l)));
        let (shadow, live) = match created {
            Ok(pair) => pair,
            Err(e) => {
                tracing::error!(error = %e, "recreating the Kafka producers failed; will retry");
                kafka.health.set_fatal();
                return;
            }
        };
        let old_shadow = kafka.replace_shadow(shadow);
        let old_live = kafka.replace_live(live);
        inner.metrics.recreated.inc();
        let _ = tokio::task::spawn_blocking(move || {
            for old in [old_shadow, old_live] {
                old.purge(PurgeConfig::default().queue().inflight());
                let _ = old.flush(Duration::from_secs(1));
            }
        })
        .await;
    }

    /// Waits up to `timeout` for every queued event to be acknowledged. With a spool, what is left
    /// is then taken back from librdkafka and spooled, so a clean stop loses nothing. Returns the
    /// number of events still neither on Kafka nor in the spool.
    pub async fn flush(&self, timeout: Duration) -> i32 {
        let inner = &self.shared.inner;
        let (shadow, live) = (inner.kafka.shadow(), inner.kafka.live());
        let has_spool = inner.spool.is_some();
        let left = tokio::task::spawn_blocking(move || {
            let _ = live.flush(timeout);
            let _ = shadow.flush(timeout);
            if has_spool && shadow.in_flight_count() > 0 {
                shadow.purge(PurgeConfig::default().queue().inflight());
            }
            shadow.in_flight_count() + live.in_flight_count()
        })
        .await
        .unwrap_or(-1);
        // Purged events come back through their delivery reports and are spooled by their tasks.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while inner.unsettled.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Write-ahead events are in the spool already: wait only for their acks to be recorded.
        self.shared.settle_inflight(Duration::from_secs(5)).await;
        if let Some(spool) = &inner.spool {
            if let Err(e) = spool.sync() {
                tracing::error!(error = %e, "syncing the spool at exit");
            }
        }
        left.max(inner.unsettled.load(Ordering::Acquire) as i32)
    }

    /// Write-ahead mode: waits (at most `within`) until new events go to Kafka at once, i.e. the
    /// spool recovered at start-up was replayed. True at once without write-ahead.
    pub async fn wait_live(&self, within: Duration) -> bool {
        self.shared.wait_live(within).await
    }

    /// True when broker metadata can be fetched within `timeout`.
    pub async fn kafka_reachable(&self, timeout: Duration) -> bool {
        self.shared.inner.kafka.reachable(timeout).await
    }

    /// Start-up found Kafka unreachable: treat it as down (events go to the spool) until a probe
    /// answers, and hold events back until [`Supervisor::set_topics_ready`].
    pub fn start_unreachable(&self) {
        self.shared.inner.kafka.start_unreachable();
    }

    /// The topics exist: events may go to Kafka (and the spool be replayed).
    pub fn set_topics_ready(&self) {
        self.shared.inner.kafka.set_topics_ready();
        self.shared.inner.metrics.topics_ready.set(1);
    }

    /// The spool, if one is configured.
    pub fn spool(&self) -> Option<&Arc<Spool>> {
        self.shared.inner.spool.as_ref()
    }

    /// Fails the shadow producer as a fatal librdkafka error would. Fault-injection tests only.
    #[doc(hidden)]
    pub fn inject_fatal_error(&self) {
        producer::inject_fatal_error(&self.shared.shadow(), "injected by a fault test");
    }
}
