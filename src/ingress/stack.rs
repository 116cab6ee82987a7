//! The public request stack, outermost layer first. Each layer says why it sits where it does.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use tower::{Service, ServiceBuilder};
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};

use super::body_limit::BodyLimitLayer;
use super::metrics::MetricsLayer;
use super::proxy::{Proxy, ProxyService};
use super::timeout::TimeoutLayer;
use super::{Body, REQUEST_ID};

/// Builds the stack around `proxy`.
pub fn build(
    proxy: Arc<Proxy>,
    request_timeout: Duration,
    max_body_bytes: usize,
) -> impl Service<Request<Incoming>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone + Send + 'static {
    let metrics = proxy.metrics.ingress.clone();
    ServiceBuilder::new()
        // First, so every later layer, log line, error body and the monolith see the same id;
        // a sender's own X-Request-Id is kept.
        .layer(SetRequestIdLayer::new(REQUEST_ID, UlidRequestId))
        // Echo the id to the sender, whatever answered (monolith, timeout or limit).
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        // Outside the timeout and the limit, so their answers are counted too.
        .layer(MetricsLayer::new(metrics))
        // Bounds the whole exchange so a stuck monolith or client cannot hold a slot forever.
        .layer(TimeoutLayer::new(request_timeout))
        // Innermost before the proxy: nothing buffers a body past the limit.
        .layer(BodyLimitLayer::new(max_body_bytes))
        .service(ProxyService(proxy))
}

/// Request ids are ULIDs: sortable by time, unique without coordination.
#[derive(Clone, Copy)]
struct UlidRequestId;

impl MakeRequestId for UlidRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&ulid::Ulid::new().to_string()).ok().map(RequestId::new)
    }
}
