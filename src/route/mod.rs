//! Routes: which legacy webhook endpoint a request is for, and how that endpoint is handled.
//!
//! Matching is exact on method and path (the query string is ignored). Anything unmatched passes
//! through to the default upstream untouched. Each route carries its traffic policy; mode and
//! share sit in a [`Dial`] that can change while the proxy runs.

pub mod assign;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, Uri};

use crate::compare::rules::CompareRules;
use crate::event::spec::EventSpec;
use crate::verify::Verifier;
use assign::{Mode, Share};

/// One validated `[[route]]`.
#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub method: Method,
    pub path: String,
    pub topic: String,
    /// Base URL of the monolith for this route (`http://host:port`).
    pub upstream: Uri,
    pub verifier: Verifier,
    pub event: EventSpec,
    /// Salt of the sticky assignment hash.
    pub salt: String,
    pub dial: Dial,
    pub new_path: NewPath,
    pub compare: CompareSpec,
}

/// What happens when the new path owns a request.
#[derive(Debug, Clone)]
pub struct NewPath {
    /// The static answer: always, or when the awaited outcome is late (`on_timeout = "static"`).
    pub status: StatusCode,
    pub body: Bytes,
    pub content_type: HeaderValue,
    /// Wait this long for the new service's outcome and answer with it.
    pub await_outcome: Option<Duration>,
    pub on_timeout: OnTimeout,
    pub on_publish_failure: OnPublishFailure,
    /// How long Kafka may take to acknowledge a live event.
    pub publish_timeout: Duration,
}

/// The answer when an awaited outcome does not arrive in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// The route's static `new_path_response`; the timeout is counted.
    Static,
    /// `504 outcome_timeout`.
    GatewayTimeout,
}

/// What a new-owned request does when Kafka cannot take its event in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnPublishFailure {
    /// Forward to the monolith instead; counted as a fallback.
    Legacy,
    /// `503 publish_failed` with `Retry-After`, so the sender retries.
    Reject,
}

/// How the comparator treats this route's outcomes.
#[derive(Debug, Clone)]
pub struct CompareSpec {
    pub rules: CompareRules,
    /// How long to wait for the second outcome of an event.
    pub window: Duration,
    /// Mismatch samples kept for the admin API.
    pub samples: usize,
}

/// A route's live mode and share. Lock-free: read on every request, written by an operator.
#[derive(Debug)]
pub struct Dial {
    mode: AtomicU8,
    share: AtomicU32,
}

const MODES: [Mode; 4] = [Mode::Passthrough, Mode::Shadow, Mode::Split, Mode::Cutover];

impl Dial {
    pub fn new(mode: Mode, share: Share) -> Self {
        let dial = Self { mode: AtomicU8::new(0), share: AtomicU32::new(0) };
        dial.set(mode, share);
        dial
    }

    /// The current mode and share.
    pub fn get(&self) -> (Mode, Share) {
        let mode = MODES[usize::from(self.mode.load(Ordering::Acquire)).min(MODES.len() - 1)];
        (mode, Share::from_bp(self.share.load(Ordering::Acquire)).unwrap_or(Share::ZERO))
    }

    pub fn set(&self, mode: Mode, share: Share) {
        // Share first: a reader seeing the new mode never sees a stale share for it.
        self.share.store(share.bp(), Ordering::Release);
        let index = MODES.iter().position(|m| *m == mode).unwrap_or(1) as u8;
        self.mode.store(index, Ordering::Release);
    }
}

/// Lookup of routes by method and path.
#[derive(Debug, Default)]
pub struct RouteTable {
    by_path: HashMap<String, Vec<Arc<Route>>>,
    in_order: Vec<Arc<Route>>,
}

impl RouteTable {
    /// Builds the table; config validation has already refused duplicate endpoints.
    pub fn new(routes: Vec<Arc<Route>>) -> Self {
        let mut by_path: HashMap<String, Vec<Arc<Route>>> = HashMap::new();
        for r in &routes {
            by_path.entry(r.path.clone()).or_default().push(r.clone());
        }
        Self { by_path, in_order: routes }
    }

    /// The route for this request, if any.
    pub fn find(&self, method: &Method, path: &str) -> Option<&Arc<Route>> {
        self.by_path.get(path)?.iter().find(|r| r.method == method)
    }

    /// The route called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Route>> {
        self.in_order.iter().find(|r| r.name == name)
    }

    /// Routes in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.in_order.iter()
    }
}
