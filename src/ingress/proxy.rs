//! The per-request flow: match a route, verify, canonicalize, publish (shadow), forward to legacy.
//!
//! Unmatched requests stream through to the default upstream untouched and are never published.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use futures_util::future::BoxFuture;
use http::{Request, Response, Uri};
use http_body_util::BodyExt;
use tower::Service;

use super::error::ProxyError;
use super::{Body, ConnInfo, Outcome, REQUEST_ID};
use crate::event::{canonicalize, Owner};
use crate::legacy::LegacyClient;
use crate::publish::Publisher;
use crate::route::{Route, RouteTable};
use crate::telemetry::{Metrics, UNMATCHED};
use crate::verify::{SignatureStatus, Webhook};

/// The wall clock, injectable so tests can check historic signature vectors.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Everything a request needs, shared by all connections.
pub struct Proxy {
    pub routes: RouteTable,
    pub default_upstream: Uri,
    pub legacy: LegacyClient,
    pub publisher: Publisher,
    pub metrics: Metrics,
    pub clock: Clock,
    /// Same limit as the body-limit layer, for the error message.
    pub max_body_bytes: usize,
}

impl Proxy {
    /// Answers one request. Never fails: every error becomes a JSON response.
    pub async fn handle(self: Arc<Self>, req: Request<Body>) -> Response<Body> {
        let peer = req.extensions().get::<ConnInfo>().map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.peer);
        let request_id = req.headers().get(REQUEST_ID).cloned();
        let route = self.routes.find(req.method(), req.uri().path()).cloned();
        let result = match &route {
            None => self.forward(UNMATCHED, &self.default_upstream, req, peer).await,
            Some(route) => self.webhook(route, req, peer).await,
        };
        let label = route.as_ref().map_or(UNMATCHED, |r| r.name.as_str());
        result.unwrap_or_else(|e| e.into_response(label, request_id.as_ref()))
    }

    async fn webhook(&self, route: &Arc<Route>, req: Request<Body>, peer: SocketAddr) -> Result<Response<Body>, ProxyError> {
        let (mut parts, body) = req.into_parts();
        let body = body.collect().await.map_err(|e| body_error(e, self.max_body_bytes))?.to_bytes();
        let webhook =
            Webhook { method: parts.method.clone(), uri: parts.uri.clone(), headers: std::mem::take(&mut parts.headers), body };
        let now = (self.clock)();
        let verified = route.verifier.check(webhook, now).map_err(|rejected| {
            self.metrics.verify.failures.with_label_values(&[&route.name, rejected.error.reason(), "enforce"]).inc();
            tracing::warn!(route = %route.name, reason = rejected.error.reason(), error = %rejected.error, "signature rejected");
            ProxyError::Signature(rejected.error)
        })?;
        if let SignatureStatus::Invalid(e) = verified.status() {
            self.metrics.verify.failures.with_label_values(&[&route.name, e.reason(), "observe"]).inc();
            tracing::warn!(route = %route.name, reason = e.reason(), error = %e, "signature invalid, forwarded (observe mode)");
        }

        // Shadow: the monolith owns every request; the event is enqueued now and delivered off
        // the response path, so Kafka's speed never shows in the sender's latency.
        let event = canonicalize(route, &verified, Owner::Legacy, "shadow", now);
        self.publisher.publish(&route.name, event);

        let (webhook, _) = verified.into_parts();
        parts.headers = webhook.headers;
        let req = Request::from_parts(parts, super::full(webhook.body));
        self.forward(&route.name, &route.upstream, req, peer).await
    }

    async fn forward(
        &self,
        route: &str,
        upstream: &Uri,
        req: Request<Body>,
        peer: SocketAddr,
    ) -> Result<Response<Body>, ProxyError> {
        let start = Instant::now();
        let result = self.legacy.forward(upstream, req, peer).await;
        match result {
            Ok(resp) => {
                self.metrics.legacy.latency.with_label_values(&[route]).observe(start.elapsed().as_secs_f64());
                let mut resp = resp.map(|b| b.map_err(Into::into).boxed());
                resp.extensions_mut().insert(Outcome { route: route.to_owned().into(), outcome: "forwarded" });
                Ok(resp)
            }
            Err(e) => {
                self.metrics.legacy.errors.with_label_values(&[route, e.reason()]).inc();
                tracing::warn!(route, error = %e, "monolith gave no answer");
                Err(ProxyError::Legacy(e))
            }
        }
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
