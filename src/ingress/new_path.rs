//! The new-owned path: the monolith is not called. The event is published as `live` and the
//! proxy answers once Kafka has acknowledged it, with the route's static response or, with
//! `await_outcome_ms`, the new service's own outcome.
//!
//! Once Kafka has the event, the proxy also writes its own record of the answer to the outcomes
//! topic (`source: legacy`, `mode: live`), so the comparator can tell a live event the new service
//! never answered (`live_missing`) from one it did.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};

use super::error::ProxyError;
use super::proxy::Proxy;
use super::{full, Body, Outcome as Tag, RouteTag};
use crate::compare::outcome::{BodyEncoding, EventMode, Outcome, Source};
use crate::event::CanonicalEvent;
use crate::route::{OnPublishFailure, OnTimeout, Route};
use crate::telemetry::RouteMetrics;

impl Proxy {
    pub(super) async fn new_owned(
        &self,
        route: &Route,
        handles: &Arc<RouteMetrics>,
        req: Request<Bytes>,
        event: CanonicalEvent,
        peer: SocketAddr,
        first: bool,
    ) -> Result<Response<Body>, ProxyError> {
        if !first {
            // Already on Kafka: the new service handles it once; the sender gets the static answer.
            return Ok(static_answer(route, "duplicate").into_response(handles));
        }
        let start = Instant::now();
        let policy = &route.new_path;
        // Listen before publishing, so a fast service cannot answer before anyone waits.
        let wait = policy.await_outcome.map(|limit| (limit, self.waiters.register(&event.id)));
        if let Err(failure) = self.events.publish_live(&route.name, &event).await {
            let reason = failure.reason;
            tracing::warn!(route = %route.name, event_id = %event.id, reason = reason.as_str(), error = %failure.error, possibly_persisted = failure.possibly_persisted, "live event not acknowledged");
            if failure.possibly_persisted {
                // Kafka may hold it, so the new service may act on it: the monolith must not as well.
                return Err(ProxyError::PublishFailed);
            }
            return match policy.on_publish_failure {
                OnPublishFailure::Legacy => {
                    // The assignment falls back: the monolith handles this one as before.
                    handles.fell_back(reason);
                    self.forward(handles, &route.upstream, req.map(full), peer).await
                }
                OnPublishFailure::Reject => Err(ProxyError::PublishFailed),
            };
        }
        let answer = match wait {
            None => static_answer(route, "published"),
            Some((limit, wait)) => match wait.wait(limit).await {
                Some(outcome) => outcome_answer(&outcome),
                None => {
                    handles.outcome_timed_out();
                    match policy.on_timeout {
                        OnTimeout::Static => static_answer(route, "outcome_timeout"),
                        OnTimeout::GatewayTimeout => {
                            let err = ProxyError::OutcomeTimeout;
                            // The request id is added by the rescue layer; the record keeps the rest.
                            let body = serde_json::json!({"error": {"code": err.code(), "message": err.to_string()}});
                            self.send_live_record(
                                route,
                                &event.id,
                                err.status(),
                                Some("application/json"),
                                body.to_string().as_bytes(),
                                start,
                            );
                            return Err(err);
                        }
                    }
                }
            },
        };
        let content_type = answer.content_type.to_str().ok();
        self.send_live_record(route, &event.id, answer.status, content_type, &answer.body, start);
        Ok(answer.into_response(handles))
    }

    /// strangler's record of what it answered for a live event the new path took.
    fn send_live_record(
        &self,
        route: &Route,
        event_id: &str,
        status: StatusCode,
        content_type: Option<&str>,
        body: &[u8],
        start: Instant,
    ) {
        let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
        let outcome = Outcome::from_response(
            event_id,
            &route.name,
            Source::Legacy,
            EventMode::Live,
            status.as_u16(),
            content_type,
            body,
            latency_ms,
            "strangler",
        );
        self.send_outcome(&outcome);
    }
}

/// The `outcome` tags of answers the new path gave (`strangler_requests_total`), which count as
/// `owner="new"` in `strangler_request_duration_seconds`.
pub const NEW_PATH_OUTCOMES: [&str; 4] = ["new_outcome", "published", "outcome_timeout", "duplicate"];

/// An answer before it becomes a response, so the live record can carry its body.
struct Answer {
    status: StatusCode,
    content_type: HeaderValue,
    body: Bytes,
    tag: &'static str,
}

impl Answer {
    fn into_response(self, route: &Arc<RouteMetrics>) -> Response<Body> {
        let mut resp = Response::new(full(self.body));
        *resp.status_mut() = self.status;
        resp.headers_mut().insert(header::CONTENT_TYPE, self.content_type);
        resp.extensions_mut().insert(Tag { route: RouteTag::Route(route.clone()), outcome: self.tag });
        resp
    }
}

fn static_answer(route: &Route, tag: &'static str) -> Answer {
    let p = &route.new_path;
    Answer { status: p.status, content_type: p.content_type.clone(), body: p.body.clone(), tag }
}

/// The new service's decision, as the sender would have had it from a real service.
fn outcome_answer(outcome: &Outcome) -> Answer {
    let status = StatusCode::from_u16(outcome.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = match (&outcome.content_type, outcome.body_encoding) {
        (Some(ct), _) => HeaderValue::from_str(ct).unwrap_or(HeaderValue::from_static("application/octet-stream")),
        (None, BodyEncoding::Json) => HeaderValue::from_static("application/json"),
        (None, BodyEncoding::Text) => HeaderValue::from_static("text/plain; charset=utf-8"),
        (None, BodyEncoding::Base64) => HeaderValue::from_static("application/octet-stream"),
    };
    Answer { status, content_type, body: Bytes::from(outcome.body_bytes()), tag: "new_outcome" }
}
