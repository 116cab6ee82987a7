//! The admin listener: `/metrics` (Prometheus text), `/healthz` (alive) and `/readyz` (Kafka reachable).
//!
//! Kept off the public listener so webhook senders can never read metrics or probe health.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::compare::comparator::Samples;
use crate::ingress::{self, full, Body, ServeOptions};
use crate::publish::Publisher;
use crate::control::state::Dials;
use crate::route::{Route, Routes};
use crate::telemetry::Metrics;

/// How long `/readyz` waits for broker metadata.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// What the admin endpoints read.
pub struct Admin {
    pub metrics: Metrics,
    pub publisher: Publisher,
    /// Set when running on the embedded broker: `/readyz` says nothing is durable.
    pub embedded_bootstrap: Option<String>,
    pub routes: Routes,
    pub dials: Arc<Dials>,
    pub samples: Arc<Samples>,
}

impl Admin {
    /// Answers one admin request.
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        if req.method() != Method::GET {
            return json(StatusCode::METHOD_NOT_ALLOWED, serde_json::json!({"error": {"code": "method_not_allowed"}}));
        }
        match req.uri().path() {
            "/metrics" => {
                self.publisher.refresh_gauges();
                for r in self.routes.load().iter() {
                    let share = self.dials.get(&r.name).map_or(0.0, |d| d.effective_share().percent());
                    self.metrics.routing.share.with_label_values(&[&r.name]).set(share);
                }
                let mut resp = Response::new(full(self.metrics.render()));
                resp.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
                resp
            }
            "/healthz" => json(StatusCode::OK, serde_json::json!({"status": "ok"})),
            "/readyz" => {
                let reachable = self.publisher.kafka_reachable(READY_TIMEOUT).await;
                let mut body = serde_json::json!({
                    "ready": reachable,
                    "kafka": if reachable { "reachable" } else { "unreachable" },
                    "durable": self.embedded_bootstrap.is_none(),
                });
                if let Some(bootstrap) = &self.embedded_bootstrap {
                    body["warning"] =
                        format!("embedded in-memory Kafka at {bootstrap}: nothing is durable; set kafka.brokers for production")
                            .into();
                }
                json(if reachable { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, body)
            }
            "/api/routes" => json(
                StatusCode::OK,
                serde_json::json!({ "routes": self.routes.load().iter().map(|r| self.route_view(r)).collect::<Vec<_>>() }),
            ),
            path => match path.strip_prefix("/api/routes/").map(|rest| rest.split_once('/').unwrap_or((rest, ""))) {
                Some((name, "")) => match self.routes.load().get(name) {
                    Some(r) => json(StatusCode::OK, self.route_view(r)),
                    None => not_found(name),
                },
                Some((name, "mismatches")) => match self.routes.load().get(name) {
                    Some(r) => json(StatusCode::OK, serde_json::json!({"route": r.name, "samples": self.samples.get(&r.name)})),
                    None => not_found(name),
                },
                _ => json(StatusCode::NOT_FOUND, serde_json::json!({"error": {"code": "not_found"}})),
            },
        }
    }
}

impl Admin {
    /// A route's dial and parity, as the admin API shows it.
    fn route_view(&self, r: &Route) -> serde_json::Value {
        let Some(dial) = self.dials.get(&r.name) else { return serde_json::Value::Null };
        let (mode, share) = (dial.mode, dial.share);
        let counts: serde_json::Map<String, serde_json::Value> = ["match", "mismatch", "missing_new", "missing_legacy"]
            .iter()
            .map(|result| {
                (result.to_string(), self.metrics.compare.parity.with_label_values(&[r.name.as_str(), result]).get().into())
            })
            .collect();
        serde_json::json!({
            "name": r.name,
            "method": r.method.as_str(),
            "path": r.path,
            "topic": r.topic,
            "mode": mode.as_str(),
            "share_percent": share.percent(),
            "parity": {
                "ratio": self.metrics.compare.ratio.with_label_values(&[&r.name]).get(),
                "counts": counts,
            },
        })
    }
}

fn not_found(route: &str) -> Response<Body> {
    json(
        StatusCode::NOT_FOUND,
        serde_json::json!({"error": {"code": "unknown_route", "message": format!("no route named `{route}`")}}),
    )
}

/// Serves the admin endpoints until shutdown.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>, opts: ServeOptions, shutdown: watch::Receiver<bool>) {
    let service = tower::service_fn(move |req: Request<Incoming>| {
        let admin = admin.clone();
        async move { Ok::<_, Infallible>(admin.handle(req).await) }
    });
    ingress::serve(listener, service, opts, shutdown).await;
}

fn json(status: StatusCode, v: serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(full(v.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
