//! What the operator CLI prints, as pure functions from the admin API's JSON to text: the status
//! and audit tables, the line after a change, the reload report. A field that is missing or
//! `null` prints as `-`, never a panic.

use serde_json::Value;

/// Printed where a figure is missing or has no samples.
const NONE: &str = "-";

/// `GET /api/routes` as one line per route.
pub fn status_table(v: &Value) -> String {
    let headers = ["ROUTE", "MODE", "SHARE", "PARITY 5m", "SAMPLES", "NEW ERR", "GUARD", "ROLLOUT", "VERSION"];
    let routes = v["routes"].as_array().map(Vec::as_slice).unwrap_or_default();
    let rows = routes
        .iter()
        .map(|r| {
            let five = &r["parity"]["windows"]["5m"];
            vec![
                text(&r["name"]),
                text(&r["mode"]),
                effective_share(r).map_or_else(|| NONE.into(), percent),
                five["ratio"].as_f64().map_or_else(|| NONE.into(), ratio),
                five["samples"].as_u64().map_or_else(|| NONE.into(), |n| n.to_string()),
                five["new_error_rate"].as_f64().map_or_else(|| NONE.into(), ratio),
                text(&r["guard"]["state"]),
                rollout(&r["rollout"]),
                text(&r["version"]),
            ]
        })
        .collect();
    table(&headers, rows)
}

/// `GET /api/audit`, newest first.
pub fn audit_table(v: &Value) -> String {
    let entries = v["entries"].as_array().map(Vec::as_slice).unwrap_or_default();
    if entries.is_empty() {
        return "no changes recorded".into();
    }
    let headers = ["AT", "ROUTE", "BY", "OLD → NEW", "REASON"];
    let rows = entries
        .iter()
        .map(|e| {
            let old = if e["old"].is_null() { "(added)".to_string() } else { dial(&e["old"]) };
            let mut reason = text(&e["reason"]);
            if e["guard_tripped"] == true {
                reason.push_str(" [guard tripped]");
            }
            vec![text(&e["at"]), text(&e["route"]), text(&e["by"]), format!("{old} → {}", dial(&e["new"])), reason]
        })
        .collect();
    table(&headers, rows)
}

/// A route's view after a change: `orders: split 12.5% (version 42) by alice`.
pub fn change_line(r: &Value) -> String {
    let share = effective_share(r).map_or_else(|| NONE.into(), percent);
    let kept = match (r["share_percent"].as_f64(), effective_share(r)) {
        (Some(dialled), Some(effective)) if dialled != effective => format!(", dial kept at {}", percent(dialled)),
        _ => String::new(),
    };
    let paused = if r["rollout"].is_object() && r["rollout_paused"] == true { ", rollout paused" } else { "" };
    format!(
        "{}: {} {share}{kept}{paused} (version {}) by {}",
        text(&r["name"]),
        text(&r["mode"]),
        text(&r["version"]),
        text(&r["by"])
    )
}

/// `POST /api/reload`'s answer: what was added and removed, and what needs a restart.
pub fn reload_report(v: &Value) -> String {
    let report = &v["report"];
    let list = |key: &str| {
        let items: Vec<String> = report[key].as_array().map(Vec::as_slice).unwrap_or_default().iter().map(text).collect();
        if items.is_empty() {
            "none".to_string()
        } else {
            items.join(", ")
        }
    };
    let routes = report["routes"].as_array().map_or(0, Vec::len);
    let mut out = format!("reloaded: {routes} route(s) in force: {}\n", list("routes"));
    out.push_str(&format!("added: {}\nremoved: {}\n", list("added"), list("removed")));
    let restart = list("restart_needed");
    if restart == "none" {
        out.push_str("restart needed: none");
    } else {
        out.push_str(&format!("restart needed: {restart} (changed in the file; in force only after a restart)"));
    }
    out
}

/// The share in effect: `effective_share_percent`, else what the mode implies (an audit entry
/// carries only the mode and the dialled share).
fn effective_share(r: &Value) -> Option<f64> {
    r["effective_share_percent"].as_f64().or_else(|| match r["mode"].as_str()? {
        "cutover" => Some(100.0),
        "passthrough" | "shadow" => Some(0.0),
        _ => r["share_percent"].as_f64(),
    })
}

/// `split 12.5% v42`, with the share in effect (`cutover 100%`), as `status` shows it.
fn dial(d: &Value) -> String {
    let share = effective_share(d).map_or_else(|| NONE.into(), percent);
    format!("{} {share} v{}", text(&d["mode"]), text(&d["version"]))
}

/// `step 3/5` (steps reached of all), `paused`, or `-` without a rollout. `step` is the index of the last
/// step reached (`null` below the first).
fn rollout(r: &Value) -> String {
    if !r.is_object() {
        return NONE.into();
    }
    if r["paused"] == true {
        return "paused".into();
    }
    let steps = r["steps"].as_array().map_or(0, Vec::len);
    let reached = r["step"].as_u64().map_or(0, |i| i + 1);
    format!("step {reached}/{steps}")
}

/// A percent as the dial takes it: at most two decimals, no trailing zeros (`12.5%`, `100%`).
pub fn percent(p: f64) -> String {
    let text = format!("{p:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// A ratio (0..1) as a percent with two decimals: `0.995` → `99.50%`.
pub fn ratio(r: f64) -> String {
    format!("{:.2}%", r * 100.0)
}

/// A string as-is, a number or bool as JSON, anything else as `-`.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(_) | Value::Bool(_) => v.to_string(),
        _ => NONE.into(),
    }
}

/// Left-aligned columns two spaces apart; the last column is not padded.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.extend(std::iter::repeat_n(' ', widths[i] - cell.chars().count() + 2));
            }
        }
        out.trim_end().to_string()
    };
    let mut lines = vec![line(headers.iter().map(|h| h.to_string()).collect())];
    lines.extend(rows.into_iter().map(line));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn route(extra: Value) -> Value {
        let mut r = json!({
            "name": "orders", "mode": "split", "share_percent": 12.5, "effective_share_percent": 12.5,
            "version": 42, "by": "alice",
            "parity": {"windows": {"5m": {"ratio": 0.995, "samples": 400, "new_error_rate": 0.0025}}},
            "guard": {"state": "ok"},
            "rollout": {"steps": [1.0, 5.0, 12.5, 50.0, 100.0], "step": 2, "paused": false},
        });
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    }

    #[test]
    fn status_lines_up_every_column() {
        let cutover =
            route(json!({"name": "billing", "mode": "cutover", "share_percent": 30.0, "effective_share_percent": 100.0,
            "parity": {"windows": {"5m": {"ratio": null, "samples": 0, "new_error_rate": null}}},
            "guard": null, "rollout": null, "version": 7}));
        let table = status_table(&json!({"routes": [route(json!({})), cutover]}));
        let want = "\
ROUTE    MODE     SHARE  PARITY 5m  SAMPLES  NEW ERR  GUARD  ROLLOUT   VERSION
orders   split    12.5%  99.50%     400      0.25%    ok     step 3/5  42
billing  cutover  100%   -          0        -        -      -         7";
        assert_eq!(table, want);
    }

    #[test]
    fn status_survives_missing_and_null_fields() {
        let table = status_table(&json!({"routes": [{"name": "bare"}, {"mode": "shadow", "parity": null}]}));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["bare", "-", "-", "-", "-", "-", "-", "-", "-"]);
        assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["-", "shadow", "0%", "-", "-", "-", "-", "-", "-"]);
        assert_eq!(status_table(&json!({})).lines().count(), 1, "headers only");
        assert_eq!(status_table(&json!(null)).lines().count(), 1);
    }

    #[test]
    fn rollout_column() {
        #[rustfmt::skip]
        let cases = [
            (json!(null), "-"),
            (json!({"steps": [1, 5], "step": null, "paused": false}), "step 0/2"),
            (json!({"steps": [1, 5], "step": 1, "paused": false}), "step 2/2"),
            (json!({"steps": [1, 5], "step": 0, "paused": true}), "paused"),
            (json!({}), "step 0/0"),
        ];
        for (r, want) in cases {
            assert_eq!(rollout(&r), want, "{r}");
        }
    }

    #[test]
    fn percents() {
        let cases = [(12.5, "12.5%"), (100.0, "100%"), (0.0, "0%"), (0.01, "0.01%"), (33.33, "33.33%"), (10.0, "10%")];
        for (p, want) in cases {
            assert_eq!(percent(p), want);
        }
        assert_eq!(ratio(1.0), "100.00%");
        assert_eq!(ratio(0.0), "0.00%");
        assert_eq!(ratio(0.98765), "98.77%");
    }

    #[test]
    fn change_lines() {
        #[rustfmt::skip]
        let cases = [
            (route(json!({})), "orders: split 12.5% (version 42) by alice"),
            (route(json!({"mode": "shadow", "effective_share_percent": 0.0, "share_percent": 0.0, "rollout_paused": true, "version": 43})),
             "orders: shadow 0%, rollout paused (version 43) by alice"),
            (route(json!({"mode": "cutover", "effective_share_percent": 100.0, "rollout": null, "rollout_paused": true})),
             "orders: cutover 100%, dial kept at 12.5% (version 42) by alice"),
            (json!({"name": "x"}), "x: - - (version -) by -"),
        ];
        for (r, want) in cases {
            assert_eq!(change_line(&r), want);
        }
    }

    #[test]
    fn audit_shows_old_to_new_newest_first() {
        let entries = json!({"entries": [
            {"at": "2026-12-01T10:05:00.000Z", "route": "orders", "by": "guard", "reason": "parity 0.90 under 0.99",
             "old": {"mode": "cutover", "share_percent": 12.5, "version": 2}, "new": {"mode": "shadow", "share_percent": 0.0, "version": 3},
             "guard_tripped": true},
            {"at": "2026-12-01T10:00:00.000Z", "route": "orders", "by": "alice", "reason": "first step",
             "old": {"mode": "shadow", "share_percent": 0.0, "version": 1}, "new": {"mode": "split", "share_percent": 12.5, "version": 2}},
            {"at": "2026-12-01T09:00:00.000Z", "route": "billing", "by": "reload", "reason": "route added by reload",
             "old": null, "new": {"mode": "shadow", "share_percent": 0.0, "version": 0}},
        ]});
        let want = "\
AT                        ROUTE    BY      OLD → NEW                       REASON
2026-12-01T10:05:00.000Z  orders   guard   cutover 100% v2 → shadow 0% v3  parity 0.90 under 0.99 [guard tripped]
2026-12-01T10:00:00.000Z  orders   alice   shadow 0% v1 → split 12.5% v2   first step
2026-12-01T09:00:00.000Z  billing  reload  (added) → shadow 0% v0          route added by reload";
        assert_eq!(audit_table(&entries), want);
        assert_eq!(audit_table(&json!({"entries": []})), "no changes recorded");
        assert_eq!(audit_table(&json!({"entries": [{}]})).lines().nth(1).unwrap(), "-   -      -   (added) → - - v-  -");
    }

    #[test]
    fn reload_reports_what_changed() {
        let ok = json!({"result": "ok", "report": {"routes": ["orders", "billing"], "added": ["billing"], "removed": [], "restart_needed": []}});
        assert_eq!(
            reload_report(&ok),
            "reloaded: 2 route(s) in force: orders, billing\nadded: billing\nremoved: none\nrestart needed: none"
        );
        let restart =
            json!({"report": {"routes": ["orders"], "added": [], "removed": ["old"], "restart_needed": ["kafka", "server"]}});
        assert!(reload_report(&restart)
            .ends_with("removed: old\nrestart needed: kafka, server (changed in the file; in force only after a restart)"));
        assert_eq!(
            reload_report(&json!({})),
            "reloaded: 0 route(s) in force: none\nadded: none\nremoved: none\nrestart needed: none"
        );
    }
}
