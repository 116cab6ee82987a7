//! Configuration: parse the TOML file, validate it purely, and hand out validated types.
//!
//! Parse ([`raw`]) → validate ([`validate::validate`]) → [`Validated`]. Every error names the
//! file, line, key, what was expected and what was found.

mod admin;
mod contract;
mod control;
mod kafka_security;
pub mod lag;
mod legacy_tls;
pub mod locate;
mod mapping;
mod matching;
pub mod raw;
mod raw_route;
mod spool;
pub mod tls;
pub mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use http::Uri;

use crate::route::Route;
pub use legacy_tls::{LegacyTls, RawLegacyTls};
pub use validate::{validate, EnvLookup};

/// A configuration ready to run: every value checked, every secret loaded.
#[derive(Debug)]
pub struct Validated {
    pub server: Server,
    pub admin: Admin,
    pub legacy: Legacy,
    pub kafka: Kafka,
    pub comparator: Comparator,
    pub dedupe: Dedupe,
    /// `[spool]`; `None` when the file has none.
    pub spool: Option<crate::publish::spool::Settings>,
    /// `[lag]`: the consumer groups whose lag is reported.
    pub lag: lag::Lag,
    pub routes: Vec<Route>,
    /// Accepted, but worth fixing (weak secrets): logged at start-up and reload, printed by
    /// `check-config`.
    pub warnings: Vec<ConfigWarning>,
}

/// `[dedupe]`.
#[derive(Debug, Clone)]
pub struct Dedupe {
    pub ttl: Duration,
    pub max_entries: usize,
}

/// `[comparator]`.
#[derive(Debug, Clone)]
pub struct Comparator {
    pub enabled: bool,
    pub group_id: String,
    pub parity_window: usize,
    /// `max_pending`, `max_pending_bytes`.
    pub limits: crate::compare::join::Limits,
    pub keep_body_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub max_buffered_body_bytes: u64,
    pub request_timeout: Duration,
    pub header_read_timeout: Duration,
    pub shutdown_grace: Duration,
    pub body_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_concurrent_requests: usize,
    pub max_connections: usize,
    pub trusted_proxies: Vec<crate::ingress::forwarded::Cidr>,
    /// Keep request headers whose names contain `_`; by default they are dropped.
    pub underscores_in_headers: bool,
    /// `[server.tls]`: the certificate pair to serve HTTPS with; `None`: plain HTTP.
    pub tls: Option<tls::Tls>,
}

#[derive(Debug, Clone)]
pub struct Admin {
    pub listen: SocketAddr,
    pub read_requires_token: bool,
    pub tokens: Vec<crate::control::auth::Token>,
    /// `/readyz` answers 503 while Kafka is down (`admin.ready_requires_kafka`, resolved).
    pub ready_requires_kafka: bool,
    /// `[admin.tls]`: the certificate pair to serve HTTPS with; `None`: plain HTTP.
    pub tls: Option<tls::Tls>,
}

#[derive(Debug, Clone)]
pub struct Legacy {
    pub url: Uri,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub preserve_host: bool,
    /// `[legacy.tls]`: the client configuration for every `https://` upstream.
    pub tls: LegacyTls,
}

#[derive(Clone)]
pub struct Kafka {
    /// `None`: start the embedded, non-durable broker.
    pub brokers: Option<String>,
    pub create_topics: bool,
    pub partitions: i32,
    pub replication_factor: i32,
    pub flush_timeout: Duration,
    pub outcomes_topic: String,
    pub parity_topic: String,
    pub dead_letter_topic: String,
    pub control_topic: String,
    pub audit_topic: String,
    /// New services' topics strangler creates at start-up (`kafka.service_topics`).
    pub service_topics: Vec<String>,
    /// The security settings' librdkafka properties (`security.protocol`, `ssl.*`, `sasl.*`),
    /// then `[kafka.librdkafka]` over them. Holds the SASL password: never log it.
    pub librdkafka: BTreeMap<String, String>,
}

/// Like a derived `Debug`, with the value of every librdkafka property naming a password or a
/// secret (`sasl.password`, `ssl.key.password`, ...) shown as `<redacted>`.
impl std::fmt::Debug for Kafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let librdkafka: BTreeMap<&str, &str> = self
            .librdkafka
            .iter()
            .map(|(k, v)| {
                let secret = k.contains("password") || k.contains("secret");
                (k.as_str(), if secret { "<redacted>" } else { v.as_str() })
            })
            .collect();
        f.debug_struct("Kafka")
            .field("brokers", &self.brokers)
            .field("create_topics", &self.create_topics)
            .field("partitions", &self.partitions)
            .field("replication_factor", &self.replication_factor)
            .field("flush_timeout", &self.flush_timeout)
            .field("outcomes_topic", &self.outcomes_topic)
            .field("parity_topic", &self.parity_topic)
            .field("dead_letter_topic", &self.dead_letter_topic)
            .field("control_topic", &self.control_topic)
            .field("audit_topic", &self.audit_topic)
            .field("service_topics", &self.service_topics)
            .field("librdkafka", &librdkafka)
            .finish()
    }
}

/// One mistake in the file, located by key path (e.g. `route[0].signature.scheme`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub key: String,
    /// What was expected, or serde's whole message when it came from the parser.
    pub expected: String,
    /// What was found; empty when `expected` already says it.
    pub found: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, expected: impl Into<String>, found: impl Into<String>) -> Self {
        Self { key: key.into(), expected: expected.into(), found: found.into() }
    }
}

/// Something accepted but worth fixing, rendered `file:line:col: warning: key `k`: expected …, found …`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigWarning {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub warning: ConfigError,
}

impl ConfigWarning {
    fn unlocated(warning: ConfigError) -> Self {
        Self { file: String::new(), line: 0, col: 0, warning }
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = &self.warning;
        write!(
            f,
            "{}:{}:{}: warning: key `{}`: expected {}, found {}",
            self.file, self.line, self.col, w.key, w.expected, w.found
        )
    }
}

/// Every error of one file, rendered `file:line:col: key `k`: expected …, found …`.
#[derive(Debug)]
pub struct LoadError {
    pub file: String,
    /// `(line, column, error)`, in file order.
    pub errors: Vec<(usize, usize, ConfigError)>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (line, col, e)) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{line}:{col}: key `{}`: ", self.file, e.key)?;
            if e.found.is_empty() {
                write!(f, "{}", e.expected)?;
            } else {
                write!(f, "expected {}, found {}", e.expected, e.found)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// Reads, parses and validates a file, with secrets from the process environment.
pub fn load(path: &Path) -> Result<Validated, LoadError> {
    let file = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|e| LoadError {
        file: file.clone(),
        errors: vec![(0, 0, ConfigError::new("(file)", "a readable file", e.to_string()))],
    })?;
    let cfg = load_str(&src, &file, &|var| std::env::var(var).ok())?;
    for w in &cfg.warnings {
        tracing::warn!(warning = %w, "configuration accepted with a warning");
    }
    Ok(cfg)
}

/// Parses and validates `src`, naming it `file` in errors.
pub fn load_str(src: &str, file: &str, env: EnvLookup<'_>) -> Result<Validated, LoadError> {
    let index = locate::KeyIndex::new(src);
    let raw: raw::RawConfig = toml::from_str(src).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let key = index.key_at(offset).unwrap_or("(top level)").to_string();
        // serde's message is one line: "invalid type: string \"x\", expected u64".
        let message = e.message().trim().replace('\n', " ");
        let (line, col) = locate::line_col(src, offset);
        LoadError { file: file.to_string(), errors: vec![(line, col, ConfigError::new(key, message, ""))] }
    })?;
    let mut cfg = validate(raw, env).map_err(|errs| {
        let mut errors: Vec<_> = errs
            .into_iter()
            .map(|e| {
                let (line, col) = index.offset_of(&e.key).map_or((0, 0), |o| locate::line_col(src, o));
                (line, col, e)
            })
            .collect();
        errors.sort_by_key(|(line, col, _)| (*line, *col));
        LoadError { file: file.to_string(), errors }
    })?;
    for w in &mut cfg.warnings {
        (w.line, w.col) = index.offset_of(&w.warning.key).map_or((0, 0), |o| locate::line_col(src, o));
        w.file = file.to_string();
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests;
