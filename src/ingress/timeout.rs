//! Request timeout layer: bounds the whole exchange and answers a JSON 504 when it runs out.
//!
//! tower's own `Timeout` fails the service instead, and a failed service makes hyper drop the
//! connection without an answer; a sender deserves a status code.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tokio::time::Timeout;
use tower::{Layer, Service};

use super::error::ProxyError;
use super::{Body, RouteTag, REQUEST_ID};

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
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let id = req.headers().get(REQUEST_ID).cloned();
        TimeoutFuture { inner: tokio::time::timeout(self.limit, self.inner.call(req)), id }
    }
}

pin_project! {
    /// The inner answer, or a JSON 504 once the limit passes.
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: Timeout<F>,
        id: Option<HeaderValue>,
    }
}

impl<F> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<Response<Body>, Infallible>>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match std::task::ready!(this.inner.poll(cx)) {
            Ok(answer) => Poll::Ready(answer),
            Err(_) => Poll::Ready(Ok(ProxyError::RequestTimeout.into_response(RouteTag::Unrouted, this.id.as_ref()))),
        }
    }
}
