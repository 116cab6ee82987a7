//! The per-request flow: match a route, verify, canonicalize, assign an owner, then take the
//! legacy path (forward, publish the shadow event and the legacy outcome) or the new one
//! ([`super::new_path`]).
//!
//! Unmatched requests, and routes in passthrough mode, stream through to the monolith untouched
//! and are never published.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use futures_util::future::BoxFuture;
use http::{header, Request, Response, Uri};
use http_body_util::BodyExt;
use tower::Service;

use super::body_budget::{BodyBudget, Reservation};
use super::captured::{Captured, Done};
use super::contract::DeadLettered;
use super::error::ProxyError;
use super::{full, Body, ConnInfo, Outcome as Tag, RouteTag, REQUEST_ID};
use crate::compare::outcome::{Answer, EventMode, Outcome, Source};
use crate::compare::waiters::Waiters;
use crate::control::state::{DialState, Dials};
use crate::event::{canonicalize_parsed, CanonicalEvent, Owner};
use crate::legacy::LegacyClient;
use crate::publish::{EventSink, RecordSink};
use crate::route::assign::{assign, Mode};
use crate::route::{Refusal, Resolved, Route, Routes};
use crate::telemetry::{Metrics, RouteMetrics};
use crate::verify::{Mode as VerifyMode, SignatureStatus, Webhook};

/// The wall clock, injectable so tests can check historic signature vectors.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The most of a monolith answer a legacy outcome keeps (less if `server.max_body_bytes` is
/// less): even JSON-escaped at 6 bytes a byte, it fits Kafka's default 1 MB record limit. A longer answer reaches
/// the sender whole; its outcome keeps this prefix and is marked `truncated`.
pub const OUTCOME_BODY_CAP: usize = 128 * 1024;

/// Everything a request needs, shared by all connections.
pub struct Proxy {
    /// The route table in force; a reload swaps it whole.
    pub routes: Routes,
    /// Each route's dial in force; loaded once per request.
    pub dials: Arc<Dials>,
    pub default_upstream: Uri,
    pub legacy: LegacyClient,
    pub events: EventSink,
    pub records: RecordSink,
    pub metrics: Metrics,
    pub clock: Clock,
    /// Same limit as the body-limit layer; also caps captured legacy responses.
    pub max_body_bytes: usize,
    pub outcomes_topic: String,
    pub waiters: Waiters,
    /// `server.max_buffered_body_bytes`: what matched requests may buffer between them.
    pub body_budget: Arc<BodyBudget>,
}

impl Proxy {
    /// Answers one request. Never fails: every error becomes a JSON response.
    pub async fn handle(self: Arc<Self>, req: Request<Body>) -> Response<Body> {
        let peer = req.extensions().get::<ConnInfo>().map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.peer);
        let request_id = req.headers().get(REQUEST_ID).cloned();
        // The route table decides on the canonical path; the request keeps its original target.
        let (route, verdict) = match self.routes.load().resolve(req.method(), req.uri().path()) {
            Resolved::Route(r) => (Some(r), Ok(true)),
            Resolved::Pass(r) => (r, Ok(false)),
            Resolved::Refuse(r, why) => (Some(r), Err(why)),
        };
        // One snapshot of the dial decides everything about this request, however it changes meanwhile.
        let dial = route.as_ref().and_then(|r| self.dials.get(&r.name));
        // The route's metric handles, resolved when it first answered: no lookup by label below.
        let handles = match &route {
            Some(r) => self.metrics.routes.get(&r.name),
            None => self.metrics.routes.unmatched().clone(),
        };
        let result = match (&route, dial, verdict) {
            (None, _, _) => self.forward(&handles, &self.default_upstream, req, peer).await,
            (_, None, _) => self.forward(self.metrics.routes.unmatched(), &self.default_upstream, req, peer).await,
            // A route in passthrough mode refuses nothing: every spelling and method streams through.
            (Some(route), Some(dial), _) if dial.mode == Mode::Passthrough => {
                self.forward(&handles, &route.upstream, req, peer).await
            }
            (Some(route), Some(_), Ok(false)) => self.forward(&handles, &route.upstream, req, peer).await,
            (Some(route), Some(dial), Ok(true)) => self.webhook(route, &handles, &dial, req, peer).await,
            (Some(route), Some(_), Err(why)) => {
                let e = match why {
                    Refusal::AmbiguousPath => ProxyError::AmbiguousPath,
                    Refusal::MethodNotAllowed(allow) => ProxyError::MethodNotAllowed(allow),
                };
                handles.refused(e.code());
                tracing::info!(route = %route.name, method = %req.method(), target = %req.uri(), code = e.code(), "refused near the route");
                Err(e)
            }
        };
        result.unwrap_or_else(|e| e.into_response(RouteTag::Route(handles), request_id.as_ref()))
    }

    async fn webhook(
        &self,
        route: &Arc<Route>,
        handles: &Arc<RouteMetrics>,
        dial: &DialState,
        req: Request<Body>,
        peer: SocketAddr,
    ) -> Result<Response<Body>, ProxyError> {
        let (mut parts, body) = req.into_parts();
        // Reserve what the body may grow to before reading a byte of it ([`BodyBudget`]); the
        // reservation is held until the answer's head is ready.
        let size = Reservation::size_for(&body, self.max_body_bytes);
        let Some(mut reservation) = self.body_budget.reserve(&route.name, size) else {
            return Err(ProxyError::BodyBudgetExhausted);
        };
        let body = reservation.collect(body).await.map_err(|e| body_error(e, self.max_body_bytes))?;
        let webhook =
            Webhook { method: parts.method.clone(), uri: parts.uri.clone(), headers: std::mem::take(&mut parts.headers), body };
        let now = (self.clock)();
        let verified = route.verifier.check(webhook, now).map_err(|rejected| {
            handles.verify_failure(rejected.error.reason(), VerifyMode::Enforce);
            let server_time = rejected.error.server_time();
            tracing::warn!(route = %route.name, reason = rejected.error.reason(), error = %rejected.error, server_time, "signature rejected");
            ProxyError::Signature(rejected.error)
        })?;
        let invalid = matches!(verified.status(), SignatureStatus::Invalid(_));
        if let SignatureStatus::Invalid(e) = verified.status() {
            handles.verify_failure(e.reason(), VerifyMode::Observe);
            let server_time = e.server_time();
            tracing::warn!(route = %route.name, reason = e.reason(), error = %e, server_time, "signature invalid, forwarded (observe mode)");
        }

        let (mut event, parsed) = canonicalize_parsed(route, &verified, now);
        // Judged once, whoever owns it: `Some` when a `dead_letter` contract keeps it off the topic.
        let dead = self.judge_contract(route, &mut event, parsed.as_ref());
        drop(parsed);
        // An unverified delivery is the monolith's, as before strangler: the new path never acts on it.
        let owner = if invalid { Owner::Legacy } else { assign(dial.mode, &route.salt, &event.key, dial.share) };
        event.assign(owner);
        handles.assigned(owner);
        let (webhook, _) = verified.into_parts();
        parts.headers = webhook.headers;
        let req = Request::from_parts(parts, webhook.body);
        if invalid {
            // Observe mode: published flagged `ce_stranglersignature=invalid` every time it comes,
            // but it never enters dedupe and has no legacy outcome, so a forged delivery can claim
            // neither a genuine delivery's id nor its comparison.
            self.publish_judged(route, event, dead.as_ref()).await;
            return self.forward(handles, &route.upstream, req.map(full), peer).await;
        }
        // A sender's retry of a delivery still reaches its owner, but is not published again.
        let first = self.events.first_time(&route.name, &event.id);
        if !first {
            tracing::info!(route = %route.name, event_id = %event.id, "repeated delivery: not published again");
        }
        match (owner, dead) {
            (Owner::Legacy, dead) => self.legacy_owned(route, handles, req, event, peer, first, dead).await,
            (Owner::New, None) => self.new_owned(route, handles, req, event, peer, first).await,
            (Owner::New, Some(dead)) => self.new_owned_invalid(route, handles, req, event, peer, first, dead).await,
        }
    }

    /// The monolith owns the request: the event is published as shadow off the response path
    /// (or dead-lettered, `dead`), and the monolith's answer is captured as the legacy outcome.
    #[allow(clippy::too_many_arguments)]
    async fn legacy_owned(
        &self,
        route: &Route,
        handles: &Arc<RouteMetrics>,
        req: Request<bytes::Bytes>,
        event: CanonicalEvent,
        peer: SocketAddr,
        first: bool,
        dead: Option<DeadLettered>,
    ) -> Result<Response<Body>, ProxyError> {
        let event_id = event.id.clone();
        if first {
            // Returns once the event is queued for Kafka or written to the spool.
            self.publish_judged(route, event, dead.as_ref()).await;
        }
        let start = Instant::now();
        let resp = self.forward(handles, &route.upstream, req.map(full), peer).await?;
        if !first {
            // A retry's answer would be a duplicate outcome: pass it through untouched.
            return Ok(resp);
        }
        // The monolith has acted: its whole answer goes to the sender, streamed, however large;
        // the legacy outcome keeps a bounded prefix and is published when the answer ends.
        let (parts, body) = resp.into_parts();
        let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let status = parts.status.as_u16();
        let (records, topic, route_name) = (self.records.clone(), self.outcomes_topic.clone(), route.name.clone());
        let done: Done = Box::new(move |body, truncated| {
            // An answer dropped while the runtime shuts down has nowhere to publish from.
            if tokio::runtime::Handle::try_current().is_err() {
                tracing::warn!(route = %route_name, event_id = %event_id, "legacy outcome not published: shutting down");
                return;
            }
            let answer = Answer {
                event_id: &event_id,
                route: &route_name,
                source: Source::Legacy,
                mode: EventMode::Shadow,
                status,
                content_type: content_type.as_deref(),
                latency_ms: start.elapsed().as_secs_f64() * 1000.0,
                consumer: "strangler",
                truncated,
            };
            // Encoded from the raw answer: a JSON body is checked, not parsed into a tree.
            records.send_record(&topic, &event_id, answer.encode(&body), RecordSink::OUTCOME_RECORD);
        });
        let cap = self.max_body_bytes.min(OUTCOME_BODY_CAP);
        Ok(Response::from_parts(parts, Captured::new(body, cap, done).boxed()))
    }

    pub(super) fn send_outcome(&self, outcome: &Outcome) {
        send_outcome(&self.records, &self.outcomes_topic, outcome);
    }

    /// Forwards to the monolith and streams its answer back.
    pub(super) async fn forward(
        &self,
        route: &Arc<RouteMetrics>,
        upstream: &Uri,
        req: Request<Body>,
        peer: SocketAddr,
    ) -> Result<Response<Body>, ProxyError> {
        let start = Instant::now();
        match self.legacy.forward(upstream, req, peer).await {
            Ok(resp) => {
                route.legacy_latency.observe(start.elapsed().as_secs_f64());
                let mut resp = resp.map(|b| b.map_err(Into::into).boxed());
                resp.extensions_mut().insert(Tag { route: RouteTag::Route(route.clone()), outcome: "forwarded" });
                Ok(resp)
            }
            Err(e) => {
                route.legacy_error(e.reason());
                tracing::warn!(route = &*route.name, error = %e, "monolith gave no answer");
                Err(ProxyError::Legacy(e))
            }
        }
    }
}

fn send_outcome(records: &RecordSink, topic: &str, outcome: &Outcome) {
    match serde_json::to_vec(outcome) {
        Ok(value) => records.send_record(topic, &outcome.event_id, value, RecordSink::OUTCOME_RECORD),
        Err(e) => tracing::error!(error = %e, "encoding an outcome failed"),
    }
}

fn body_error(e: crate::BoxError, limit: usize) -> ProxyError {
    if e.is::<http_body_util::LengthLimitError>() {
        ProxyError::BodyTooLarge(limit)
    } else {
        ProxyError::BodyRead(e.to_string())
    }
}

/// The proxy as the innermost tower service.
#[derive(Clone)]
pub struct ProxyService(pub Arc<Proxy>);

impl Service<Request<Body>> for ProxyService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let proxy = self.0.clone();
        Box::pin(async move { Ok(proxy.handle(req).await) })
    }
}
