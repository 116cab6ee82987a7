//! Raw configuration: the TOML file exactly as an operator writes it, before any validation.
//!
//! Every struct denies unknown keys so a typo is an error, not a silently ignored setting.
//! Defaults live in `const fn default_*()` so the reference in `docs/configuration.md` can quote them.

use std::collections::BTreeMap;

use serde::Deserialize;

pub use super::raw_route::{RawCompare, RawEvent, RawMatch, RawNewPath, RawRoute, RawSignature};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub admin: RawAdmin,
    pub legacy: RawLegacy,
    #[serde(default)]
    pub kafka: RawKafka,
    #[serde(default)]
    pub comparator: RawComparator,
    #[serde(default)]
    pub dedupe: RawDedupe,
    pub spool: Option<RawSpool>,
    /// `[lag]`: consumer groups whose lag is reported.
    #[serde(default)]
    pub lag: super::lag::RawLag,
    #[serde(default, rename = "route")]
    pub routes: Vec<RawRoute>,
}

/// `[dedupe]`: delivery ids seen recently, so a sender's retry is not published twice.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDedupe {
    #[serde(default = "default_dedupe_ttl_secs")]
    pub ttl_secs: u64,
    #[serde(default = "default_dedupe_max_entries")]
    pub max_entries: usize,
}

impl Default for RawDedupe {
    fn default() -> Self {
        Self { ttl_secs: default_dedupe_ttl_secs(), max_entries: default_dedupe_max_entries() }
    }
}

/// `[spool]`: the on-disk log for events Kafka cannot take right now. Absent: no spool.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpool {
    pub dir: String,
    #[serde(default = "default_spool_max_bytes")]
    pub max_bytes: u64,
    /// `"always"`, or an interval such as `"100ms"`.
    #[serde(default = "default_spool_fsync")]
    pub fsync: String,
    /// `"drop_newest"` or `"drop_oldest"`.
    #[serde(default = "default_spool_when_full")]
    pub when_full: String,
    /// Every shadow event is appended before the sender is answered (crash-safe).
    #[serde(default)]
    pub write_ahead: bool,
}

/// `[comparator]`: joins legacy and new outcomes and records parity.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawComparator {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_comparator_group")]
    pub group_id: String,
    /// Comparisons in the sliding window behind `strangler_parity_ratio`.
    #[serde(default = "default_parity_window")]
    pub parity_window: usize,
    /// Events that may wait for their second outcome at once.
    #[serde(default = "default_max_pending")]
    pub max_pending: usize,
    /// Bytes the waiting events may take (as the comparator accounts them).
    #[serde(default = "default_max_pending_bytes")]
    pub max_pending_bytes: usize,
    /// A waiting outcome's body up to this many bytes is kept in memory; a longer one is read
    /// again from the outcomes topic if the pair must be diffed.
    #[serde(default = "default_keep_body_bytes")]
    pub keep_body_bytes: usize,
}

impl Default for RawComparator {
    fn default() -> Self {
        Self {
            enabled: true,
            group_id: default_comparator_group(),
            parity_window: default_parity_window(),
            max_pending: default_max_pending(),
            max_pending_bytes: default_max_pending_bytes(),
            keep_body_bytes: default_keep_body_bytes(),
        }
    }
}

fn default_max_pending() -> usize {
    100_000
}

fn default_max_pending_bytes() -> usize {
    32 * 1024 * 1024
}

fn default_keep_body_bytes() -> usize {
    512
}

/// `[server]`: the public listener webhook senders talk to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    /// Request bytes all matched requests may buffer at once; past it, 503 before reading a body.
    #[serde(default = "default_max_buffered_body_bytes")]
    pub max_buffered_body_bytes: u64,
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    #[serde(default = "default_shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// The whole request body must arrive within this long after the request head.
    #[serde(default = "default_body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// Request line plus headers, in bytes.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: u64,
    #[serde(default = "default_max_headers")]
    pub max_headers: u64,
    /// Past it, requests are shed at once with 503.
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: u64,
    /// At it, the listener stops accepting until a connection closes.
    #[serde(default = "default_max_connections")]
    pub max_connections: u64,
    /// CIDRs whose X-Forwarded-* headers are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Keep request headers whose names contain `_` (dropped by default, as nginx does).
    #[serde(default)]
    pub underscores_in_headers: bool,
    /// `[server.tls]`: serve HTTPS. Absent: plain HTTP.
    pub tls: Option<super::tls::RawTls>,
}

/// `[admin]`: metrics, health and the admin API, kept off the public listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    #[serde(default = "default_admin_listen")]
    pub listen: String,
    /// `GET /api/...` needs a token too (changes always do).
    #[serde(default)]
    pub read_requires_token: bool,
    /// `[[admin.token]]`: named bearer tokens for the admin API.
    #[serde(default, rename = "token")]
    pub tokens: Vec<RawToken>,
    /// `/readyz` fails while Kafka is down. Default: true without a spool, false with one.
    #[serde(default)]
    pub ready_requires_kafka: Option<bool>,
    /// `[admin.tls]`: serve HTTPS. Absent: plain HTTP.
    pub tls: Option<super::tls::RawTls>,
}

/// `[[admin.token]]`: one named bearer token, from an environment variable or a file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    pub name: String,
    pub env: Option<String>,
    pub file: Option<String>,
}

/// `[legacy]`: the monolith, and the default upstream for everything no route matches.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLegacy {
    pub url: String,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_response_timeout_ms")]
    pub response_timeout_ms: u64,
    #[serde(default = "default_true")]
    pub preserve_host: bool,
    /// `[legacy.tls]`: for `https://` upstreams.
    pub tls: Option<super::legacy_tls::RawLegacyTls>,
}

/// `[kafka]`: where events go. No `brokers` means the embedded, non-durable broker.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKafka {
    pub brokers: Option<String>,
    #[serde(default = "default_true")]
    pub create_topics: bool,
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    #[serde(default = "default_replication_factor")]
    pub replication_factor: i32,
    #[serde(default = "default_flush_timeout_ms")]
    pub flush_timeout_ms: u64,
    #[serde(default = "default_outcomes_topic")]
    pub outcomes_topic: String,
    #[serde(default = "default_parity_topic")]
    pub parity_topic: String,
    /// Events Kafka refuses for good (too large, invalid, not authorised) go here, with the reason.
    #[serde(default = "default_dead_letter_topic")]
    pub dead_letter_topic: String,
    /// Route state of record (compacted, key = route); every replica reads it.
    #[serde(default = "default_control_topic")]
    pub control_topic: String,
    /// One record per dial change (not compacted).
    #[serde(default = "default_audit_topic")]
    pub audit_topic: String,
    /// Topics of the new services (their dead-letter topics...) created at start-up with strangler's own.
    #[serde(default)]
    pub service_topics: Vec<String>,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl` (see `kafka_security.rs`).
    #[serde(default = "default_security_protocol")]
    pub security_protocol: String,
    pub tls: Option<super::kafka_security::RawKafkaTls>,
    pub sasl: Option<super::kafka_security::RawKafkaSasl>,
    /// Passed to librdkafka as-is, after strangler's own settings, so an operator can override them.
    #[serde(default)]
    pub librdkafka: BTreeMap<String, String>,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            max_body_bytes: default_max_body_bytes(),
            max_buffered_body_bytes: default_max_buffered_body_bytes(),
            request_timeout_ms: default_request_timeout_ms(),
            header_read_timeout_ms: default_header_read_timeout_ms(),
            shutdown_grace_ms: default_shutdown_grace_ms(),
            body_read_timeout_ms: default_body_read_timeout_ms(),
            max_header_bytes: default_max_header_bytes(),
            max_headers: default_max_headers(),
            max_concurrent_requests: default_max_concurrent_requests(),
            max_connections: default_max_connections(),
            trusted_proxies: Vec::new(),
            underscores_in_headers: false,
            tls: None,
        }
    }
}

impl Default for RawAdmin {
    fn default() -> Self {
        Self {
            listen: default_admin_listen(),
            read_requires_token: false,
            tokens: Vec::new(),
            ready_requires_kafka: None,
            tls: None,
        }
    }
}

impl Default for RawKafka {
    fn default() -> Self {
        Self {
            brokers: None,
            create_topics: true,
            partitions: default_partitions(),
            replication_factor: default_replication_factor(),
            flush_timeout_ms: default_flush_timeout_ms(),
            outcomes_topic: default_outcomes_topic(),
            parity_topic: default_parity_topic(),
            dead_letter_topic: default_dead_letter_topic(),
            service_topics: Vec::new(),
            control_topic: default_control_topic(),
            audit_topic: default_audit_topic(),
            security_protocol: default_security_protocol(),
            tls: None,
            sasl: None,
            librdkafka: BTreeMap::new(),
        }
    }
}

fn default_listen() -> String {
    "0.0.0.0:8080".into()
}
fn default_admin_listen() -> String {
    "127.0.0.1:9090".into()
}
const fn default_max_body_bytes() -> u64 {
    1024 * 1024
}
const fn default_max_buffered_body_bytes() -> u64 {
    64 * 1024 * 1024
}
const fn default_request_timeout_ms() -> u64 {
    30_000
}
const fn default_header_read_timeout_ms() -> u64 {
    10_000
}
const fn default_shutdown_grace_ms() -> u64 {
    10_000
}
const fn default_body_read_timeout_ms() -> u64 {
    10_000
}
const fn default_max_header_bytes() -> u64 {
    16 * 1024
}
const fn default_max_headers() -> u64 {
    100
}
const fn default_max_concurrent_requests() -> u64 {
    1024
}
const fn default_max_connections() -> u64 {
    10_000
}
const fn default_connect_timeout_ms() -> u64 {
    2_000
}
const fn default_response_timeout_ms() -> u64 {
    15_000
}
const fn default_true() -> bool {
    true
}
const fn default_partitions() -> i32 {
    3
}
const fn default_replication_factor() -> i32 {
    1
}
const fn default_flush_timeout_ms() -> u64 {
    5_000
}
fn default_security_protocol() -> String {
    "plaintext".into()
}
fn default_outcomes_topic() -> String {
    "strangler.outcomes".into()
}
fn default_parity_topic() -> String {
    "strangler.parity".into()
}
fn default_comparator_group() -> String {
    "strangler-comparator".into()
}
const fn default_parity_window() -> usize {
    1000
}
const fn default_dedupe_ttl_secs() -> u64 {
    24 * 60 * 60
}
const fn default_dedupe_max_entries() -> usize {
    500_000
}
fn default_control_topic() -> String {
    "strangler.control".into()
}
fn default_audit_topic() -> String {
    "strangler.audit".into()
}
fn default_dead_letter_topic() -> String {
    "strangler.dead-letter".into()
}
const fn default_spool_max_bytes() -> u64 {
    1024 * 1024 * 1024
}
fn default_spool_fsync() -> String {
    "100ms".into()
}
fn default_spool_when_full() -> String {
    "drop_newest".into()
}
