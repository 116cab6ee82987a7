//! Body limit layer: refuses a declared oversize body at once (413), and caps streamed ones.
//!
//! A chunked body has no Content-Length, so it is wrapped in `Limited`: reading past the limit
//! fails, and whoever reads it answers 413. Nothing buffers more than the limit.

use std::convert::Infallible;
use std::task::{Context, Poll};

use futures_util::future::{ready, Either, Ready};
use http::{header, Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use tower::{Layer, Service};

use super::error::ProxyError;
use super::{Body, UNROUTED};

#[derive(Clone)]
pub struct BodyLimitLayer {
    limit: usize,
}

impl BodyLimitLayer {
    pub fn new(limit: usize) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        BodyLimit { inner, limit: self.limit }
    }
}

#[derive(Clone)]
pub struct BodyLimit<S> {
    inner: S,
    limit: usize,
}

impl<S> Service<Request<Incoming>> for BodyLimit<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Either<S::Future, Ready<Result<Response<Body>, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let declared =
            req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.limit as u64) {
            let id = req.headers().get(super::REQUEST_ID).cloned();
            return Either::Right(ready(Ok(ProxyError::BodyTooLarge(self.limit).into_response(UNROUTED, id.as_ref()))));
        }
        let limit = self.limit;
        Either::Left(self.inner.call(req.map(|b| Limited::new(b, limit).boxed())))
    }
}
