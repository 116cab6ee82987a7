//! Raw `[[route]]` tables: match, signature, event mapping, traffic policy and comparison
//! rules, guard and rollout, exactly as written, before validation.

use serde::Deserialize;

use crate::compare::rules::{BodyRule, StatusRule};
use crate::route::assign::Mode as RouteMode;
use crate::route::{GuardAction, OnPublishFailure, OnTimeout};
use crate::verify::{Algorithm, Encoding, Mode};

/// One `[[route]]`: a legacy webhook endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: String,
    #[serde(rename = "match")]
    pub matcher: RawMatch,
    pub topic: String,
    /// Overrides `legacy.url` for this route.
    pub upstream: Option<String>,
    pub signature: RawSignature,
    #[serde(default)]
    pub event: RawEvent,
    #[serde(default = "default_route_mode")]
    pub mode: RouteMode,
    /// Percent of entities owned by the new path in `split` mode, two decimals at most.
    #[serde(default)]
    pub share: f64,
    /// Assignment salt; defaults to the route name. Changing it reshuffles every entity.
    pub salt: Option<String>,
    #[serde(default)]
    pub new_path_response: RawNewPath,
    #[serde(default = "default_on_timeout")]
    pub on_timeout: OnTimeout,
    #[serde(default = "default_on_publish_failure")]
    pub on_publish_failure: OnPublishFailure,
    #[serde(default = "default_publish_timeout_ms")]
    pub publish_timeout_ms: u64,
    #[serde(default)]
    pub compare: RawCompare,
    /// Automatic rollback or hold when parity or the new path's error rate falls.
    pub guard: Option<RawGuard>,
    /// Automatic steps up of the share while the guard is healthy.
    pub rollout: Option<RawRollout>,
    /// The JSON Schemas its events are judged by at the edge.
    pub contract: Option<super::contract::RawContract>,
}

/// What a new-owned request is answered with.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNewPath {
    #[serde(default = "default_new_status")]
    pub status: u16,
    #[serde(default = "default_new_body")]
    pub body: String,
    pub content_type: Option<String>,
    /// Wait this long for the new service's outcome and answer with it.
    pub await_outcome_ms: Option<u64>,
}

impl Default for RawNewPath {
    fn default() -> Self {
        Self { status: default_new_status(), body: default_new_body(), content_type: None, await_outcome_ms: None }
    }
}

/// How a route's legacy and new outcomes are compared.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCompare {
    #[serde(default = "default_window_ms")]
    pub window_ms: u64,
    #[serde(default = "default_status_rule")]
    pub status: StatusRule,
    #[serde(default = "default_body_rule")]
    pub body: BodyRule,
    #[serde(default)]
    pub ignore: Vec<String>,
    #[serde(default)]
    pub numeric_tolerance: f64,
    #[serde(default)]
    pub unordered: Vec<String>,
    #[serde(default = "default_samples")]
    pub samples: usize,
}

impl Default for RawCompare {
    fn default() -> Self {
        Self {
            window_ms: default_window_ms(),
            status: default_status_rule(),
            body: default_body_rule(),
            ignore: Vec::new(),
            numeric_tolerance: 0.0,
            unordered: Vec::new(),
            samples: default_samples(),
        }
    }
}

/// `guard = { ... }`: when the route dials back by itself. Every key has a default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGuard {
    #[serde(default = "default_min_parity")]
    pub min_parity: f64,
    #[serde(default = "default_min_samples")]
    pub min_samples: u64,
    /// A humantime duration such as `"5m"`.
    #[serde(default = "default_guard_window")]
    pub window: String,
    #[serde(default = "default_max_new_error_rate")]
    pub max_new_error_rate: f64,
    #[serde(default = "default_guard_action")]
    pub action: GuardAction,
}

/// `rollout = { steps = [...], interval = "10m" }`: the shares to step through, in percent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRollout {
    pub steps: Vec<f64>,
    /// A humantime duration such as `"10m"`.
    #[serde(default = "default_rollout_interval")]
    pub interval: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    /// Letters in the path's literal segments match in either case.
    #[serde(default)]
    pub case_insensitive: bool,
    /// More paths (or templates) that are this route.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Methods on the route's paths forwarded untouched instead of refused with 405.
    #[serde(default)]
    pub other_methods: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSignature {
    pub scheme: String,
    #[serde(default)]
    pub secrets_env: Vec<String>,
    #[serde(default = "default_mode")]
    pub mode: Mode,
    #[serde(default = "default_tolerance_secs")]
    pub tolerance_secs: u64,
    // Generic `hmac` scheme only.
    pub header: Option<String>,
    pub algorithm: Option<Algorithm>,
    pub encoding: Option<Encoding>,
    pub prefix: Option<String>,
    pub timestamp_header: Option<String>,
    pub timestamp_separator: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvent {
    pub id_header: Option<String>,
    pub id_pointer: Option<String>,
    pub type_from_header: Option<String>,
    pub type_pointer: Option<String>,
    #[serde(rename = "type")]
    pub fixed_type: Option<String>,
    pub type_prefix: Option<String>,
    pub key_pointer: Option<String>,
    pub key_header: Option<String>,
    /// A placeholder of the route's path template whose capture is the partition key.
    pub key_path: Option<String>,
    /// Placeholders whose captures become CloudEvents extension attributes (`ce_<name>`).
    #[serde(default)]
    pub path_extensions: Vec<String>,
    pub subject_pointer: Option<String>,
    #[serde(default)]
    pub forward_headers: Vec<String>,
}

fn default_method() -> String {
    "POST".into()
}
const fn default_mode() -> Mode {
    Mode::Enforce
}
const fn default_tolerance_secs() -> u64 {
    300
}
const fn default_route_mode() -> RouteMode {
    RouteMode::Shadow
}
const fn default_on_timeout() -> OnTimeout {
    OnTimeout::Static
}
const fn default_on_publish_failure() -> OnPublishFailure {
    OnPublishFailure::Legacy
}
const fn default_publish_timeout_ms() -> u64 {
    5_000
}
const fn default_new_status() -> u16 {
    202
}
fn default_new_body() -> String {
    r#"{"accepted":true}"#.into()
}
const fn default_window_ms() -> u64 {
    30_000
}
const fn default_status_rule() -> StatusRule {
    StatusRule::Exact
}
const fn default_body_rule() -> BodyRule {
    BodyRule::Json
}
const fn default_samples() -> usize {
    20
}
const fn default_min_parity() -> f64 {
    0.99
}
const fn default_min_samples() -> u64 {
    200
}
fn default_guard_window() -> String {
    "5m".into()
}
const fn default_max_new_error_rate() -> f64 {
    0.01
}
const fn default_guard_action() -> GuardAction {
    GuardAction::Rollback
}
fn default_rollout_interval() -> String {
    "10m".into()
}
