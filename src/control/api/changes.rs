//! Calls that change a route's dial: share, mode, rollback and rollout resume. Each needs a
//! token and a reason, is written to the control topic, and answers once this replica applied it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::views::{route, view};
use super::{json, json_body, Api, ApiError};
use crate::control::state::Change;
use crate::control::topic::SubmitError;
use crate::route::assign::{Mode, Share};

/// Longest reason kept.
const MAX_REASON: usize = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareBody {
    percent: Option<serde_json::Value>,
    reason: Option<String>,
    expected_version: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeBody {
    mode: Option<String>,
    reason: Option<String>,
    expected_version: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    reason: Option<String>,
    expected_version: Option<u64>,
}

type Name = Result<Path<String>, PathRejection>;
type Body = Result<Bytes, BytesRejection>;

/// `PUT /api/routes/{name}/share {"percent": 12.5, "reason": "..."}`: split mode at that share.
pub async fn share(State(api): State<Arc<Api>>, name: Name, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let by = api.writer(&headers)?;
    let route = route(&api, name)?;
    let b: ShareBody = json_body(&headers, body)?;
    let reason = reason(b.reason)?;
    let share = match b.percent {
        Some(serde_json::Value::Number(n)) => n.as_f64().and_then(|p| Share::from_percent(p).ok()),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::bad_request("invalid_share", "`percent` must be a number from 0 to 100 with at most two decimals")
    })?;
    let dial = api.control.in_force(&route.name);
    let change = Change {
        route: route.name.clone(),
        mode: Mode::Split,
        share,
        by,
        reason,
        expected_version: b.expected_version,
        rollout_paused: route.rollout.is_some() || dial.rollout_paused,
        guard_tripped: false,
    };
    submit(&api, change).await
}

/// `PUT /api/routes/{name}/mode {"mode": "split", "reason": "..."}`: keeps the share.
pub async fn mode(State(api): State<Arc<Api>>, name: Name, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let by = api.writer(&headers)?;
    let route = route(&api, name)?;
    let b: ModeBody = json_body(&headers, body)?;
    let reason = reason(b.reason)?;
    let mode = match b.mode.as_deref() {
        Some("passthrough") => Mode::Passthrough,
        Some("shadow") => Mode::Shadow,
        Some("split") => Mode::Split,
        Some("cutover") => Mode::Cutover,
        _ => return Err(ApiError::bad_request("invalid_mode", "`mode` must be passthrough, shadow, split or cutover")),
    };
    let dial = api.control.in_force(&route.name);
    let change = Change {
        route: route.name.clone(),
        mode,
        share: dial.share,
        by,
        reason,
        expected_version: b.expected_version,
        rollout_paused: route.rollout.is_some() || dial.rollout_paused,
        guard_tripped: false,
    };
    submit(&api, change).await
}

/// `POST /api/routes/{name}/rollback {"reason": "..."}`: shadow mode, share 0, rollout paused.
pub async fn rollback(State(api): State<Arc<Api>>, name: Name, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let by = api.writer(&headers)?;
    let route = route(&api, name)?;
    let b: ReasonBody = json_body(&headers, body)?;
    let reason = reason(b.reason)?;
    let change = Change {
        route: route.name.clone(),
        mode: Mode::Shadow,
        share: Share::ZERO,
        by,
        reason,
        expected_version: b.expected_version,
        rollout_paused: true,
        guard_tripped: false,
    };
    submit(&api, change).await
}

/// `POST /api/routes/{name}/rollout/resume`: clears the pause and the guard's trip.
pub async fn resume(State(api): State<Arc<Api>>, name: Name, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let by = api.writer(&headers)?;
    let route = route(&api, name)?;
    let b: ReasonBody = json_body(&headers, body)?;
    let reason = match b.reason {
        None => "rollout resumed".to_string(),
        given => reason(given)?,
    };
    let Some(spec) = &route.rollout else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_rollout",
            format!("route `{}` has no rollout configured", route.name),
        ));
    };
    let dial = api.control.in_force(&route.name);
    let mut change = crate::control::rollout::resume(&route.name, &by, &reason, spec, &dial);
    change.expected_version = b.expected_version;
    submit(&api, change).await
}

fn reason(reason: Option<String>) -> Result<String, ApiError> {
    match reason.map(|r| r.trim().to_string()) {
        Some(r) if !r.is_empty() && r.chars().count() <= MAX_REASON && !r.chars().any(char::is_control) => Ok(r),
        Some(r) if !r.is_empty() => Err(ApiError::bad_request(
            "invalid_reason",
            format!("`reason` must be at most {MAX_REASON} characters, without control characters"),
        )),
        _ => Err(ApiError::bad_request("missing_reason", "every change needs a `reason`")),
    }
}

async fn submit(api: &Api, change: Change) -> Result<Response, ApiError> {
    let name = change.route.clone();
    match api.control.submit(change).await {
        Ok(applied) => {
            // The state this call set, even if another change has already followed it.
            let route = api.routes.load().get(&name).cloned().ok_or_else(|| ApiError::unknown_route(&name))?;
            Ok(json(StatusCode::OK, view(api, &route, Some(applied))))
        }
        Err(SubmitError::Conflict { in_force }) => Err(ApiError {
            extra: Some(("version", in_force.into())),
            ..ApiError::new(
                StatusCode::CONFLICT,
                "version_conflict",
                format!("version {in_force} is in force, not the expected_version given; read the route and retry"),
            )
        }),
        Err(e @ SubmitError::NotReady) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", e.to_string())),
        Err(e @ SubmitError::Unavailable(_)) => {
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "control_unavailable", e.to_string()))
        }
    }
}
