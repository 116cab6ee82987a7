//! Process endpoints: metrics, health and readiness, the audit trail, reload, and the API's own
//! OpenAPI description.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use serde::Deserialize;

use super::{json, json_body, Api, ApiError};
use crate::telemetry::readiness::{KafkaState, Report};

/// The OpenAPI 3.1 description of this API.
const OPENAPI: &str = include_str!("openapi.json");

/// The Prometheus exposition; `strangler_ready` is probed first, so it holds without `/readyz` calls.
pub async fn metrics(State(api): State<Arc<Api>>) -> Response {
    probe(&api).await;
    api.publishing.refresh_gauges();
    api.control.refresh_gauges();
    for r in api.routes.load().iter() {
        let share = api.control.in_force(&r.name).effective_share().percent();
        api.metrics.routing.share.with_label_values(&[&r.name]).set(share);
    }
    let mut resp = api.metrics.render().into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    resp
}

pub async fn healthz() -> Response {
    json(StatusCode::OK, serde_json::json!({"status": "ok"}))
}

/// Runs the readiness probe and sets `strangler_ready` from it.
async fn probe(api: &Api) -> Report {
    let kafka = if api.publishing.kafka_down() {
        KafkaState::Unreachable
    } else if api.publishing.kafka_up() {
        KafkaState::Reachable
    } else {
        KafkaState::CreatingTopics
    };
    let mut upstreams: Vec<Uri> = api.routes.load().iter().map(|r| r.upstream.clone()).collect();
    upstreams.push(api.readiness.legacy.clone());
    let report = api.readiness.check(&upstreams, kafka, api.control.caught_up()).await;
    api.metrics.control.ready.set(i64::from(report.ready));
    report
}

/// Ready when this replica can serve (see [`crate::telemetry::readiness`]); Kafka down is
/// reported as degraded, and fails readiness only with `admin.ready_requires_kafka`.
pub async fn readyz(State(api): State<Arc<Api>>) -> Response {
    let report = probe(&api).await;
    let status = if report.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut body = serde_json::to_value(&report).unwrap_or_default();
    body["durable"] = api.embedded_bootstrap.is_none().into();
    if let Some(bootstrap) = &api.embedded_bootstrap {
        body["warning"] =
            format!("embedded in-memory Kafka at {bootstrap}: nothing is durable; set kafka.brokers for production").into();
    }
    json(status, body)
}

pub async fn openapi() -> Response {
    let mut resp = OPENAPI.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `?route=orders&limit=50`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    route: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/audit`: the latest changes, newest first.
pub async fn audit(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    api.reader(&headers)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let limit = q.limit.unwrap_or(100).min(1000);
    let entries = api.control.audit.latest(q.route.as_deref(), limit);
    Ok(json(StatusCode::OK, serde_json::json!({ "entries": entries })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadBody {}

/// `POST /api/reload`: the same as SIGHUP, answered with what changed or the file's error.
pub async fn reload(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    api.writer(&headers)?;
    let _: ReloadBody = json_body(&headers, body)?;
    let Some(reloader) = &api.reloader else {
        return Err(ApiError::new(StatusCode::CONFLICT, "no_config_file", "this process was not started from a file"));
    };
    match reloader.reload().await {
        Ok(report) => Ok(json(StatusCode::OK, serde_json::json!({ "result": "ok", "report": report }))),
        Err(message) => Err(ApiError::bad_request("config_invalid", message)),
    }
}
