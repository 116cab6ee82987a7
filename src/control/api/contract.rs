//! `GET /api/routes/{name}/contract-violations`: how many of the route's events failed their
//! contract on this replica since start, and the latest samples, newest first. Also the Route
//! object's `contract` key.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};

use super::{json, Api, ApiError};
use crate::route::Route;

pub async fn violations(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    api.reader(&headers)?;
    let route = super::views::route(&api, name)?;
    let (violations, samples) = api.metrics.contract.samples.get(&route.name);
    Ok(json(StatusCode::OK, serde_json::json!({ "route": route.name, "violations": violations, "samples": samples })))
}

/// The Route object's `contract`: `null` without one.
pub fn view(api: &Api, r: &Route) -> serde_json::Value {
    let Some(c) = &r.contract else { return serde_json::Value::Null };
    let schemas: Vec<_> =
        c.schemas().map(|(ty, s)| serde_json::json!({ "type": ty, "schema": s.path, "dataschema": s.id })).collect();
    serde_json::json!({
        "on_invalid": c.on_invalid.as_str(),
        "schemas": schemas,
        "violations": api.metrics.contract.samples.count(&r.name),
    })
}
