//! Request-head hygiene before routing: which `X-Request-Id` is adopted, `CONNECT` (405), the
//! `Host` header (RFC 9112 §3.2: missing, repeated or invalid is 400), and headers whose names
//! contain `_` (dropped unless `server.underscores_in_headers`, as nginx does: Rack and CGI
//! servers read `X_Forwarded_For` as `X-Forwarded-For`).

use std::convert::Infallible;
use std::str::FromStr;
use std::task::{Context, Poll};

use futures_util::future::{ready, Either, Ready};
use http::uri::Authority;
use http::{header, HeaderMap, HeaderName, Method, Request, Response, Version};
use tower::{Layer, Service};

use super::error::{HostProblem, ProxyError};
use super::{Body, RouteTag, REQUEST_ID};

/// The longest client `X-Request-Id` adopted.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Keeps the client's `X-Request-Id` only if it is a single header of 1 to
/// [`MAX_REQUEST_ID_LEN`] characters, each an ASCII letter, digit or one of `-_.:@+/=` (UUIDs,
/// ULIDs, hex, base64, Rails' ids). Otherwise removes it, so a new id is made: nothing a client
/// puts there reaches the response, an error body, a log line or the monolith unless it is one
/// of those.
pub fn adopt_request_id<B>(mut req: Request<B>) -> Request<B> {
    let values = req.headers().get_all(REQUEST_ID);
    let mut iter = values.iter();
    let ok = match (iter.next(), iter.next()) {
        (Some(one), None) => request_id_ok(one.as_bytes()),
        _ => false,
    };
    if !ok {
        req.headers_mut().remove(REQUEST_ID);
    }
    req
}

fn request_id_ok(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len()) && id.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:@+/=".contains(b))
}

/// Why the head is refused, if it is.
fn refusal<B>(req: &Request<B>) -> Option<ProxyError> {
    if req.method() == Method::CONNECT {
        return Some(ProxyError::Connect);
    }
    let hosts = req.headers().get_all(header::HOST);
    let mut iter = hosts.iter();
    match (iter.next(), iter.next()) {
        (None, _) if req.version() >= Version::HTTP_11 => Some(ProxyError::BadHost(HostProblem::Missing)),
        (None, _) => None,
        (Some(_), Some(_)) => Some(ProxyError::BadHost(HostProblem::Repeated)),
        (Some(host), None) => (!host.to_str().is_ok_and(host_ok)).then_some(ProxyError::BadHost(HostProblem::Invalid)),
    }
}

/// `uri-host [ ":" port ]` (RFC 9110 §7.2): no user info, a port of digits within 0–65535.
fn host_ok(h: &str) -> bool {
    plain_host(h) || authority_ok(h)
}

/// The usual spelling, decided without parsing (or allocating) an `Authority`: a name or IPv4
/// address of letters, digits, `.` and `-`, and an optional port of 1 to 5 digits within 0–65535.
/// Everything it accepts, [`authority_ok`] accepts too; anything else is left to that.
fn plain_host(h: &str) -> bool {
    let (name, port) = match h.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (h, None),
    };
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok())
}

fn authority_ok(h: &str) -> bool {
    let Ok(authority) = Authority::from_str(h) else { return false };
    let rest = &h[authority.host().len()..];
    !h.contains('@')
        && match rest.strip_prefix(':') {
            None => rest.is_empty(),
            Some(port) => port.is_empty() || (port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok()),
        }
}

/// Removes every header whose name contains `_`; returns how many lines went.
fn drop_underscored(headers: &mut HeaderMap) -> usize {
    let names: Vec<HeaderName> = headers.keys().filter(|n| n.as_str().contains('_')).cloned().collect();
    let mut dropped = 0;
    for name in names {
        dropped += headers.get_all(&name).iter().count();
        headers.remove(&name);
    }
    dropped
}

#[derive(Clone, Copy)]
pub struct HygieneLayer {
    underscores: bool,
}

impl HygieneLayer {
    /// `underscores`: `server.underscores_in_headers`.
    pub fn new(underscores: bool) -> Self {
        Self { underscores }
    }
}

impl<S> Layer<S> for HygieneLayer {
    type Service = Hygiene<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Hygiene { inner, underscores: self.underscores }
    }
}

#[derive(Clone)]
pub struct Hygiene<S> {
    inner: S,
    underscores: bool,
}

impl<S, B> Service<Request<B>> for Hygiene<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Either<S::Future, Ready<Result<Response<Body>, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if let Some(e) = refusal(&req) {
            tracing::info!(method = %req.method(), error = %e, "request head refused");
            let id = req.headers().get(REQUEST_ID);
            return Either::Right(ready(Ok(e.into_response(RouteTag::Unrouted, id))));
        }
        if !self.underscores {
            let dropped = drop_underscored(req.headers_mut());
            if dropped > 0 {
                tracing::debug!(dropped, "headers with underscores in their names dropped");
            }
        }
        Either::Left(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(raw: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().uri("/x");
        for (k, v) in raw {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn request_ids_are_adopted_only_when_short_single_and_plain() {
        let long = "a".repeat(MAX_REQUEST_ID_LEN);
        for ok in ["01HZX3Q9J7", "2f5b1c3e-0c1d-11ef-8b1c-6b1c2f0e9a77", "abc+/=", "req_1.2:3@x", long.as_str()] {
            assert_eq!(adopt_request_id(req(&[("x-request-id", ok)])).headers()[REQUEST_ID], ok);
        }
        let too_long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        for bad in ["", "<script>alert(1)</script>", "a b", "a\"b", "é", "a;b", too_long.as_str()] {
            assert!(!adopt_request_id(req(&[("x-request-id", bad)])).headers().contains_key(REQUEST_ID), "{bad:?}");
        }
        let two = adopt_request_id(req(&[("x-request-id", "a"), ("x-request-id", "b")]));
        assert!(!two.headers().contains_key(REQUEST_ID));
    }

    #[test]
    fn host_must_be_one_valid_authority_on_http_1_1() {
        assert!(refusal(&req(&[("host", "hooks.example:8080")])).is_none());
        assert!(refusal(&req(&[("host", "[::1]:80")])).is_none());
        let code = |r: Request<()>| refusal(&r).map(|e| e.to_string());
        assert!(code(req(&[])).unwrap().contains("no Host"));
        assert!(code(req(&[("host", "a"), ("host", "a")])).unwrap().contains("more than one"));
        for good in ["a", "hooks.example", "127.0.0.1:31080", "host:", "host:0", "host:65535", "[::1]", "xn--bcher-kva.example"] {
            assert!(refusal(&req(&[("host", good)])).is_none(), "{good:?}");
        }
        for bad in ["", "a b", "user@host", "a/b", "host:port", "host:70000", "host:+1", "a:1:2", "host:123456"] {
            assert!(code(req(&[("host", bad)])).is_some_and(|m| m.contains("not a valid")), "{bad:?}");
        }
        let mut old = req(&[]);
        *old.version_mut() = Version::HTTP_10;
        assert!(refusal(&old).is_none(), "HTTP/1.0 needs no Host");
        let mut connect = req(&[("host", "x:443")]);
        *connect.method_mut() = Method::CONNECT;
        assert_eq!(refusal(&connect).map(|e| e.code()), Some("connect_not_allowed"));
    }

    #[test]
    fn the_quick_host_check_accepts_only_what_the_full_one_does() {
        for h in ["a", "a.b-c", "10.0.0.1:8080", "host:65535", "host:0", "x:00080", "-", ".", "a..b"] {
            assert!(plain_host(h) && authority_ok(h), "{h:?}");
        }
        for h in ["", ":80", "host:", "host:65536", "host:123456", "a:1:2", "[::1]:80", "a_b", "a%20b", "user@host"] {
            assert!(!plain_host(h), "{h:?}");
        }
    }

    #[test]
    fn underscored_names_are_dropped() {
        let mut r = req(&[("x_forwarded_for", "1.2.3.4"), ("x_forwarded_for", "5.6.7.8"), ("x-kept", "1"), ("a_b", "c")]);
        assert_eq!(drop_underscored(r.headers_mut()), 3);
        assert_eq!(r.headers().len(), 1);
        assert!(r.headers().contains_key("x-kept"));
    }
}
