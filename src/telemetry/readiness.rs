//! Readiness: whether this replica can serve now (`/readyz`), and what is degraded.
//!
//! Ready means: the public listener accepts a TCP connection, the spool (if configured) takes
//! writes and is below 95 % of its size, and every upstream (the monolith, `legacy.url`, and each
//! route's own `upstream`) accepts a TCP connection within [`CONNECT_TIMEOUT`], all checked at
//! the probe. Kafka being down (or the control topic not read yet) is *degraded*: reported in
//! the body and in `strangler_kafka_up`, and not ready only with `admin.ready_requires_kafka`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use serde::Serialize;

use crate::publish::spool::{Spool, SpoolHealth};

/// How long each TCP connect of a probe may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What a readiness probe needs.
pub struct Readiness {
    /// The public listener; `None` in the comparator role.
    pub public: Option<SocketAddr>,
    pub spool: Option<Arc<Spool>>,
    /// `admin.ready_requires_kafka`, resolved.
    pub requires_kafka: bool,
    /// `legacy.url`: checked with every route's own upstream.
    pub legacy: Uri,
}

/// What Kafka looks like to this replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KafkaState {
    Reachable,
    /// Kafka answers, but the topics are still being created (it was unreachable at start-up).
    CreatingTopics,
    Unreachable,
}

/// The `/readyz` body.
#[derive(Debug, Serialize)]
pub struct Report {
    pub ready: bool,
    /// Serving, but Kafka is down or the control topic not read yet.
    pub degraded: bool,
    /// Stable codes of what failed or is degraded, in this order: `listener_not_serving`,
    /// `spool_full`, `spool_unwritable`, `monolith_unreachable`, `kafka_unreachable`,
    /// `kafka_creating_topics`, `control_reading`.
    pub reasons: Vec<&'static str>,
    /// `serving`, `not_serving`, or `none` (the comparator role has no public listener).
    pub listener: &'static str,
    /// `ok`, `full`, `unwritable`, or `none` (no `[spool]`).
    pub spool: &'static str,
    /// `reachable` or `unreachable`.
    pub monolith: &'static str,
    /// Upstreams that did not accept a connection, as `host:port`.
    pub unreachable_upstreams: Vec<String>,
    pub kafka: KafkaState,
    /// `caught_up` or `reading`.
    pub control: &'static str,
    pub ready_requires_kafka: bool,
}

impl Readiness {
    /// Runs the probe. `upstreams` are the monolith URLs in use; `kafka` and `control_caught_up`
    /// come from the publisher and the control topic reader.
    pub async fn check(&self, upstreams: &[Uri], kafka: KafkaState, control_caught_up: bool) -> Report {
        let mut reasons = Vec::new();
        let listener = match self.public {
            None => "none",
            Some(addr) if connects(&loopback(addr).to_string()).await => "serving",
            Some(_) => {
                reasons.push("listener_not_serving");
                "not_serving"
            }
        };
        let spool = match self.spool.clone() {
            None => "none",
            Some(spool) => match tokio::task::spawn_blocking(move || spool.health()).await {
                Ok(Ok(())) => "ok",
                Ok(Err(SpoolHealth::Full)) => {
                    reasons.push("spool_full");
                    "full"
                }
                Ok(Err(SpoolHealth::Unwritable)) | Err(_) => {
                    reasons.push("spool_unwritable");
                    "unwritable"
                }
            },
        };
        let targets: BTreeSet<String> = upstreams.iter().filter_map(authority).collect();
        let probes = targets.into_iter().map(|t| async move { (connects(&t).await, t) });
        let unreachable: Vec<String> =
            futures_util::future::join_all(probes).await.into_iter().filter(|(ok, _)| !ok).map(|(_, t)| t).collect();
        if !unreachable.is_empty() {
            reasons.push("monolith_unreachable");
        }
        let serving = reasons.is_empty();
        match kafka {
            KafkaState::Reachable => {}
            KafkaState::Unreachable => reasons.push("kafka_unreachable"),
            KafkaState::CreatingTopics => reasons.push("kafka_creating_topics"),
        }
        if !control_caught_up {
            reasons.push("control_reading");
        }
        let degraded = kafka != KafkaState::Reachable || !control_caught_up;
        Report {
            ready: serving && !(self.requires_kafka && degraded),
            degraded,
            reasons,
            listener,
            spool,
            monolith: if unreachable.is_empty() { "reachable" } else { "unreachable" },
            unreachable_upstreams: unreachable,
            kafka,
            control: if control_caught_up { "caught_up" } else { "reading" },
            ready_requires_kafka: self.requires_kafka,
        }
    }
}

/// `0.0.0.0:p` (a wildcard listener) is reached on loopback.
fn loopback(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => SocketAddr::from(([127, 0, 0, 1], a.port())),
        SocketAddr::V6(a) if a.ip().is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port())),
        other => other,
    }
}

/// `host:port` of an upstream URL (port 80 or 443 by scheme when absent).
fn authority(uri: &Uri) -> Option<String> {
    let host = uri.host()?;
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
    Some(if host.contains(':') && !host.starts_with('[') { format!("[{host}]:{port}") } else { format!("{host}:{port}") })
}

async fn connects(target: &str) -> bool {
    matches!(tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(target)).await, Ok(Ok(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_authorities_default_their_port_by_scheme() {
        let a = |u: &str| authority(&u.parse().unwrap());
        assert_eq!(a("http://legacy.internal").as_deref(), Some("legacy.internal:80"));
        assert_eq!(a("https://legacy.internal/base").as_deref(), Some("legacy.internal:443"));
        assert_eq!(a("http://127.0.0.1:3000").as_deref(), Some("127.0.0.1:3000"));
        assert_eq!(a("http://[::1]:3000").as_deref(), Some("[::1]:3000"));
    }

    #[tokio::test]
    async fn a_closed_upstream_makes_it_unready_but_kafka_down_only_degrades() {
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up: Uri = format!("http://{}", open.local_addr().unwrap()).parse().unwrap();
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let down: Uri = format!("http://{}", closed.local_addr().unwrap()).parse().unwrap();
        drop(closed);
        let r = Readiness { public: Some(open.local_addr().unwrap()), spool: None, requires_kafka: false, legacy: up.clone() };
        let report = r.check(std::slice::from_ref(&up), KafkaState::Unreachable, false).await;
        assert!(report.ready && report.degraded, "{report:?}");
        assert_eq!(report.reasons, ["kafka_unreachable", "control_reading"]);
        let report = r.check(&[up.clone(), down], KafkaState::Reachable, true).await;
        assert!(!report.ready && !report.degraded, "{report:?}");
        assert_eq!(report.reasons, ["monolith_unreachable"]);
        let strict = Readiness { requires_kafka: true, ..r };
        assert!(!strict.check(&[up], KafkaState::CreatingTopics, true).await.ready);
    }
}
