//! The comparator: a consumer group over the outcomes topic that joins each event's legacy and
//! new outcomes, compares them under the route's rules, and records parity — metrics, the parity
//! topic, and the last mismatch samples per route for the admin API.
//!
//! Outcomes are keyed by event id, so both outcomes of an event share a partition and replicas
//! can split the partitions between them. Live events are joined the same way: strangler's own
//! `legacy`/`live` record (the event went to the new path) with the new service's live outcome;
//! they count in `strangler_new_path_total`, never in the parity ratio.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use serde::Serialize;
use tokio::sync::watch;

use super::core::{now_rfc3339, sides, Core, Judged, Settings, DUPLICATE, LATE, UNDECODABLE, UNKNOWN_ROUTE};
use super::diff::FieldDiff;
use super::record::{verdict, Joined};
pub use super::record::{Parity, ParityResult, Side};
use super::refetch::Refetch;
use crate::publish::producer::client_config;
use crate::publish::RecordSink;
use crate::route::Routes;
use crate::telemetry::CompareMetrics;

/// Every `reason` of `strangler_outcomes_dropped_total`.
pub const DROPPED_REASONS: [&str; 4] = [UNDECODABLE, UNKNOWN_ROUTE, LATE, DUPLICATE];

/// Decided event ids remembered to refuse late records.
pub const REMEMBER: usize = 200_000;

/// A kept mismatch, with both sides, for people to read.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub event_id: String,
    pub at: String,
    pub diff: Vec<FieldDiff>,
    pub legacy: Side,
    pub new: Side,
}

/// The last mismatches per route, shared with the admin API.
#[derive(Default)]
pub struct Samples {
    by_route: Mutex<HashMap<String, VecDeque<Sample>>>,
}

impl Samples {
    /// Newest first.
    pub fn get(&self, route: &str) -> Vec<Sample> {
        let map = self.by_route.lock().unwrap_or_else(|p| p.into_inner());
        map.get(route).map(|q| q.iter().rev().cloned().collect()).unwrap_or_default()
    }

    fn push(&self, route: &str, sample: Sample, keep: usize) {
        let mut map = self.by_route.lock().unwrap_or_else(|p| p.into_inner());
        let q = map.entry(route.to_string()).or_default();
        q.push_back(sample);
        while q.len() > keep {
            q.pop_front();
        }
    }
}

/// The comparator's shared parts.
pub struct Comparator {
    pub routes: Routes,
    pub metrics: CompareMetrics,
    pub records: RecordSink,
    pub parity_topic: String,
    pub samples: Arc<Samples>,
    /// Bounds and sizes (`[comparator]`).
    pub settings: Settings,
    /// Turns true once the group gave this comparator its partitions (a rebalance in the middle
    /// of traffic makes comparators forget the events they were waiting on).
    pub assigned: watch::Sender<bool>,
}

/// Where the comparator reads from.
pub struct Input {
    pub brokers: String,
    pub overrides: BTreeMap<String, String>,
    pub group_id: String,
    pub topic: String,
}

impl Comparator {
    /// Consumes outcomes until `shutdown`.
    pub async fn run(self: Arc<Self>, from: Input, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        let mut cfg = client_config(&from.brokers, &from.overrides);
        cfg.set("group.id", &from.group_id).set("enable.auto.commit", "true").set("auto.offset.reset", "earliest");
        let consumer: StreamConsumer = cfg.create()?;
        consumer.subscribe(&[&from.topic])?;
        let mut core = Core::new(self.routes.clone(), self.metrics.clone(), self.settings);
        let mut refetch = Refetch::new(from.brokers.clone(), from.overrides.clone(), from.topic.clone());
        let mut check = tokio::time::interval(Duration::from_millis(50));
        loop {
            let next = core.next_deadline().unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            let waiting = !*self.assigned.borrow();
            let judged = tokio::select! {
                _ = check.tick(), if waiting => {
                    if consumer.assignment().is_ok_and(|a| a.count() > 0) {
                        self.assigned.send_replace(true);
                    }
                    Vec::new()
                }
                _ = crate::publish::reader::stopped(&mut shutdown) => {
                    // Closing a consumer leaves its group and can block while the broker is
                    // unreachable; keep that off the async workers.
                    crate::publish::reader::close(consumer).await;
                    return Ok(());
                }
                _ = tokio::time::sleep_until(next.into()) => core.expire(Instant::now()),
                msg = consumer.recv() => match msg {
                    Ok(m) => match m.payload() {
                        Some(payload) => core.offer(payload, Some((m.partition(), m.offset())), Instant::now()),
                        None => core.offer(b"", None, Instant::now()),
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "reading outcomes");
                        Vec::new()
                    }
                },
            };
            for j in judged {
                let parity = resolve(j, &mut refetch, &self.routes).await;
                self.decide(&mut core, parity);
            }
        }
    }

    /// Counts, samples and publishes one decided event.
    fn decide(&self, core: &mut Core, parity: Parity) {
        if self.routes.load().get(&parity.route).is_none() {
            return; // the route was removed by a reload while its event waited
        }
        core.count(&parity);
        if let (Some(legacy), Some(new)) = (&parity.legacy, &parity.new) {
            let keep = self.routes.load().get(&parity.route).map_or(0, |r| r.compare.samples);
            let sample = Sample {
                event_id: parity.event_id.clone(),
                at: parity.at.clone(),
                diff: parity.diff.clone(),
                legacy: legacy.clone(),
                new: new.clone(),
            };
            self.samples.push(&parity.route, sample, keep);
        }
        match serde_json::to_vec(&parity) {
            Ok(value) => self.records.send_record(&self.parity_topic, &parity.event_id, value, RecordSink::PARITY_RECORD),
            Err(e) => tracing::error!(error = %e, "encoding a parity record failed"),
        }
    }
}

/// Decides a pair whose digests differ by reading its first side again for a full diff. A
/// record that cannot be read again leaves the pair not compared: `truncated`.
async fn resolve(judged: Judged, refetch: &mut Refetch, routes: &Routes) -> Parity {
    let (first, at, second) = match judged {
        Judged::Done(parity) => return parity,
        Judged::Full { first, at, second } => (first, at, second),
    };
    let read = match at {
        Some(at) => refetch.outcome(at, &first.event_id).await,
        None => None,
    };
    let first = match read {
        Some(full) => full,
        None => super::outcome::Outcome { truncated: true, ..first },
    };
    let rules = routes.load().get(&first.route).map(|r| r.compare.rules.clone()).unwrap_or_default();
    let (legacy, new) = sides(first, second);
    verdict(&rules, Joined::Pair { legacy, new }, now_rfc3339())
}
