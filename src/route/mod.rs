//! Routes: which legacy webhook endpoint a request is for, and how that endpoint is handled.
//!
//! Matching is on method and canonical path ([`path`], [`table`]; the query string is ignored),
//! with path templates ([`template`]). Anything not near a route passes through to the default
//! upstream untouched. Each route carries its traffic policy; its mode and
//! share are state, not configuration: the file gives only `initial`, and what is in force lives
//! in [`crate::control::state::Dials`].

pub mod assign;
pub mod path;
pub mod table;
pub mod template;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, Uri};

use crate::compare::rules::CompareRules;
use crate::event::spec::EventSpec;
use crate::verify::Verifier;
use assign::{Mode, Share};
pub use table::{Refusal, Resolved, RouteTable};
use template::Matching;

/// One validated `[[route]]`.
#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub method: Method,
    /// The path template as configured (canonical), e.g. `/webhooks/{tenant}/stripe`.
    pub path: String,
    /// Aliases, case sensitivity and pass-through methods (`match.*`).
    pub matching: Matching,
    pub topic: String,
    /// Base URL of the monolith for this route (`http://host:port`).
    pub upstream: Uri,
    pub verifier: Verifier,
    pub event: EventSpec,
    /// Salt of the sticky assignment hash.
    pub salt: String,
    /// Mode and share a route starts with when the control topic has no record for it.
    pub initial: (Mode, Share),
    /// Automatic rollback or hold when parity or the new path's error rate falls.
    pub guard: Option<GuardSpec>,
    /// Automatic steps up of the share while the guard is healthy.
    pub rollout: Option<RolloutSpec>,
    pub new_path: NewPath,
    pub compare: CompareSpec,
    /// `route.contract`: the schemas its events are judged by at the edge.
    pub contract: Option<Arc<crate::contract::Contract>>,
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

/// `route.guard`: when parity or the new path's errors go bad, dial back by itself.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardSpec {
    /// Trip when matches over samples fall below this (0–1).
    pub min_parity: f64,
    /// Judge only with at least this many shadow comparisons in the window.
    pub min_samples: u64,
    /// The span of time the figures cover (never before the last change of the dial).
    pub window: Duration,
    /// Trip when live events failing (status ≥ 500 or no outcome) over live events exceed this (0–1).
    pub max_new_error_rate: f64,
    pub action: GuardAction,
}

/// What a tripped guard does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardAction {
    /// Share 0, mode shadow; the rollout pauses.
    Rollback,
    /// Keep the share; the rollout pauses.
    Hold,
}

/// `route.rollout`: step the share up on a schedule while the guard is healthy.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutSpec {
    /// Shares to step through, rising.
    pub steps: Vec<Share>,
    /// Least time at each step before the next.
    pub interval: Duration,
}

/// The route table in force, swapped whole by a reload; a request loads it once.
pub type Routes = Arc<arc_swap::ArcSwap<RouteTable>>;
