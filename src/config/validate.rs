//! Pure validation: [`RawConfig`] → [`Validated`], collecting every mistake with its key path.
//!
//! No I/O here except the injected environment lookup, so each rule is a table test.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};

use super::control;
use super::mapping::{event_spec, verifier};
use super::raw::{RawCompare, RawConfig, RawRoute};
use super::{Admin, Comparator, ConfigError, ConfigWarning, Dedupe, Kafka, Legacy, Server, Validated};
use crate::compare::rules::{CompareRules, PointerPattern};
use crate::route::assign::Share;
use crate::route::{CompareSpec, NewPath, Route};

/// Environment lookup, injected so tests need not touch the process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Validates a parsed file. Returns every error found, not just the first.
pub fn validate(raw: RawConfig, env: EnvLookup<'_>) -> Result<Validated, Vec<ConfigError>> {
    let mut errs = Vec::new();
    let server = Server {
        listen: socket_addr("server.listen", &raw.server.listen, &mut errs),
        max_body_bytes: usize::try_from(raw.server.max_body_bytes).unwrap_or(usize::MAX),
        max_buffered_body_bytes: raw.server.max_buffered_body_bytes,
        request_timeout: millis("server.request_timeout_ms", raw.server.request_timeout_ms, &mut errs),
        header_read_timeout: millis("server.header_read_timeout_ms", raw.server.header_read_timeout_ms, &mut errs),
        shutdown_grace: Duration::from_millis(raw.server.shutdown_grace_ms),
        body_read_timeout: millis("server.body_read_timeout_ms", raw.server.body_read_timeout_ms, &mut errs),
        max_header_bytes: within("server.max_header_bytes", raw.server.max_header_bytes, 1024..=1024 * 1024, &mut errs),
        max_headers: within("server.max_headers", raw.server.max_headers, 1..=1000, &mut errs),
        max_concurrent_requests: within(
            "server.max_concurrent_requests",
            raw.server.max_concurrent_requests,
            1..=1_000_000,
            &mut errs,
        ),
        max_connections: within("server.max_connections", raw.server.max_connections, 1..=1_000_000, &mut errs),
        trusted_proxies: raw
            .server
            .trusted_proxies
            .iter()
            .enumerate()
            .filter_map(|(i, cidr)| {
                cidr.parse::<crate::ingress::forwarded::Cidr>()
                    .map_err(|why| {
                        let expected = "a CIDR such as 10.0.0.0/8 or 2001:db8::/32, or one address";
                        errs.push(ConfigError::new(format!("server.trusted_proxies[{i}]"), expected, format!("`{cidr}` ({why})")))
                    })
                    .ok()
            })
            .collect(),
        underscores_in_headers: raw.server.underscores_in_headers,
        tls: super::tls::validate("server.tls", raw.server.tls.as_ref(), &mut errs),
    };
    if raw.server.max_body_bytes == 0 {
        errs.push(ConfigError::new("server.max_body_bytes", "a size in bytes above 0", "0"));
    }
    if raw.server.max_buffered_body_bytes < raw.server.max_body_bytes {
        let expected =
            format!("at least server.max_body_bytes ({}), or no body could ever be buffered", raw.server.max_body_bytes);
        errs.push(ConfigError::new("server.max_buffered_body_bytes", expected, raw.server.max_buffered_body_bytes.to_string()));
    }
    /// A count within `range`, as usize.
    fn within(key: &str, n: u64, range: std::ops::RangeInclusive<u64>, errs: &mut Vec<ConfigError>) -> usize {
        if !range.contains(&n) {
            errs.push(ConfigError::new(key, format!("a number from {} to {}", range.start(), range.end()), n.to_string()));
        }
        usize::try_from(n.clamp(*range.start(), *range.end())).unwrap_or(usize::MAX)
    }
    let admin = Admin {
        listen: socket_addr("admin.listen", &raw.admin.listen, &mut errs),
        read_requires_token: raw.admin.read_requires_token,
        tokens: super::admin::tokens(&raw.admin.tokens, env, &mut errs),
        ready_requires_kafka: super::admin::ready_requires_kafka(&raw.admin, raw.spool.is_some()),
        tls: super::tls::validate("admin.tls", raw.admin.tls.as_ref(), &mut errs),
    };
    let legacy = Legacy {
        url: upstream_url("legacy.url", &raw.legacy.url, &mut errs),
        connect_timeout: millis("legacy.connect_timeout_ms", raw.legacy.connect_timeout_ms, &mut errs),
        response_timeout: millis("legacy.response_timeout_ms", raw.legacy.response_timeout_ms, &mut errs),
        preserve_host: raw.legacy.preserve_host,
        tls: super::legacy_tls::validate(raw.legacy.tls.as_ref(), &mut errs),
    };
    let kafka = Kafka {
        brokers: raw.kafka.brokers.clone().filter(|b| !b.trim().is_empty()),
        create_topics: raw.kafka.create_topics,
        partitions: raw.kafka.partitions,
        replication_factor: raw.kafka.replication_factor,
        flush_timeout: Duration::from_millis(raw.kafka.flush_timeout_ms),
        outcomes_topic: raw.kafka.outcomes_topic.clone(),
        parity_topic: raw.kafka.parity_topic.clone(),
        dead_letter_topic: raw.kafka.dead_letter_topic.clone(),
        control_topic: raw.kafka.control_topic.clone(),
        audit_topic: raw.kafka.audit_topic.clone(),
        service_topics: raw.kafka.service_topics.clone(),
        // Strangler's security settings first, then the operator's passthrough, which wins.
        librdkafka: super::kafka_security::properties(
            &raw.kafka.security_protocol,
            raw.kafka.tls.as_ref(),
            raw.kafka.sasl.as_ref(),
            raw.kafka.brokers.as_deref().is_none_or(|b| b.trim().is_empty()),
            env,
            &mut errs,
        )
        .into_iter()
        .chain(raw.kafka.librdkafka.clone())
        .collect(),
    };
    for (key, topic) in strangler_topics(&kafka) {
        if !topic_name_ok(topic) {
            errs.push(ConfigError::new(key, TOPIC_EXPECTED, format!("`{topic}`")));
        }
    }
    for (i, topic) in kafka.service_topics.iter().enumerate() {
        if !topic_name_ok(topic) {
            errs.push(ConfigError::new(format!("kafka.service_topics[{i}]"), TOPIC_EXPECTED, format!("`{topic}`")));
        }
    }
    let spool = raw.spool.as_ref().and_then(|s| super::spool::validate(s, &mut errs));
    let lag = super::lag::validate(&raw.lag, &mut errs);
    let dedupe = Dedupe { ttl: Duration::from_secs(raw.dedupe.ttl_secs), max_entries: raw.dedupe.max_entries };
    let comparator = Comparator {
        enabled: raw.comparator.enabled,
        group_id: raw.comparator.group_id.clone(),
        parity_window: raw.comparator.parity_window.max(1),
        limits: crate::compare::join::Limits {
            max_pending: raw.comparator.max_pending,
            max_pending_bytes: raw.comparator.max_pending_bytes,
        },
        keep_body_bytes: raw.comparator.keep_body_bytes,
    };
    comparator_bounds(&raw.comparator, &mut errs);
    if raw.kafka.partitions < 1 {
        errs.push(ConfigError::new("kafka.partitions", "at least 1", raw.kafka.partitions.to_string()));
    }
    if raw.kafka.replication_factor < 1 {
        let found = raw.kafka.replication_factor.to_string();
        errs.push(ConfigError::new("kafka.replication_factor", "at least 1", found));
    }

    let mut names = HashSet::new();
    let mut routes = Vec::new();
    let mut keys = Vec::new();
    for (i, r) in raw.routes.iter().enumerate() {
        let at = format!("route[{i}]");
        if !names.insert(r.name.clone()) {
            errs.push(ConfigError::new(format!("{at}.name"), "a route name not used before", format!("duplicate `{}`", r.name)));
        }
        if let Some(route) = route(&at, r, &legacy.url, env, &mut errs) {
            routes.push(route);
            keys.push(at);
        }
    }
    own_topics(&raw.routes, &kafka, &mut errs);
    let pairs: Vec<(String, &Route)> = keys.into_iter().zip(&routes).collect();
    super::matching::overlaps(&pairs, &mut errs);
    if errs.is_empty() {
        let warnings =
            super::mapping::secret_warnings(&raw.routes, &routes, env).into_iter().map(ConfigWarning::unlocated).collect();
        Ok(Validated { server, admin, legacy, kafka, comparator, dedupe, spool, lag, routes, warnings })
    } else {
        Err(errs)
    }
}

/// The topics strangler writes for itself, with their keys.
fn strangler_topics(kafka: &Kafka) -> [(&'static str, &String); 5] {
    [
        ("kafka.outcomes_topic", &kafka.outcomes_topic),
        ("kafka.parity_topic", &kafka.parity_topic),
        ("kafka.dead_letter_topic", &kafka.dead_letter_topic),
        ("kafka.control_topic", &kafka.control_topic),
        ("kafka.audit_topic", &kafka.audit_topic),
    ]
}

/// A route's topic must not be one strangler writes for itself (outcomes, parity, dead letters,
/// control, audit) or one the new services publish to: their records would be read as the
/// other's (a dead letter counted as the route's event, an event as an outcome).
fn own_topics(routes: &[RawRoute], kafka: &Kafka, errs: &mut Vec<ConfigError>) {
    let own = strangler_topics(kafka);
    let services = kafka.service_topics.iter().map(|t| ("kafka.service_topics", t));
    for (i, r) in routes.iter().enumerate() {
        if let Some((key, _)) = own.into_iter().chain(services.clone()).find(|(_, t)| **t == r.topic) {
            let expected = format!("a topic other than strangler's own and the new services' (it is {key})");
            errs.push(ConfigError::new(format!("route[{i}].topic"), expected, format!("`{}`", r.topic)));
        }
    }
}

fn route(at: &str, r: &RawRoute, default_upstream: &Uri, env: EnvLookup<'_>, errs: &mut Vec<ConfigError>) -> Option<Route> {
    let before = errs.len();
    if r.name.is_empty() || !r.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        errs.push(ConfigError::new(format!("{at}.name"), "letters, digits, `-` or `_`", format!("`{}`", r.name)));
    }
    let matching = super::matching::matching(at, &r.matcher, errs);
    let topic_ok = !r.topic.is_empty()
        && r.topic.len() <= 249
        && r.topic.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !topic_ok {
        errs.push(ConfigError::new(
            format!("{at}.topic"),
            "a Kafka topic name (letters, digits, `.`, `_`, `-`; at most 249)",
            format!("`{}`", r.topic),
        ));
    }
    let upstream = match &r.upstream {
        Some(u) => upstream_url(&format!("{at}.upstream"), u, errs),
        None => default_upstream.clone(),
    };
    let verifier = verifier(&format!("{at}.signature"), &r.signature, env, errs);
    let params: Vec<&str> = matching.as_ref().map(|(_, m)| m.path.params().collect()).unwrap_or_default();
    let event = verifier.as_ref().map(|v| event_spec(&format!("{at}.event"), &r.name, &r.event, v.scheme(), &params, errs));
    if errs.len() != before {
        return None;
    }
    let share = Share::from_percent(r.share).unwrap_or_else(|found| {
        errs.push(ConfigError::new(format!("{at}.share"), "a percent from 0 to 100 with at most two decimals", found));
        Share::ZERO
    });
    let new_path = new_path(at, r, errs);
    let compare = compare_spec(&format!("{at}.compare"), &r.compare, errs);
    if errs.len() != before {
        return None;
    }
    let (method, matching) = matching?;
    Some(Route {
        name: r.name.clone(),
        method,
        path: matching.path.text.clone(),
        matching,
        topic: r.topic.clone(),
        upstream,
        verifier: verifier?,
        event: event?,
        salt: r.salt.clone().unwrap_or_else(|| r.name.clone()),
        initial: (r.mode, share),
        guard: r.guard.as_ref().and_then(|g| control::guard(at, g, errs)),
        rollout: r.rollout.as_ref().and_then(|x| control::rollout(at, x, errs)),
        new_path,
        compare,
        contract: r.contract.as_ref().and_then(|c| super::contract::validate(&format!("{at}.contract"), c, errs)).map(Arc::new),
    })
}

fn new_path(at: &str, r: &RawRoute, errs: &mut Vec<ConfigError>) -> NewPath {
    let n = &r.new_path_response;
    let status = StatusCode::from_u16(n.status).ok().filter(|s| s.as_u16() >= 200).unwrap_or_else(|| {
        errs.push(ConfigError::new(
            format!("{at}.new_path_response.status"),
            "an HTTP status from 200 to 599",
            n.status.to_string(),
        ));
        StatusCode::ACCEPTED
    });
    let default_type =
        if serde_json::from_str::<serde_json::Value>(&n.body).is_ok() { "application/json" } else { "text/plain; charset=utf-8" };
    let content_type = HeaderValue::from_str(n.content_type.as_deref().unwrap_or(default_type)).unwrap_or_else(|_| {
        errs.push(ConfigError::new(
            format!("{at}.new_path_response.content_type"),
            "a valid header value",
            format!("{:?}", n.content_type),
        ));
        HeaderValue::from_static("application/json")
    });
    NewPath {
        status,
        body: Bytes::from(n.body.clone()),
        content_type,
        await_outcome: n.await_outcome_ms.map(|ms| millis(&format!("{at}.new_path_response.await_outcome_ms"), ms, errs)),
        on_timeout: r.on_timeout,
        on_publish_failure: r.on_publish_failure,
        publish_timeout: millis(&format!("{at}.publish_timeout_ms"), r.publish_timeout_ms, errs),
    }
}

/// The comparator's bounds: at least one waiting event, room for a few, a kept body within them.
fn comparator_bounds(c: &super::raw::RawComparator, errs: &mut Vec<ConfigError>) {
    use crate::compare::join::ENTRY_OVERHEAD;
    if c.max_pending < 1 {
        errs.push(ConfigError::new("comparator.max_pending", "at least 1", c.max_pending.to_string()));
    }
    let least = 16 * ENTRY_OVERHEAD;
    if c.max_pending_bytes < least {
        errs.push(ConfigError::new("comparator.max_pending_bytes", format!("at least {least}"), c.max_pending_bytes.to_string()));
    } else if c.keep_body_bytes > c.max_pending_bytes / 16 {
        let expected = "at most a sixteenth of comparator.max_pending_bytes";
        errs.push(ConfigError::new("comparator.keep_body_bytes", expected, c.keep_body_bytes.to_string()));
    }
}

fn compare_spec(at: &str, c: &RawCompare, errs: &mut Vec<ConfigError>) -> CompareSpec {
    let patterns = |key: &str, list: &[String], errs: &mut Vec<ConfigError>| -> Vec<PointerPattern> {
        list.iter()
            .enumerate()
            .filter_map(|(j, p)| {
                PointerPattern::parse(p)
                    .map_err(|expected| errs.push(ConfigError::new(format!("{at}.{key}[{j}]"), expected, format!("`{p}`"))))
                    .ok()
            })
            .collect()
    };
    if !(c.numeric_tolerance >= 0.0 && c.numeric_tolerance.is_finite()) {
        errs.push(ConfigError::new(format!("{at}.numeric_tolerance"), "a number of 0 or more", c.numeric_tolerance.to_string()));
    }
    let rules = CompareRules {
        status: c.status,
        body: c.body,
        ignore: patterns("ignore", &c.ignore, errs),
        numeric_tolerance: c.numeric_tolerance,
        unordered: patterns("unordered", &c.unordered, errs),
    };
    CompareSpec { rules, window: millis(&format!("{at}.window_ms"), c.window_ms, errs), samples: c.samples }
}

fn socket_addr(key: &str, s: &str, errs: &mut Vec<ConfigError>) -> SocketAddr {
    s.parse().unwrap_or_else(|_| {
        errs.push(ConfigError::new(key, "an address such as 127.0.0.1:8080", format!("`{s}`")));
        SocketAddr::from(([0, 0, 0, 0], 0))
    })
}

fn millis(key: &str, ms: u64, errs: &mut Vec<ConfigError>) -> Duration {
    if ms == 0 {
        errs.push(ConfigError::new(key, "a duration in milliseconds above 0", "0"));
    }
    Duration::from_millis(ms)
}

/// An upstream is `http://host[:port]` or `https://host[:port]` (TLS per `[legacy.tls]`): paths
/// are appended from the request, so a base path is refused.
fn upstream_url(key: &str, s: &str, errs: &mut Vec<ConfigError>) -> Uri {
    let expected = "an http:// URL or https:// URL with a host and no path, e.g. http://127.0.0.1:3000";
    match s.parse::<Uri>() {
        Ok(u)
            if matches!(u.scheme_str(), Some("http" | "https"))
                && u.authority().is_some()
                && matches!(u.path(), "" | "/")
                && u.query().is_none() =>
        {
            u
        }
        _ => {
            errs.push(ConfigError::new(key, expected, format!("`{s}`")));
            Uri::from_static("http://invalid")
        }
    }
}

pub(super) const TOPIC_EXPECTED: &str = "a Kafka topic name (letters, digits, `.`, `_`, `-`; at most 249)";

pub(super) fn topic_name_ok(t: &str) -> bool {
    !t.is_empty() && t.len() <= 249 && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}
