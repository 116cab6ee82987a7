//! The comparator's decisions, without I/O: outcome records in (the payload and where it sits on
//! the outcomes topic), parity verdicts and the comparator metrics out. [`super::comparator`]
//! feeds it from Kafka; tests and benches feed it in process.
//!
//! An event's first outcome waits as a [`Waiting`] digest. When the second arrives the digests
//! are compared; only when they differ is the pair diffed in full, with the first body taken from
//! memory (kept when small) or handed back as [`Judged::Full`] to be read again from the topic.
//! A route no new outcome was ever seen for keeps no digest and no body: its legacy outcomes are
//! only counted, and decided `missing_new` when their window closes or they are evicted.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use prometheus::IntGauge;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::digest::BodyDigest;
use super::join::{Joiner, Limits, Refused, Waiting};
use super::lone::{Lone, LoneQueues};
use super::outcome::{BodyEncoding, EventMode, Outcome, Source};
use super::record::{verdict, Joined, Parity, ParityResult};
use crate::route::{Route, Routes};
use crate::telemetry::CompareMetrics;

pub(crate) const UNDECODABLE: &str = "undecodable";
pub(crate) const UNKNOWN_ROUTE: &str = "unknown_route";
pub(crate) const LATE: &str = "late";
pub(crate) const DUPLICATE: &str = "duplicate";

/// How the comparator holds waiting events (`[comparator]` keys).
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub limits: Limits,
    /// Bodies up to this many bytes (JSON text) wait in memory; longer ones are read again.
    pub keep_body_bytes: usize,
    /// Results behind the parity ratio gauge.
    pub parity_window: usize,
    /// Decided event ids remembered to refuse late and duplicate records.
    pub remember: usize,
}

/// What became of an event.
#[derive(Debug)]
pub enum Judged {
    /// Decided.
    Done(Parity),
    /// The digests differ and the first side's body was not kept: read the record at `at` again
    /// and diff in full (`first` carries everything else; its body is `null`).
    Full { first: Outcome, at: Option<(i32, i64)>, second: Outcome },
}

/// An outcome record as the comparator reads it: the body is left as text until needed.
#[derive(Deserialize)]
#[allow(dead_code)] // read to refuse what `Outcome` refuses, not used
struct Incoming<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(borrow)]
    route: Cow<'a, str>,
    source: Source,
    mode: EventMode,
    status: u16,
    #[serde(default, borrow)]
    body: Option<&'a RawValue>,
    #[serde(default)]
    body_encoding: BodyEncoding,
    #[serde(default, borrow)]
    content_type: Option<Cow<'a, str>>,
    #[serde(default)]
    latency_ms: f64,
    #[serde(default, borrow)]
    at: Cow<'a, str>,
    #[serde(default, borrow)]
    consumer: Option<Cow<'a, str>>,
    #[serde(default)]
    truncated: bool,
}

/// Per route: its shared name, whether a new outcome was ever seen, its pending gauge.
struct RouteState {
    name: Arc<str>,
    has_new: bool,
    pending: IntGauge,
}

/// The comparator's state.
pub struct Core {
    routes: Routes,
    metrics: CompareMetrics,
    settings: Settings,
    joiner: Joiner,
    /// Outcomes of routes with no new service yet: they wait apart, at a third of the cost.
    lone: LoneQueues,
    by_route: HashMap<String, RouteState>,
    /// Last results per route, `true` for a match.
    recent: HashMap<String, VecDeque<bool>>,
}

impl Core {
    pub fn new(routes: Routes, metrics: CompareMetrics, settings: Settings) -> Self {
        // The bounds cover both the joiner and the lone queues: applied here, not by the joiner.
        let unbounded = Limits { max_pending: usize::MAX, max_pending_bytes: usize::MAX };
        let joiner = Joiner::new(settings.remember, unbounded);
        let lone = LoneQueues::default();
        Self { routes, metrics, settings, joiner, lone, by_route: HashMap::new(), recent: HashMap::new() }
    }

    /// Takes one outcome record; `at` is where it sits on the outcomes topic (partition, offset).
    pub fn offer(&mut self, payload: &[u8], at: Option<(i32, i64)>, now: Instant) -> Vec<Judged> {
        let Ok(inc) = serde_json::from_slice::<Incoming>(payload) else {
            self.metrics.dropped.with_label_values(&[UNDECODABLE]).inc();
            return Vec::new();
        };
        let table = self.routes.load();
        let Some(route) = table.get(&inc.route) else {
            self.metrics.dropped.with_label_values(&[UNKNOWN_ROUTE]).inc();
            return Vec::new();
        };
        self.metrics.outcomes.with_label_values(&[&route.name, inc.source.as_str(), inc.mode.as_str()]).inc();
        let state = route_state(&mut self.by_route, &self.metrics, &route.name);
        let first_new = inc.source == Source::New && !state.has_new;
        state.has_new |= inc.source == Source::New;
        let (name, has_new, gauge) = (state.name.clone(), state.has_new, state.pending.clone());
        if first_new {
            // The route's first new outcome: what waited apart can pair from now on.
            for lone in self.lone.take_route(&name) {
                let waiting = lone.waiting(name.clone());
                self.joiner.insert(Arc::from(lone.id), waiting, lone.seq, lone.deadline);
            }
        }
        if !has_new && self.lone.contains(&inc.event_id) {
            self.metrics.dropped.with_label_values(&[DUPLICATE]).inc();
            return Vec::new();
        }
        let first = match self.joiner.peek_other(&inc.event_id, inc.source) {
            Err(refused) => {
                let reason = if refused == Refused::Late { LATE } else { DUPLICATE };
                self.metrics.dropped.with_label_values(&[reason]).inc();
                return Vec::new();
            }
            Ok(first) => first.map(|w| (w.source, w.mode, w.truncated)),
        };
        let Some((first_source, first_mode, first_truncated)) = first else {
            // The first side: it waits, as a digest.
            let (seq, deadline) = (self.joiner.next_seq(), now + route.compare.window);
            if has_new {
                let hashed = inc.mode == EventMode::Shadow && !inc.truncated;
                let Some(waiting) = self.waiting(route, name, &inc, hashed, at) else {
                    self.metrics.dropped.with_label_values(&[UNDECODABLE]).inc();
                    return Vec::new();
                };
                self.joiner.insert(Arc::from(&*inc.event_id), waiting, seq, deadline);
            } else {
                let (source, mode, status, truncated, encoding) =
                    (inc.source, inc.mode, inc.status, inc.truncated, inc.body_encoding);
                let id = Box::from(&*inc.event_id);
                self.lone.push(&name, Lone { id, seq, deadline, source, mode, status, truncated, encoding, at });
            }
            gauge.inc();
            return self.evict();
        };
        // The second side.
        // Judged by the legacy side's mode, as `verdict` does: only shadow pairs compare bodies.
        let legacy_mode = if first_source == Source::Legacy { first_mode } else { inc.mode };
        let needs_body = legacy_mode == EventMode::Shadow && !first_truncated && !inc.truncated;
        let Some(second) = outcome(&inc, needs_body) else {
            self.metrics.dropped.with_label_values(&[UNDECODABLE]).inc();
            return Vec::new();
        };
        let Some(first) = self.joiner.take(&inc.event_id) else { return Vec::new() };
        gauge.dec();
        self.metrics.pending_bytes.set(self.pending_bytes() as i64);
        vec![self.pair(route, &inc.event_id, first, second, needs_body)]
    }

    /// Every event whose window closed at or before `now`, decided.
    pub fn expire(&mut self, now: Instant) -> Vec<Judged> {
        let mut expired = self.joiner.expire(now);
        for (route, lone) in self.lone.expire(now) {
            self.joiner.remember_one_sided(&lone.id, lone.source);
            expired.push((Arc::from(lone.id.clone()), lone.waiting(route)));
        }
        self.metrics.pending_bytes.set(self.pending_bytes() as i64);
        expired
            .into_iter()
            .map(|(id, w)| {
                self.gauge(&w.route).dec();
                Judged::Done(verdict(&Default::default(), Joined::Expired { have: stub(&id, &w) }, now_rfc3339()))
            })
            .collect()
    }

    /// When the next window closes, if any is open.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.joiner.next_deadline(), self.lone.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Events waiting for their counterpart.
    pub fn pending(&self) -> usize {
        self.joiner.pending() + self.lone.len()
    }

    /// Bytes accounted to the waiting events (the bound `comparator.max_pending_bytes` holds).
    pub fn pending_bytes(&self) -> usize {
        self.joiner.pending_bytes() + self.lone.bytes()
    }

    /// Evicts the oldest waiting events, wherever they wait, until both bounds hold.
    fn evict(&mut self) -> Vec<Judged> {
        let limits = self.settings.limits;
        let mut out = Vec::new();
        while self.pending() > limits.max_pending || self.pending_bytes() > limits.max_pending_bytes {
            let lone_older = match (self.lone.oldest_seq(), self.joiner.oldest_seq()) {
                (Some(l), Some(j)) => l < j,
                (l, _) => l.is_some(),
            };
            let evicted = if lone_older {
                self.lone.pop_oldest().map(|(route, lone)| {
                    self.joiner.remember_one_sided(&lone.id, lone.source);
                    (Arc::from(lone.id.clone()), lone.waiting(route))
                })
            } else {
                self.joiner.evict_oldest()
            };
            let Some((id, w)) = evicted else { break };
            out.push(self.evicted(&id, w));
        }
        self.metrics.pending_bytes.set(self.pending_bytes() as i64);
        out
    }

    /// Counts a decided event in the parity metrics (`strangler_parity_total`, the ratio,
    /// `strangler_new_path_total`) and the pending-bytes gauge.
    pub fn count(&mut self, parity: &Parity) {
        let route = &parity.route;
        if let Some(label) = parity.result.new_path_label() {
            // The new path's own health: not a comparison, so the parity ratio stays as it was.
            self.metrics.new_path.with_label_values(&[route, label]).inc();
            return;
        }
        self.metrics.parity.with_label_values(&[route, parity.result.as_str()]).inc();
        if parity.result == ParityResult::Truncated {
            // Not compared: counted apart, the parity ratio stays as it was.
            return;
        }
        let window = self.recent.entry(route.clone()).or_default();
        window.push_back(parity.result == ParityResult::Match);
        while window.len() > self.settings.parity_window {
            window.pop_front();
        }
        let matches = window.iter().filter(|m| **m).count();
        self.metrics.ratio.with_label_values(&[route]).set(matches as f64 / window.len() as f64);
    }

    fn waiting(&self, route: &Route, name: Arc<str>, inc: &Incoming, hashed: bool, at: Option<(i32, i64)>) -> Option<Waiting> {
        let (digest, kept) = if hashed {
            let o = outcome(inc, true)?;
            let text = inc.body.map_or("null", |b| b.get());
            let kept = (text.len() <= self.settings.keep_body_bytes).then(|| Box::from(text));
            (BodyDigest::of(&route.compare.rules, &o), kept)
        } else {
            (None, None)
        };
        let (source, mode, status, truncated, encoding) = (inc.source, inc.mode, inc.status, inc.truncated, inc.body_encoding);
        Some(Waiting { route: name, source, mode, status, truncated, digest, encoding, kept, at })
    }

    fn evicted(&mut self, id: &str, w: Waiting) -> Judged {
        self.gauge(&w.route).dec();
        self.metrics.evicted.with_label_values(&[&w.route]).inc();
        Judged::Done(verdict(&Default::default(), Joined::Expired { have: stub(id, &w) }, now_rfc3339()))
    }

    /// Both sides are here: live, truncated and agreeing pairs are decided from the digests;
    /// a disagreeing pair is diffed in full when the first body is at hand.
    fn pair(&self, route: &Route, id: &str, first: Waiting, second: Outcome, compared: bool) -> Judged {
        let rules = &route.compare.rules;
        let agreed = compared && {
            let (legacy, new) =
                if first.source == Source::Legacy { (first.status, second.status) } else { (second.status, first.status) };
            first.digest.is_some() && first.digest == BodyDigest::of(rules, &second) && rules.status.agrees(legacy, new)
        };
        let mut full = stub(id, &first);
        if compared && !agreed {
            let Some(kept) = &first.kept else { return Judged::Full { first: full, at: first.at, second } };
            match serde_json::from_str::<Value>(kept) {
                Ok(body) => full.body = body,
                Err(_) => return Judged::Full { first: full, at: first.at, second },
            }
        }
        let (legacy, new) = sides(full, second);
        let joined = if agreed { Joined::Agreed { legacy, new } } else { Joined::Pair { legacy, new } };
        Judged::Done(verdict(rules, joined, now_rfc3339()))
    }

    fn gauge(&mut self, route: &Arc<str>) -> IntGauge {
        route_state(&mut self.by_route, &self.metrics, route).pending.clone()
    }
}

/// Orders two outcomes of an event as (legacy, new).
pub fn sides(a: Outcome, b: Outcome) -> (Outcome, Outcome) {
    if a.source == Source::Legacy {
        (a, b)
    } else {
        (b, a)
    }
}

fn route_state<'a>(by_route: &'a mut HashMap<String, RouteState>, metrics: &CompareMetrics, name: &str) -> &'a mut RouteState {
    if !by_route.contains_key(name) {
        let state = RouteState { name: Arc::from(name), has_new: false, pending: metrics.pending.with_label_values(&[name]) };
        by_route.insert(name.to_string(), state);
    }
    by_route.get_mut(name).expect("inserted above")
}

/// The record as an [`Outcome`]; the body parsed only when `body` (else `null`).
fn outcome(inc: &Incoming, body: bool) -> Option<Outcome> {
    let value = match inc.body {
        Some(raw) if body => serde_json::from_str(raw.get()).ok()?,
        _ => Value::Null,
    };
    Some(Outcome {
        event_id: inc.event_id.to_string(),
        route: inc.route.to_string(),
        source: inc.source,
        mode: inc.mode,
        status: inc.status,
        body: value,
        body_encoding: inc.body_encoding,
        content_type: None,
        latency_ms: inc.latency_ms,
        at: String::new(),
        consumer: None,
        truncated: inc.truncated,
    })
}

/// What a waiting side still says, as an [`Outcome`] with a `null` body.
fn stub(id: &str, w: &Waiting) -> Outcome {
    Outcome {
        event_id: id.to_string(),
        route: w.route.to_string(),
        source: w.source,
        mode: w.mode,
        status: w.status,
        body: Value::Null,
        body_encoding: w.encoding,
        content_type: None,
        latency_ms: 0.0,
        at: String::new(),
        consumer: None,
        truncated: w.truncated,
    }
}

pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests;
