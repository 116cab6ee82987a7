//! The new-owned path: the monolith is not called. The event is published as `live` and the
//! proxy answers once Kafka has acknowledged it, with the route's static response or, with
//! `await_outcome_ms`, the new service's own outcome.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};

use super::error::ProxyError;
use super::proxy::Proxy;
use super::{full, Body, Outcome as Tag};
use crate::compare::outcome::{BodyEncoding, Outcome};
use crate::event::CanonicalEvent;
use crate::route::{OnPublishFailure, OnTimeout, Route};

impl Proxy {
    pub(super) async fn new_owned(
        &self,
        route: &Route,
        req: Request<Bytes>,
        event: CanonicalEvent,
        peer: SocketAddr,
        first: bool,
    ) -> Result<Response<Body>, ProxyError> {
        if !first {
            // Already on Kafka: the new service handles it once; the sender gets the static answer.
            return Ok(static_answer(route, "duplicate"));
        }
        let policy = &route.new_path;
        // Listen before publishing, so a fast service cannot answer before anyone waits.
        let wait = policy.await_outcome.map(|limit| (limit, self.waiters.register(&event.id)));
        if let Err(failure) = self.publisher.publish_live(&route.name, &event).await {
            let reason = failure.reason;
            tracing::warn!(route = %route.name, event_id = %event.id, reason = reason.as_str(), error = %failure.error, possibly_persisted = failure.possibly_persisted, "live event not acknowledged");
            if failure.possibly_persisted {
                // Kafka may hold it, so the new service may act on it: the monolith must not as well.
                return Err(ProxyError::PublishFailed);
            }
            return match policy.on_publish_failure {
                OnPublishFailure::Legacy => {
                    // The assignment falls back: the monolith handles this one as before.
                    self.metrics.routing.fallbacks.with_label_values(&[&route.name, reason.as_str()]).inc();
                    self.forward(&route.name, &route.upstream, req.map(full), peer).await
                }
                OnPublishFailure::Reject => Err(ProxyError::PublishFailed),
            };
        }
        let Some((limit, wait)) = wait else {
            return Ok(static_answer(route, "published"));
        };
        match wait.wait(limit).await {
            Some(outcome) => Ok(outcome_answer(route, &outcome)),
            None => {
                self.metrics.routing.outcome_timeouts.with_label_values(&[&route.name]).inc();
                match policy.on_timeout {
                    OnTimeout::Static => Ok(static_answer(route, "outcome_timeout")),
                    OnTimeout::GatewayTimeout => Err(ProxyError::OutcomeTimeout),
                }
            }
        }
    }
}

fn static_answer(route: &Route, tag: &'static str) -> Response<Body> {
    let p = &route.new_path;
    answer(route, p.status, p.content_type.clone(), p.body.clone(), tag)
}

/// The new service's decision, as the sender would have had it from a real service.
fn outcome_answer(route: &Route, outcome: &Outcome) -> Response<Body> {
    let status = StatusCode::from_u16(outcome.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = match (&outcome.content_type, outcome.body_encoding) {
        (Some(ct), _) => HeaderValue::from_str(ct).unwrap_or(HeaderValue::from_static("application/octet-stream")),
        (None, BodyEncoding::Json) => HeaderValue::from_static("application/json"),
        (None, BodyEncoding::Text) => HeaderValue::from_static("text/plain; charset=utf-8"),
        (None, BodyEncoding::Base64) => HeaderValue::from_static("application/octet-stream"),
    };
    answer(route, status, content_type, Bytes::from(outcome.body_bytes()), "new_outcome")
}

fn answer(route: &Route, status: StatusCode, content_type: HeaderValue, body: Bytes, tag: &'static str) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, content_type);
    resp.extensions_mut().insert(Tag { route: route.name.clone().into(), outcome: tag });
    resp
}
