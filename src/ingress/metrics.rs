//! Metrics layer: counts every answered request by route, status and outcome, and times it.
//!
//! The route and outcome are only known deep in the stack, so whoever builds the response tags it
//! with an [`Outcome`] extension; this layer reads it on the way out.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use pin_project_lite::pin_project;
use prometheus::{IntCounter, Registry};
use tower::{Layer, Service};

use super::{Body, Outcome, RouteTag, UNROUTED};
use crate::telemetry::IngressMetrics;

#[derive(Clone)]
pub struct MetricsLayer {
    metrics: IngressMetrics,
}

impl MetricsLayer {
    pub fn new(metrics: IngressMetrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = RequestMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequestMetrics { inner, metrics: self.metrics.clone() }
    }
}

#[derive(Clone)]
pub struct RequestMetrics<S> {
    inner: S,
    metrics: IngressMetrics,
}

impl<S, B> Service<Request<B>> for RequestMetrics<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = MetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        MetricsFuture { inner: self.inner.call(req), metrics: self.metrics.clone(), start: Instant::now() }
    }
}

pin_project! {
    pub struct MetricsFuture<F> {
        #[pin]
        inner: F,
        metrics: IngressMetrics,
        start: Instant,
    }
}

impl<F> Future for MetricsFuture<F>
where
    F: Future<Output = Result<Response<Body>, Infallible>>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(resp) = std::task::ready!(this.inner.poll(cx));
        let seconds = this.start.elapsed().as_secs_f64();
        let status = resp.status();
        match resp.extensions().get::<Outcome>() {
            // A routed answer counts on its route's handles, resolved when the route first answered.
            Some(Outcome { route: RouteTag::Route(route), outcome }) => {
                route.answered(status, outcome);
                match &route.new_latency {
                    Some(new) if crate::ingress::new_path::NEW_PATH_OUTCOMES.contains(outcome) => new.observe(seconds),
                    _ => route.latency.observe(seconds),
                }
            }
            unrouted => {
                let outcome = unrouted.map_or("answered", |o| o.outcome);
                this.metrics.requests.with_label_values(&[UNROUTED, status.as_str(), outcome]).inc();
                this.metrics.latency.with_label_values(&[UNROUTED, "legacy"]).observe(seconds);
            }
        }
        Poll::Ready(Ok(resp))
    }
}

/// `strangler_load_shed_total`: requests refused with 503 `overloaded`, registered into `registry`.
///
/// Registered here rather than with the other metrics so the listener owns its own counter; a
/// second registration into the same registry keeps working, unexposed, and says so in the log.
pub fn load_shed_counter(registry: &Registry) -> IntCounter {
    let counter = IntCounter::new(
        "strangler_load_shed_total",
        "Requests refused with 503 overloaded because server.max_concurrent_requests were in flight.",
    )
    .expect("a valid metric name and help");
    if let Err(e) = registry.register(Box::new(counter.clone())) {
        tracing::warn!(error = %e, "strangler_load_shed_total not registered");
    }
    counter
}
