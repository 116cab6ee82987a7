//! `GET /api/lag`: the consumer lag of every watched group, per topic and partition, as the lag
//! monitor last saw it (this replica's view).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};

use super::{json, Api, ApiError};

pub async fn lag(State(api): State<Arc<Api>>, headers: HeaderMap) -> Result<Response, ApiError> {
    api.reader(&headers)?;
    let snapshot = api.lag.snapshot();
    Ok(json(
        StatusCode::OK,
        serde_json::json!({
            "interval": interval(api.lag.interval),
            "refreshed_at": snapshot.refreshed_at.map(|t| humantime::format_rfc3339_millis(t).to_string()),
            "groups": snapshot.groups,
        }),
    ))
}

/// `lag.interval_ms` as `"5s"`, or `"1500ms"` when not whole seconds.
fn interval(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn intervals_read_as_configured() {
        for (ms, text) in [(5000, "5s"), (1000, "1s"), (1500, "1500ms"), (300_000, "300s")] {
            assert_eq!(super::interval(std::time::Duration::from_millis(ms)), text);
        }
    }
}
