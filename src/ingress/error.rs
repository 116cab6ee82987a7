//! Errors the proxy answers itself, as a stable JSON body: `{"error":{"code","message","request_id"}}`.
//!
//! Each error knows whose fault it is (the sender's, the monolith's, or ours), which picks the
//! status code; the `code` string is part of the public contract and does not change.

use std::time::Duration;

use http::{header, HeaderValue, Response, StatusCode};

use super::{Body, Outcome, RouteTag};
use crate::legacy::LegacyError;
use crate::verify::VerifyError;

/// Seconds a sender is asked to wait after `publish_failed`.
pub const RETRY_AFTER_SECS: &str = "5";

/// Seconds a sender is asked to wait after `overloaded`.
pub const OVERLOADED_RETRY_AFTER_SECS: &str = "1";

/// Something the proxy answers instead of the monolith.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("signature rejected: {0}")]
    Signature(VerifyError),
    #[error("request body larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("reading the request body failed: {0}")]
    BodyRead(String),
    #[error("the request body did not arrive within {} ms of the request head", .0.as_millis())]
    BodyTimeout(Duration),
    #[error("too many requests in flight; retry shortly")]
    Overloaded,
    #[error(transparent)]
    Legacy(LegacyError),
    #[error("the request did not complete within the server's request timeout")]
    RequestTimeout,
    #[error("the event could not be handed to Kafka in time; retry later")]
    PublishFailed,
    #[error("the new service's outcome did not arrive in time")]
    OutcomeTimeout,
    #[error("{0}")]
    BadHost(HostProblem),
    #[error("CONNECT is not supported: strangler is not a forward proxy")]
    Connect,
    #[error("the request path is an ambiguous spelling of a route's path (an encoded `/` or `\\`, a NUL, an invalid escape, a raw `\\`, or another case)")]
    AmbiguousPath,
    #[error("method not allowed on this route's path; allowed: {}", .0.to_str().unwrap_or_default())]
    MethodNotAllowed(HeaderValue),
    #[error("too many request bodies are being buffered; retry shortly")]
    BodyBudgetExhausted,
    /// The event failed its route's `dead_letter` contract and the new path owns it
    /// (`when_new_owned = "reject"`); the errors go in the answer's `error.errors`.
    #[error("the event does not match its contract ({} error(s); see errors)", .0.len())]
    ContractViolation(Vec<crate::contract::Violation>),
}

/// What is wrong with a request's `Host` header (RFC 9112 §3.2). The value is never echoed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostProblem {
    #[error("an HTTP/1.1 request must have a Host header; this one has no Host header")]
    Missing,
    #[error("the request has more than one Host header")]
    Repeated,
    #[error("the Host header is not a valid host[:port]")]
    Invalid,
}

/// The methods strangler forwards, for `Allow` on a refused `CONNECT`.
pub const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE";

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::Signature(_) => StatusCode::UNAUTHORIZED,
            ProxyError::BodyTooLarge(_) | ProxyError::Legacy(LegacyError::BodyTooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::BodyRead(_) => StatusCode::BAD_REQUEST,
            ProxyError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ProxyError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Legacy(LegacyError::Timeout(_)) | ProxyError::RequestTimeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Legacy(_) => StatusCode::BAD_GATEWAY,
            ProxyError::PublishFailed => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::OutcomeTimeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::BadHost(_) => StatusCode::BAD_REQUEST,
            ProxyError::Connect => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::AmbiguousPath => StatusCode::BAD_REQUEST,
            ProxyError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::BodyBudgetExhausted => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::ContractViolation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// Stable machine-readable code, also the `outcome` metric label.
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::Signature(_) => "signature_invalid",
            ProxyError::BodyTooLarge(_) | ProxyError::Legacy(LegacyError::BodyTooLarge) => "body_too_large",
            ProxyError::BodyRead(_) => "body_read_failed",
            ProxyError::BodyTimeout(_) => "body_timeout",
            ProxyError::Overloaded => "overloaded",
            ProxyError::Legacy(LegacyError::Unavailable(_)) => "upstream_unavailable",
            ProxyError::Legacy(LegacyError::Timeout(_)) => "upstream_timeout",
            ProxyError::Legacy(LegacyError::Failed(_)) => "upstream_failed",
            ProxyError::RequestTimeout => "request_timeout",
            ProxyError::PublishFailed => "publish_failed",
            ProxyError::OutcomeTimeout => "outcome_timeout",
            ProxyError::BadHost(_) => "host_invalid",
            ProxyError::Connect => "connect_not_allowed",
            ProxyError::AmbiguousPath => "ambiguous_path",
            ProxyError::MethodNotAllowed(_) => "method_not_allowed",
            ProxyError::BodyBudgetExhausted => "body_budget_exhausted",
            ProxyError::ContractViolation(_) => "contract_violation",
        }
    }

    /// The JSON answer, tagged with `route` for the metrics layer.
    pub fn into_response(self, route: RouteTag, request_id: Option<&HeaderValue>) -> Response<Body> {
        let mut body = serde_json::json!({
            "error": {
                "code": self.code(),
                "message": self.to_string(),
                "request_id": request_id.and_then(|v| v.to_str().ok()),
            }
        });
        if let ProxyError::ContractViolation(errors) = &self {
            body["error"]["errors"] = serde_json::to_value(errors).unwrap_or_default();
        }
        let mut resp = Response::new(super::full(body.to_string()));
        *resp.status_mut() = self.status();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match self {
            ProxyError::PublishFailed => {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
            }
            ProxyError::Overloaded => {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(OVERLOADED_RETRY_AFTER_SECS));
            }
            // The request body was not read to its end, so the connection cannot carry another
            // request: say so rather than let the sender find out.
            ProxyError::BodyTooLarge(_)
            | ProxyError::Legacy(LegacyError::BodyTooLarge)
            | ProxyError::BodyRead(_)
            | ProxyError::BodyTimeout(_) => {
                resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            // A malformed or refused head: its body, if any, is unread, and the connection is not
            // worth keeping.
            ProxyError::BadHost(_) => {
                resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            ProxyError::Connect => {
                resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
                resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            ProxyError::MethodNotAllowed(ref allow) => {
                resp.headers_mut().insert(header::ALLOW, allow.clone());
            }
            // Unread body: the connection cannot carry another request.
            ProxyError::BodyBudgetExhausted => {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(OVERLOADED_RETRY_AFTER_SECS));
                resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        resp.extensions_mut().insert(Outcome { route, outcome: self.code() });
        resp
    }
}
