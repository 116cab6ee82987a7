//! Load shedding: at most `server.max_concurrent_requests` requests are in flight; past that a
//! request is answered at once with 503 `overloaded` and `Retry-After: 1`, without being read or
//! queued, so a burst costs a few bytes per connection instead of a growing queue.
//!
//! A request holds its slot from its head until its response head is ready (like tower's
//! `ConcurrencyLimit`): a client that reads its answer slowly does not keep a slot.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{ready, Either, Ready};
use http::{Request, Response};
use pin_project_lite::pin_project;
use prometheus::IntCounter;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

use super::error::ProxyError;
use super::{Body, RouteTag, REQUEST_ID};

#[derive(Clone)]
pub struct LoadShedLayer {
    slots: Arc<Semaphore>,
    shed: IntCounter,
}

impl LoadShedLayer {
    /// `shed` counts refused requests (`strangler_load_shed_total`).
    pub fn new(max_concurrent: usize, shed: IntCounter) -> Self {
        Self { slots: Arc::new(Semaphore::new(max_concurrent)), shed }
    }
}

impl<S> Layer<S> for LoadShedLayer {
    type Service = LoadShed<S>;
    fn layer(&self, inner: S) -> Self::Service {
        LoadShed { inner, slots: self.slots.clone(), shed: self.shed.clone() }
    }
}

/// Every clone shares the same slots.
#[derive(Clone)]
pub struct LoadShed<S> {
    inner: S,
    slots: Arc<Semaphore>,
    shed: IntCounter,
}

impl<S, B> Service<Request<B>> for LoadShed<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Either<InFlight<S::Future>, Ready<Result<Response<Body>, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        match self.slots.clone().try_acquire_owned() {
            Ok(slot) => Either::Left(InFlight { inner: self.inner.call(req), slot: Some(slot) }),
            Err(_) => {
                self.shed.inc();
                let id = req.headers().get(REQUEST_ID);
                Either::Right(ready(Ok(ProxyError::Overloaded.into_response(RouteTag::Unrouted, id))))
            }
        }
    }
}

pin_project! {
    /// A request holding a slot until its response head is ready.
    pub struct InFlight<F> {
        #[pin]
        inner: F,
        slot: Option<OwnedSemaphorePermit>,
    }
}

impl<F: Future> Future for InFlight<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        this.slot.take();
        Poll::Ready(out)
    }
}
