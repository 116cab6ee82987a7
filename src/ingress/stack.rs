//! The public request stack, outermost layer first. Each layer says why it sits where it does.

use std::convert::Infallible;
use std::sync::Arc;

use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use tower::{Service, ServiceBuilder};
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};

use super::body_limit::BodyLimitLayer;
use super::forwarded::ForwardedLayer;
use super::hygiene::{adopt_request_id, HygieneLayer};
use super::load_shed::LoadShedLayer;
use super::metrics::{load_shed_counter, MetricsLayer};
use super::proxy::{Proxy, ProxyService};
use super::timeout::TimeoutLayer;
use super::{Body, REQUEST_ID};
use crate::config::Server;

/// Builds the stack around `proxy` with the `[server]` limits. Header size and count, the header
/// read timeout and the connection cap are enforced by the connection, before this stack
/// ([`super::serve`]).
pub fn build(
    proxy: Arc<Proxy>,
    server: &Server,
) -> impl Service<Request<Incoming>, Response = Response<Body>, Error = Infallible, Future: Send> + Clone + Send + 'static {
    let metrics = proxy.metrics.ingress.clone();
    let shed = load_shed_counter(&proxy.metrics.registry);
    ServiceBuilder::new()
        // Before the id is set: a sender's X-Request-Id is kept only if it is short and plain.
        .map_request(adopt_request_id::<Incoming>)
        // First, so every later layer, log line, error body and the monolith see the same id;
        // a sender's own X-Request-Id is kept.
        .layer(SetRequestIdLayer::new(REQUEST_ID, UlidRequestId))
        // Echo the id to the sender, whatever answered (monolith, timeout or limit).
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        // Outside every layer that answers by itself, so their answers are counted too.
        .layer(MetricsLayer::new(metrics))
        // Before routing and before anything reads a header: CONNECT and a bad Host are refused,
        // and underscored header names never reach a signature check, the event or the monolith.
        .layer(HygieneLayer::new(server.underscores_in_headers))
        // Before anything does work for a request: past the limit the answer is an immediate
        // 503 that reads nothing and queues nothing.
        .layer(LoadShedLayer::new(server.max_concurrent_requests, shed))
        // Before anything reads headers, so no layer, event mapping or the monolith sees what an
        // untrusted client claims about its route.
        .layer(ForwardedLayer::new(&server.trusted_proxies))
        // Bounds the whole exchange so a stuck monolith or client cannot hold a slot forever.
        .layer(TimeoutLayer::new(server.request_timeout))
        // Innermost before the proxy: nothing buffers a body past the limit or waits on a body
        // past its deadline, and a failed body is answered as such whoever was reading it.
        .layer(BodyLimitLayer::new(server.max_body_bytes, server.body_read_timeout))
        .service(ProxyService(proxy))
}

/// Request ids are ULIDs: sortable by time, unique without coordination.
#[derive(Clone, Copy)]
struct UlidRequestId;

impl MakeRequestId for UlidRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let mut buf = [0u8; ulid::ULID_LEN];
        let id = ulid::Ulid::new().array_to_str(&mut buf);
        HeaderValue::from_str(id).ok().map(RequestId::new)
    }
}
