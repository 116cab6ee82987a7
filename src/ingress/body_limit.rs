//! Body guard layer: the size limit and the read deadline of request bodies.
//!
//! A declared oversize body (Content-Length) is refused at once with 413, unread. Any other body
//! is wrapped in [`GuardedBody`], which streams it on to whoever reads it (the signature check
//! collects it; passthrough streams it to the monolith) and fails the stream at once when
//!
//! - more than `max_body_bytes` arrive (chunked bodies have no Content-Length): nothing past the
//!   limit is ever read, let alone buffered;
//! - the whole body has not arrived within `body_read_timeout` of the request head (slow POST);
//! - the client breaks the body off or frames it wrongly (a bad chunk size).
//!
//! A failed stream means the monolith, if it was being streamed to, gets a truncated body and a
//! closed connection, never a complete request. Whatever the inner service then answers, this
//! layer answers the body's fault instead (413 `body_too_large`, 408 `body_timeout`, 400
//! `body_read_failed`), keeping the route label the inner answer was tagged with.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{ready, Either, Ready};
use http::{header, HeaderValue, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower::{Layer, Service};

use super::error::ProxyError;
use super::{Body, Outcome, RouteTag, REQUEST_ID};
use crate::BoxError;

#[derive(Clone)]
pub struct BodyLimitLayer {
    limit: usize,
    read_timeout: Duration,
}

impl BodyLimitLayer {
    pub fn new(limit: usize, read_timeout: Duration) -> Self {
        Self { limit, read_timeout }
    }
}

impl<S> Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        BodyLimit { inner, limit: self.limit, read_timeout: self.read_timeout }
    }
}

#[derive(Clone)]
pub struct BodyLimit<S> {
    inner: S,
    limit: usize,
    read_timeout: Duration,
}

impl<S> Service<Request<Incoming>> for BodyLimit<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Either<GuardFuture<S::Future>, Ready<Result<Response<Body>, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let id = req.headers().get(REQUEST_ID).cloned();
        let declared =
            req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.limit as u64) {
            return Either::Right(ready(Ok(ProxyError::BodyTooLarge(self.limit).into_response(RouteTag::Unrouted, id.as_ref()))));
        }
        let fault = Arc::new(OnceLock::new());
        let (limit, read_timeout, watch) = (self.limit, self.read_timeout, fault.clone());
        let req = req.map(move |body| GuardedBody::new(body, limit, read_timeout, watch).boxed());
        Either::Left(GuardFuture { inner: self.inner.call(req), fault, limit, read_timeout, request_id: id })
    }
}

/// Why a request body stream failed; the first fault wins.
#[derive(Debug)]
enum Fault {
    TooLarge,
    TimedOut,
    Failed(String),
}

/// The request body failed to arrive within `body_read_timeout` of the request head.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} ms", .0.as_millis())]
pub struct BodyTimeoutError(pub Duration);

pin_project! {
    /// A request body capped in size and time; records why it failed for [`GuardFuture`].
    pub struct GuardedBody {
        #[pin]
        inner: Limited<Incoming>,
        #[pin]
        deadline: Sleep,
        read_timeout: Duration,
        fault: Arc<OnceLock<Fault>>,
        // True once the stream ended or failed: nothing more is read, the deadline no longer applies.
        done: bool,
    }
}

impl GuardedBody {
    fn new(body: Incoming, limit: usize, read_timeout: Duration, fault: Arc<OnceLock<Fault>>) -> Self {
        Self { inner: Limited::new(body, limit), deadline: tokio::time::sleep(read_timeout), read_timeout, fault, done: false }
    }
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        // Checked before reading too, so a client trickling bytes cannot outrun the deadline.
        if this.deadline.is_elapsed() {
            return Poll::Ready(Some(Err(timed_out(this.fault, this.done, *this.read_timeout))));
        }
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Ready(Some(Err(e))) => {
                *this.done = true;
                let fault = if e.is::<LengthLimitError>() { Fault::TooLarge } else { Fault::Failed(e.to_string()) };
                let _ = this.fault.set(fault);
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                *this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => match this.deadline.poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(timed_out(this.fault, this.done, *this.read_timeout)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn timed_out(fault: &Arc<OnceLock<Fault>>, done: &mut bool, read_timeout: Duration) -> BoxError {
    *done = true;
    let _ = fault.set(Fault::TimedOut);
    Box::new(BodyTimeoutError(read_timeout))
}

pin_project! {
    /// The inner service's answer, unless the request body failed: then the body's fault.
    pub struct GuardFuture<F> {
        #[pin]
        inner: F,
        fault: Arc<OnceLock<Fault>>,
        limit: usize,
        read_timeout: Duration,
        request_id: Option<HeaderValue>,
    }
}

impl<F> Future for GuardFuture<F>
where
    F: Future<Output = Result<Response<Body>, Infallible>>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(resp) = std::task::ready!(this.inner.poll(cx));
        let Some(fault) = this.fault.get() else {
            return Poll::Ready(Ok(resp));
        };
        let error = match fault {
            Fault::TooLarge => ProxyError::BodyTooLarge(*this.limit),
            Fault::TimedOut => ProxyError::BodyTimeout(*this.read_timeout),
            Fault::Failed(why) => ProxyError::BodyRead(why.clone()),
        };
        let route = resp.extensions().get::<Outcome>().map_or(RouteTag::Unrouted, |o| o.route.clone());
        if error.status() != resp.status() {
            tracing::debug!(route = route.label(), status = %resp.status(), error = %error, "request body failed: answering its fault instead");
        }
        Poll::Ready(Ok(error.into_response(route, this.request_id.as_ref())))
    }
}
