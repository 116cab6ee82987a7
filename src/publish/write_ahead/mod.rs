//! Write-ahead mode (`spool.write_ahead = true`): every shadow event is appended to the spool
//! before the sender is answered, and acked there once Kafka acknowledges it.
//!
//! - **Group commit**: [`Wal::commit`] hands the entry to one committer task; entries that arrive
//!   while a batch is being written form the next batch: one write each, one fsync per batch
//!   (under `fsync = "always"`).
//! - **Acks**: events sent live carry their seq; librdkafka's delivery reports come back in its
//!   order on one channel, and the acker acks them in the spool with the offset Kafka wrote each
//!   at, so the cursor records per partition an offset below every event acknowledged but not yet
//!   acked in the cursor.
//! - **Backlog**: an event not sent live (Kafka down, or older events not yet settled) stays in
//!   the spool; the supervisor stops live sends, waits for what is in flight to settle, and
//!   replays the backlog in order. Every replayed event is first looked for on Kafka from the
//!   cursor's offsets, so what a killed process had published is not published again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::{mpsc, oneshot};

use super::producer::{self, Logged, Report};
use super::route_metrics::RouteCounters;
use super::shared::{outgoing, Inner, Shared};
use super::spool::{AckedAt, Appended, Entry, Spool, SpoolError};
use super::{failure, FailReason};
use crate::event::CanonicalEvent;

/// Most entries one group commit writes.
const MAX_BATCH: usize = 1024;

mod replay;

type Commit = (Entry, oneshot::Sender<Result<Appended, SpoolError>>);

pub(super) struct Wal {
    spool: Arc<Spool>,
    commits: mpsc::UnboundedSender<Commit>,
    reports: mpsc::UnboundedSender<Logged>,
    state: Mutex<State>,
    /// Wakes whoever waits for in-flight events to settle.
    pub settled: tokio::sync::Notify,
    /// The topics whose end offsets are recorded before anything is sent.
    topics: Vec<String>,
}

#[derive(Default)]
struct State {
    /// New events may go to Kafka at once (no backlog, baseline recorded).
    live: bool,
    /// Sent live, not yet settled: seq → (route, event).
    inflight: BTreeMap<u64, (Arc<RouteCounters>, CanonicalEvent)>,
    baselined: bool,
    /// Live sends so far (to tell whether any happened while end offsets were being read).
    sends: u64,
    /// When the recovery offsets were last set from the end offsets.
    refreshed_at: Option<std::time::Instant>,
    /// Entries below this were in the spool when it was opened: a killed process may have
    /// published them, so replay looks for them on Kafka first.
    recovered_below: u64,
    /// Entries whose live send failed: Kafka may hold them (possibly persisted).
    failed: std::collections::BTreeSet<u64>,
    /// Entries appended while live sends were stopped (or that librdkafka would not queue):
    /// never sent, waiting for the replay.
    waiting: std::collections::BTreeSet<u64>,
}

impl Wal {
    /// Starts the committer and the acker. `inner` is the publisher that owns this log.
    pub(super) fn start(spool: Arc<Spool>, topics: Vec<String>, inner: Weak<Inner>) -> Wal {
        let (commits, rx) = mpsc::unbounded_channel();
        tokio::spawn(committer(spool.clone(), rx));
        let (reports, rx) = mpsc::unbounded_channel();
        tokio::spawn(acker(inner, rx));
        let state = State { recovered_below: spool.next_seq(), ..State::default() };
        Wal { spool, commits, reports, state: Mutex::new(state), settled: Default::default(), topics }
    }

    /// Appends `entry` (group commit); returns once it is written (and fsynced under `always`).
    pub(super) async fn commit(&self, entry: Entry) -> Result<Appended, SpoolError> {
        let (tx, rx) = oneshot::channel();
        let gone = || SpoolError::Encode { reason: "the spool committer stopped".into() };
        self.commits.send((entry, tx)).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn inflight(&self) -> usize {
        self.lock().inflight.len()
    }

    /// No entry Kafka may hold is pending: nothing failed in flight, nothing recovered at
    /// start-up is still waiting.
    fn no_suspects(&self) -> bool {
        self.lock().failed.is_empty() && self.no_recovered_after(None)
    }

    /// No entry recovered at start-up is pending besides those at or below `resolved` (being
    /// acked now; entries after them have higher seqs).
    fn no_recovered_after(&self, resolved: Option<u64>) -> bool {
        let below = self.lock().recovered_below;
        resolved.is_some_and(|r| r.saturating_add(1) >= below) || self.spool.oldest_pending().is_none_or(|oldest| oldest >= below)
    }

    /// Something must be replayed before new events may go live: entries that were never sent,
    /// that failed in flight, or that were recovered at start-up. Entries just appended and
    /// about to be decided do not count.
    fn must_replay(&self, st: &State) -> bool {
        !st.waiting.is_empty()
            || !st.failed.is_empty()
            || self.spool.oldest_pending().is_some_and(|oldest| oldest < st.recovered_below)
    }

    /// New events do not go to Kafka at once (a backlog is being replayed, or the first round has
    /// not run yet).
    pub(super) fn backlog(&self) -> bool {
        !self.lock().live
    }
}

async fn committer(spool: Arc<Spool>, mut rx: mpsc::UnboundedReceiver<Commit>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let (entries, waiters): (Vec<Entry>, Vec<_>) = batch.into_iter().unzip();
        let s = spool.clone();
        let results = match tokio::task::spawn_blocking(move || s.append_batch(&entries)).await {
            Ok(results) => results,
            Err(e) => {
                tracing::error!(error = %e, "spool group commit panicked");
                continue;
            }
        };
        for (waiter, result) in waiters.into_iter().zip(results) {
            let _ = waiter.send(result);
        }
    }
}

async fn acker(inner: Weak<Inner>, mut rx: mpsc::UnboundedReceiver<Logged>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let Some(inner) = inner.upgrade() else { return };
        Shared { inner }.settle_ahead(batch).await;
    }
}

impl Shared {
    pub(super) fn wal(&self) -> Option<&Wal> {
        self.inner.wal.as_ref()
    }

    /// Write-ahead publish: appends, then sends at once unless a backlog must go first.
    /// Returns `false` when the spool could not take it (the caller publishes it the usual way).
    pub(super) async fn publish_ahead(&self, route: &Arc<RouteCounters>, event: &CanonicalEvent, order: u64) -> bool {
        let Some(wal) = self.wal() else { return false };
        let entry = Entry {
            route: route.name.to_string(),
            id: event.id.clone(),
            topic: event.topic.clone(),
            key: event.key.clone(),
            headers: event.headers.clone(),
            value: event.value.to_vec(),
            possibly_persisted: false,
            partition: None,
            spooled_at_ms: super::spooling::now_ms(),
            order,
        };
        let appended = match wal.commit(entry).await {
            Ok(appended) => appended,
            Err(e) => {
                tracing::error!(route = %route.name, event_id = %event.id, error = %e, "write-ahead append failed; publishing without it");
                return false;
            }
        };
        self.evicted(appended.evicted);
        let seq = appended.seq;
        // Decided under the lock the supervisor takes to stop live sends: an event either goes
        // in flight here or stays for the replay, never both.
        let went = {
            let mut st = wal.lock();
            if !(st.live && self.kafka_up()) {
                // A replay round may have sent (and acked) it already.
                if wal.spool.is_pending(seq) {
                    st.waiting.insert(seq);
                }
                None
            } else {
                st.inflight.insert(seq, (route.clone(), event.clone()));
                st.sends += 1;
                let sent = producer::send_logged(&self.shadow(), &outgoing(event), seq, &wal.reports);
                if sent.is_err() {
                    st.inflight.remove(&seq);
                    st.live = false;
                    st.waiting.insert(seq);
                }
                Some(sent)
            }
        };
        match went {
            None => {
                let reason = if self.kafka_up() { FailReason::SpoolDraining } else { FailReason::KafkaDown };
                route.spooled(reason).inc();
                self.inner.kafka.health.changed.notify_one();
            }
            Some(Ok(())) => {}
            Some(Err(error)) => {
                route.failed(FailReason::of(&error)).inc();
                if let Some(why) = failure::permanent(&error) {
                    self.dead_letter(route, event, why, &error).await;
                    let spool = wal.spool.clone();
                    if matches!(tokio::task::spawn_blocking(move || spool.ack(&[seq])).await, Ok(Ok(()))) {
                        wal.lock().waiting.remove(&seq);
                    }
                }
                self.inner.kafka.health.changed.notify_one();
            }
        }
        true
    }

    /// Settles delivery reports of write-ahead events, in librdkafka's order.
    async fn settle_ahead(&self, batch: Vec<Logged>) {
        let Some(wal) = self.wal() else { return };
        let mut acked = Vec::new();
        let mut seqs = Vec::with_capacity(batch.len());
        let mut dead = Vec::new();
        let mut failures = false;
        for l in batch {
            seqs.push(l.seq);
            let taken = wal.lock().inflight.get(&l.seq).cloned();
            let route = taken.as_ref().map_or_else(|| self.route(""), |(r, _)| r.clone());
            match (l.report, l.at) {
                (Report::Acked, Some((topic, partition, offset))) => {
                    match &taken {
                        Some((_, event)) => self.landed(&route, &topic, Some(partition), &event.key),
                        None => route.published.inc(),
                    }
                    acked.push(AckedAt { seq: l.seq, topic, partition, offset });
                }
                (Report::Acked, None) => {}
                (Report::Failed { error, .. }, _) => {
                    failures = true;
                    route.failed(FailReason::of(&error)).inc();
                    match (failure::permanent(&error), taken) {
                        (Some(why), Some((route, event))) => {
                            self.dead_letter(&route, &event, why, &error).await;
                            dead.push(l.seq);
                        }
                        // Stays in the spool: stop live sends so the replay keeps the order, and
                        // look for it on Kafka before resending.
                        _ => {
                            let mut st = wal.lock();
                            st.live = false;
                            st.failed.insert(l.seq);
                        }
                    }
                }
            }
        }
        let spool = wal.spool.clone();
        let quiet = !failures && wal.no_suspects();
        let stored = tokio::task::spawn_blocking(move || spool.ack_at(&acked, quiet).and_then(|()| spool.ack(&dead))).await;
        let stored = matches!(stored, Ok(Ok(()))).then_some(()).ok_or(stored);
        if let Err(e) = &stored {
            tracing::error!(error = ?e, "write-ahead: acking in the spool failed; those events will be looked for on Kafka and replayed");
        }
        let mut st = wal.lock();
        for seq in seqs {
            st.inflight.remove(&seq);
            if stored.is_err() && wal.spool.is_pending(seq) {
                st.failed.insert(seq);
                st.live = false;
            }
        }
        drop(st);
        wal.settled.notify_waiters();
        self.inner.kafka.health.changed.notify_one();
    }
}
