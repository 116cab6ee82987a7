//! The admin API on the admin listener: health, metrics, route state and parity, and the calls
//! that change a route's dial, on an axum router (a tower `Service` that `ingress::serve` runs).
//!
//! Every error is `{"error":{"code","message"}}` with a stable code. Changes need a named bearer
//! token; reads need one only with `admin.read_requires_token`.

mod changes;
mod contract;
mod keys;
mod lag;
mod system;
mod views;

use std::convert::Infallible;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use super::auth::{authenticate, Token};
use super::reload::Reloader;
use super::topic::Control;
use crate::control::parity::ClusterParity;
use crate::ingress::{self, ServeOptions};
use crate::publish::HealthView;
use crate::route::Routes;
use crate::telemetry::Metrics;

/// Largest request body the API reads.
pub const MAX_BODY: usize = 64 * 1024;

/// Who may call: the tokens and whether reads need one. Swapped whole by a reload.
#[derive(Debug, Clone)]
pub struct Access {
    pub tokens: Vec<Token>,
    pub read_requires_token: bool,
}

/// What the admin API reads and changes.
pub struct Api {
    pub metrics: Metrics,
    /// Kafka up, topics ready, the publish gauges.
    pub publishing: HealthView,
    /// Set when running on the embedded broker: `/readyz` says nothing is durable.
    pub embedded_bootstrap: Option<String>,
    pub routes: Routes,
    pub control: Arc<Control>,
    pub parity: Arc<ClusterParity>,
    pub access: Arc<ArcSwap<Access>>,
    pub reloader: Option<Arc<Reloader>>,
    /// What `/readyz` checks besides Kafka and the control topic.
    pub readiness: crate::telemetry::readiness::Readiness,
    /// Consumer lag of the watched groups (`GET /api/lag`).
    pub lag: Arc<crate::control::lag::Monitor>,
}

/// An answer with a stable error code.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub extra: Option<(&'static str, serde_json::Value)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), extra: None }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unknown_route(name: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "unknown_route", format!("no route named `{name}`"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({"code": self.code, "message": self.message});
        if let Some((k, v)) = self.extra {
            error[k] = v;
        }
        let mut resp = json(self.status, serde_json::json!({ "error": error }));
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"strangler\""));
        }
        resp
    }
}

/// A JSON answer.
pub fn json(status: StatusCode, v: serde_json::Value) -> Response {
    let mut resp = (status, v.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

impl Api {
    /// The token's name if the request may change things; counts refusals.
    pub fn writer(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        let access = self.access.load();
        authenticate(&access.tokens, headers).map(str::to_string).map_err(|e| {
            self.metrics.control.auth_failures.with_label_values(&[e.as_str()]).inc();
            let message = match (e, access.tokens.is_empty()) {
                (_, true) => "no admin tokens are configured ([[admin.token]]): changes are refused",
                (super::auth::AuthError::Missing, _) => "this call needs `Authorization: Bearer <token>`",
                (super::auth::AuthError::Invalid, _) => "the bearer token matches no configured token",
            };
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
        })
    }

    /// Checks a read against `admin.read_requires_token`.
    pub fn reader(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.access.load().read_requires_token {
            self.writer(headers)?;
        }
        Ok(())
    }
}

/// The body of a change, as JSON: checks content type and size first. An empty body is `{}`.
pub fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|rejection| match rejection {
        BytesRejection::FailedToBufferBody(_) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("the body is over {MAX_BODY} bytes"))
        }
        other => ApiError::bad_request("body_read_failed", other.body_text()),
    })?;
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &body };
    if body != b"{}" {
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("expected Content-Type: application/json, found `{content_type}`"),
            ));
        }
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request("invalid_body", format!("invalid JSON body: {e}")))
}

/// The router over `api`.
pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/", get(crate::control::console::page))
        .route("/console/{version}/{file}", get(crate::control::console::asset))
        .route("/metrics", get(system::metrics))
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/api/openapi.json", get(system::openapi))
        .route("/api/routes", get(views::list))
        .route("/api/routes/{name}", get(views::one))
        .route("/api/routes/{name}/mismatches", get(views::mismatches))
        .route("/api/routes/{name}/trend", get(views::trend))
        .route("/api/routes/{name}/contract-violations", get(contract::violations))
        .route("/api/routes/{name}/keys", get(keys::keys))
        .route("/api/routes/{name}/share", put(changes::share))
        .route("/api/routes/{name}/mode", put(changes::mode))
        .route("/api/routes/{name}/rollback", post(changes::rollback))
        .route("/api/routes/{name}/rollout/resume", post(changes::resume))
        .route("/api/lag", get(lag::lag))
        .route("/api/audit", get(system::audit))
        .route("/api/reload", post(system::reload))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this endpoint does not take that method")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(api.clone(), count))
        .with_state(api)
}

/// Counts every answer by endpoint template (bounded) and status.
async fn count(State(api): State<Arc<Api>>, req: Request, next: Next) -> Response {
    let endpoint = req.extensions().get::<MatchedPath>().map_or_else(|| "other".to_string(), |p| p.as_str().to_string());
    let resp = next.run(req).await;
    api.metrics.control.requests.with_label_values(&[&endpoint, resp.status().as_str()]).inc();
    resp
}

/// Serves the admin listener until shutdown.
pub async fn serve(
    listener: TcpListener,
    api: Arc<Api>,
    opts: ServeOptions,
    shutdown: watch::Receiver<bool>,
    tls: Option<ingress::tls::Acceptor>,
) {
    let router = router(api);
    let service = tower::service_fn(move |req: http::Request<Incoming>| {
        let router = router.clone();
        async move {
            let resp = router.oneshot(req.map(axum::body::Body::new)).await.unwrap_or_else(|never: Infallible| match never {});
            // Admin answers are small and complete: buffer them into the listener's body type.
            let (parts, body) = resp.into_parts();
            let bytes = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
            Ok::<_, Infallible>(http::Response::from_parts(parts, ingress::full(bytes)))
        }
    });
    ingress::serve(listener, service, opts, shutdown, tls).await;
}
