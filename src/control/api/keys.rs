//! `GET /api/routes/{name}/keys`: the route's hot keys of the last 5 to 10 minutes from this
//! replica's space-saving sketches,
//! and the `skew` object of the route view (events per partition over the last 5 minutes).

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};

use super::views::route;
use super::{json, Api, ApiError};
use crate::telemetry::skew::WINDOW_LABEL;

pub async fn keys(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    api.reader(&headers)?;
    let route = route(&api, name)?;
    let hot = api.metrics.skew.route(&route.name).hot_keys();
    let keys: Vec<_> = hot.keys.iter().map(|k| serde_json::json!({ "key": k.key, "count": k.count, "error": k.error })).collect();
    Ok(json(
        StatusCode::OK,
        serde_json::json!({ "route": route.name, "capacity": hot.capacity, "since": humantime::format_rfc3339_millis(hot.since).to_string(), "events": hot.events, "keys": keys }),
    ))
}

/// The route view's `skew`: ratio (`null` without events), the window, and events per partition.
pub fn skew_view(api: &Api, route: &str) -> serde_json::Value {
    let view = api.metrics.skew.route(route).view();
    let partitions: Vec<_> =
        view.partitions.iter().enumerate().map(|(p, events)| serde_json::json!({ "partition": p, "events": events })).collect();
    serde_json::json!({ "ratio": view.ratio, "window": WINDOW_LABEL, "events": view.events, "partitions": partitions })
}
