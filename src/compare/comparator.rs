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
use std::time::{Duration, Instant, SystemTime};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use serde::Serialize;
use tokio::sync::watch;

use super::diff::FieldDiff;
use super::join::{Joined, Joiner, Refused};
use super::outcome::Outcome;
use super::record::verdict;
pub use super::record::{Parity, ParityResult, Side};
use crate::publish::producer::client_config;
use crate::publish::Publisher;
use crate::route::Routes;
use crate::telemetry::CompareMetrics;

/// Every `reason` of `strangler_outcomes_dropped_total`.
pub const DROPPED_REASONS: [&str; 4] = [UNDECODABLE, UNKNOWN_ROUTE, LATE, DUPLICATE];
const UNDECODABLE: &str = "undecodable";
const UNKNOWN_ROUTE: &str = "unknown_route";
const LATE: &str = "late";
const DUPLICATE: &str = "duplicate";

/// Decided event ids remembered to refuse late records.
const REMEMBER: usize = 200_000;

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
    pub publisher: Publisher,
    pub parity_topic: String,
    pub samples: Arc<Samples>,
    /// Results behind the parity ratio gauge.
    pub parity_window: usize,
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
        let mut state = State { joiner: Joiner::new(REMEMBER), recent: HashMap::new() };
        let mut check = tokio::time::interval(Duration::from_millis(50));
        loop {
            let next = state.joiner.next_deadline().unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            let waiting = !*self.assigned.borrow();
            tokio::select! {
                _ = check.tick(), if waiting => {
                    if consumer.assignment().is_ok_and(|a| a.count() > 0) {
                        self.assigned.send_replace(true);
                    }
                }
                _ = crate::publish::reader::stopped(&mut shutdown) => {
                    // Closing a consumer leaves its group and can block while the broker is
                    // unreachable; keep that off the async workers.
                    crate::publish::reader::close(consumer).await;
                    return Ok(());
                }
                _ = tokio::time::sleep_until(next.into()) => {
                    for joined in state.joiner.expire(Instant::now()) {
                        self.decide(&mut state, joined);
                    }
                }
                msg = consumer.recv() => match msg {
                    Ok(m) => self.take(&mut state, m.payload()),
                    Err(e) => tracing::warn!(error = %e, "reading outcomes"),
                },
            }
        }
    }

    fn take(&self, state: &mut State, payload: Option<&[u8]>) {
        let Some(Ok(outcome)) = payload.map(serde_json::from_slice::<Outcome>) else {
            self.metrics.dropped.with_label_values(&[UNDECODABLE]).inc();
            return;
        };
        let table = self.routes.load();
        let Some(route) = table.get(&outcome.route) else {
            self.metrics.dropped.with_label_values(&[UNKNOWN_ROUTE]).inc();
            return;
        };
        self.metrics.outcomes.with_label_values(&[&route.name, outcome.source.as_str(), outcome.mode.as_str()]).inc();
        match state.joiner.offer(outcome, route.compare.window, Instant::now()) {
            Ok(Some(joined)) => self.decide(state, joined),
            Ok(None) => {}
            Err(Refused::Late) => self.metrics.dropped.with_label_values(&[LATE]).inc(),
            Err(Refused::Duplicate) => self.metrics.dropped.with_label_values(&[DUPLICATE]).inc(),
        }
    }

    fn decide(&self, state: &mut State, joined: Joined) {
        let at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let table = self.routes.load();
        let name = match &joined {
            Joined::Pair { legacy, .. } => &legacy.route,
            Joined::Expired { have } => &have.route,
        };
        let Some(route) = table.get(name) else { return };
        let parity = verdict(&route.compare.rules, joined, at);
        if let (Some(legacy), Some(new)) = (&parity.legacy, &parity.new) {
            let sample = Sample {
                event_id: parity.event_id.clone(),
                at: parity.at.clone(),
                diff: parity.diff.clone(),
                legacy: legacy.clone(),
                new: new.clone(),
            };
            self.samples.push(&route.name, sample, route.compare.samples);
        }
        if let Some(label) = parity.result.new_path_label() {
            // The new path's own health: not a comparison, so the parity ratio stays as it was.
            self.metrics.new_path.with_label_values(&[&route.name, label]).inc();
        } else {
            self.metrics.parity.with_label_values(&[&route.name, parity.result.as_str()]).inc();
            let window = state.recent.entry(route.name.clone()).or_default();
            window.push_back(parity.result == ParityResult::Match);
            while window.len() > self.parity_window {
                window.pop_front();
            }
            let matches = window.iter().filter(|m| **m).count();
            self.metrics.ratio.with_label_values(&[&route.name]).set(matches as f64 / window.len() as f64);
        }
        match serde_json::to_vec(&parity) {
            Ok(value) => self.publisher.send_record(&self.parity_topic, &parity.event_id, value, Publisher::PARITY_RECORD),
            Err(e) => tracing::error!(error = %e, "encoding a parity record failed"),
        }
    }
}

struct State {
    joiner: Joiner,
    /// Last results per route, `true` for a match.
    recent: HashMap<String, VecDeque<bool>>,
}
