//! Request timeout layer: bounds the whole exchange and answers a JSON 504 when it runs out.
//!
//! tower's own `Timeout` fails the service instead, and a failed service makes hyper drop the
//! connection without an answer; a sender deserves a status code.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::{Request, Response};
use tower::{Layer, Service};

use super::error::ProxyError;
use super::{Body, REQUEST_ID, UNROUTED};

#[derive(Clone)]
pub struct TimeoutLayer {
    limit: Duration,
}

impl TimeoutLayer {
    pub fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = RequestTimeout<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequestTimeout { inner, limit: self.limit }
    }
}

#[derive(Clone)]
pub struct RequestTimeout<S> {
    inner: S,
    limit: Duration,
}

impl<S, B> Service<Request<B>> for RequestTimeout<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let id = req.headers().get(REQUEST_ID).cloned();
        let inner = self.inner.call(req);
        let limit = self.limit;
        Box::pin(async move {
            match tokio::time::timeout(limit, inner).await {
                Ok(answer) => answer,
                Err(_) => Ok(ProxyError::RequestTimeout.into_response(UNROUTED, id.as_ref())),
            }
        })
    }
}
