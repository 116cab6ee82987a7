//! Read endpoints: each route's dial, cluster-wide parity over 1 m / 5 m / 1 h, the guard's and the
//! rollout's state, and the latest mismatches.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::{json, Api, ApiError};
use crate::control::figures::Figures;
use crate::control::state::{human, DialState};
use crate::route::Route;

/// The spans every route view reports.
const SPANS: [(&str, Duration); 3] =
    [("1m", Duration::from_secs(60)), ("5m", Duration::from_secs(300)), ("1h", Duration::from_secs(3600))];

pub async fn list(State(api): State<Arc<Api>>, headers: HeaderMap) -> Result<Response, ApiError> {
    api.reader(&headers)?;
    let routes: Vec<_> = api.routes.load().iter().map(|r| view(&api, r, None)).collect();
    Ok(json(StatusCode::OK, serde_json::json!({ "routes": routes })))
}

pub async fn one(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    api.reader(&headers)?;
    let route = route(&api, name)?;
    Ok(json(StatusCode::OK, view(&api, &route, None)))
}

/// `?pointer=/body/total&limit=20`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MismatchQuery {
    pointer: Option<String>,
    limit: Option<usize>,
}

pub async fn mismatches(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    query: Result<Query<MismatchQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    api.reader(&headers)?;
    let route = route(&api, name)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    // By default as many as the route keeps (`compare.samples`).
    let limit = q.limit.unwrap_or(route.compare.samples).min(1000);
    let samples = api.parity.mismatches(&route.name, q.pointer.as_deref(), limit);
    let missing = api.parity.missing(&route.name, limit);
    Ok(json(StatusCode::OK, serde_json::json!({ "route": route.name, "samples": samples, "missing": missing })))
}

/// The route called by the path's `{name}`, or 404.
pub fn route(api: &Api, name: Result<Path<String>, PathRejection>) -> Result<Arc<Route>, ApiError> {
    let Path(name) = name.map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?;
    api.routes.load().get(&name).cloned().ok_or_else(|| ApiError::unknown_route(&name))
}

/// Figures as the API shows them.
pub fn figures_json(f: &Figures) -> serde_json::Value {
    serde_json::json!({
        "ratio": f.parity_ratio(),
        "samples": f.samples(),
        "match": f.matched,
        "mismatch": f.mismatched,
        "missing_new": f.missing_new,
        "missing_legacy": f.missing_legacy,
        "truncated": f.truncated,
        "live": f.live(),
        "new_errors": f.live_error + f.live_missing,
        "new_error_rate": f.new_error_rate(),
    })
}

/// One route: its match, its dial (`dial`, else the one in force), parity, guard and rollout.
pub fn view(api: &Api, r: &Route, dial: Option<DialState>) -> serde_json::Value {
    let dial = dial.unwrap_or_else(|| api.control.in_force(&r.name));
    let now = SystemTime::now();
    let windows: serde_json::Map<_, _> =
        SPANS.iter().map(|(label, span)| (label.to_string(), figures_json(&api.parity.window(&r.name, *span)))).collect();
    let hour = api.parity.window(&r.name, Duration::from_secs(3600));
    let five = api.parity.window(&r.name, Duration::from_secs(300));
    serde_json::json!({
        "name": r.name,
        "method": r.method.as_str(),
        "path": r.path,
        "match": {
            "aliases": r.matching.aliases.iter().map(|a| a.text.as_str()).collect::<Vec<_>>(),
            "case_insensitive": r.matching.case_insensitive,
            "other_methods": r.matching.other_methods.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        },
        "topic": r.topic,
        "mode": dial.mode.as_str(),
        "share_percent": dial.share.percent(),
        "effective_share_percent": dial.effective_share().percent(),
        "version": dial.version,
        "by": dial.by,
        "reason": dial.reason,
        "at": humantime::format_rfc3339_millis(dial.at).to_string(),
        "rollout_paused": dial.rollout_paused,
        "guard_tripped": dial.guard_tripped,
        "parity": {
            "ratio": hour.parity_ratio(),
            "counts": {
                "match": hour.matched,
                "mismatch": hour.mismatched,
                "missing_new": hour.missing_new,
                "missing_legacy": hour.missing_legacy,
                "truncated": hour.truncated,
            },
            "windows": windows,
        },
        "new_error_rate": five.new_error_rate(),
        "guard": guard_view(api, r, &dial, now),
        "rollout": rollout_view(r, &dial),
        "contract": super::contract::view(api, r),
        "skew": super::keys::skew_view(api, &r.name),
    })
}

fn guard_view(api: &Api, r: &Route, dial: &DialState, now: SystemTime) -> serde_json::Value {
    let Some(g) = &r.guard else { return serde_json::Value::Null };
    let since = now.checked_sub(g.window).map_or(dial.at, |start| start.max(dial.at));
    let figures = api.parity.figures(&r.name, since);
    serde_json::json!({
        "min_parity": g.min_parity,
        "min_samples": g.min_samples,
        "window": human(g.window),
        "max_new_error_rate": g.max_new_error_rate,
        "action": match g.action { crate::route::GuardAction::Rollback => "rollback", crate::route::GuardAction::Hold => "hold" },
        "state": crate::control::guard::health(&figures, g, dial).as_str(),
        "figures": figures_json(&figures),
    })
}

fn rollout_view(r: &Route, dial: &DialState) -> serde_json::Value {
    let Some(spec) = &r.rollout else { return serde_json::Value::Null };
    let (step, next) = crate::control::rollout::position(spec, dial);
    serde_json::json!({
        "steps": spec.steps.iter().map(|s| s.percent()).collect::<Vec<_>>(),
        "interval": human(spec.interval),
        "step": step,
        "next_percent": next.map(|s| s.percent()),
        "next_at": crate::control::rollout::next_at(spec, dial).map(|t| humantime::format_rfc3339_millis(t).to_string()),
        "paused": dial.rollout_paused,
    })
}

/// `GET /api/routes/{name}/trend`: the last hour in 10 s buckets, oldest first, and the dial's
/// changes in that hour (from the audit trail), oldest first.
pub async fn trend(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    api.reader(&headers)?;
    let route = route(&api, name)?;
    let trend = api.parity.trend(&route.name);
    // Changes since the oldest bucket's start: the same hour the buckets cover.
    let since = trend.first().map_or(SystemTime::now() - Duration::from_secs(3600), |(at, _)| *at);
    let buckets: Vec<_> = trend
        .iter()
        .map(|(at, f)| {
            serde_json::json!({
                "at": humantime::format_rfc3339(*at).to_string(),
                "match": f.matched,
                "mismatch": f.mismatched,
                "missing_new": f.missing_new,
                "missing_legacy": f.missing_legacy,
                "truncated": f.truncated,
                "live": f.live(),
                "new_errors": f.live_error + f.live_missing,
                "ratio": f.parity_ratio(),
            })
        })
        .collect();
    let mut changes: Vec<_> = api
        .control
        .audit
        .latest(Some(&route.name), usize::MAX)
        .into_iter()
        .take_while(|e| e.at >= since)
        .map(|e| {
            serde_json::json!({
                "version": e.new.version,
                "at": humantime::format_rfc3339_millis(e.at).to_string(),
                "mode": e.new.mode.as_str(),
                "share_percent": e.new.share_percent.percent(),
                "by": e.by,
                "reason": e.reason,
            })
        })
        .collect();
    changes.reverse();
    let bucket_secs = crate::control::parity::fold::BUCKET.as_secs();
    Ok(json(
        StatusCode::OK,
        serde_json::json!({ "route": route.name, "bucket_secs": bucket_secs, "buckets": buckets, "changes": changes }),
    ))
}
