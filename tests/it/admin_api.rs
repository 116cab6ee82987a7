//! The admin API's refusals: tokens, bad input, unknown routes and endpoints. Every refusal is a
//! stable JSON error, counted, and changes nothing (no new version, no audit entry).

use std::time::Duration;

use http::{Method, StatusCode};

use crate::control::{bearer, call, control_config, ALICE, BOB, ENV};
use crate::harness::{eventually, metric, scrape, send, start_proxy};
use crate::parity::deciding_monolith;
use crate::support::broker::Tansu;
use crate::support::kafka::drain;

/// Method, path, headers, body, expected status and error code.
type Case = (&'static str, &'static str, Vec<(String, String)>, String, StatusCode, &'static str);

#[tokio::test(flavor = "multi_thread")]
async fn changes_need_a_named_token_and_bad_input_changes_nothing() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let proxy = start_proxy(&control_config(&monolith.url(), &tansu.brokers, ""), &ENV, None).await;
    let admin = format!("http://{}", proxy.admin_addr);
    let share = format!("{admin}/api/routes/orders/share");
    let good = serde_json::json!({"percent": 10, "reason": "ok"});

    // Reads are open; changes are not.
    assert_eq!(send(Method::GET, &format!("{admin}/api/routes"), &[], "").await.status, StatusCode::OK);
    let none = call(Method::PUT, &share, None, good.clone()).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.json()["error"]["code"], "unauthorized");
    assert!(none.headers.get("www-authenticate").is_some());
    let wrong = call(Method::PUT, &share, Some("alice-token-0123456788"), good.clone()).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let basic = send(Method::PUT, &share, &[("Authorization".into(), "Basic YWxpY2U6eA==".into())], good.to_string()).await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_admin_auth_failures_total", &[("reason", "missing")]), 1.0);
    assert_eq!(metric(&text, "strangler_admin_auth_failures_total", &[("reason", "invalid")]), 2.0);

    // Bad input, with a good token: status, stable code, nothing changed.
    let long = "x".repeat(100 * 1024);
    let cases: Vec<Case> = vec![
        (
            "PUT",
            "/api/routes/orders/share",
            bearer(ALICE),
            r#"{"percent": 101, "reason": "r"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_share",
        ),
        (
            "PUT",
            "/api/routes/orders/share",
            bearer(ALICE),
            r#"{"percent": -1, "reason": "r"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_share",
        ),
        (
            "PUT",
            "/api/routes/orders/share",
            bearer(ALICE),
            r#"{"percent": 12.345, "reason": "r"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_share",
        ),
        (
            "PUT",
            "/api/routes/orders/share",
            bearer(ALICE),
            r#"{"percent": "NaN", "reason": "r"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_share",
        ),
        (
            "PUT",
            "/api/routes/orders/share",
            bearer(ALICE),
            r#"{"percent": NaN, "reason": "r"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            "PUT",
            "/api/routes/orders/share",
            bearer(ALICE),
            r#"{"percent": 10}"#.into(),
            StatusCode::BAD_REQUEST,
            "missing_reason",
        ),
        (
            "PUT",
            "/api/routes/orders/share",
            bearer(ALICE),
            r#"{"percent": 10, "reason": "  "}"#.into(),
            StatusCode::BAD_REQUEST,
            "missing_reason",
        ),
        (
            "PUT",
            "/api/routes/orders/share",
            bearer(ALICE),
            r#"{"percent": 10, "reason": "r", "extra": 1}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        ("PUT", "/api/routes/orders/share", bearer(ALICE), "[1,2".into(), StatusCode::BAD_REQUEST, "invalid_body"),
        (
            "PUT",
            "/api/routes/orders/share",
            bearer(ALICE),
            r#"{"percent": 10, "reason": "r", "expected_version": 7}"#.into(),
            StatusCode::CONFLICT,
            "version_conflict",
        ),
        (
            "PUT",
            "/api/routes/orders/mode",
            bearer(ALICE),
            r#"{"mode": "sideways", "reason": "r"}"#.into(),
            StatusCode::BAD_REQUEST,
            "invalid_mode",
        ),
        ("PUT", "/api/routes/nope/share", bearer(ALICE), good.to_string(), StatusCode::NOT_FOUND, "unknown_route"),
        ("POST", "/api/routes/orders/rollback", bearer(ALICE), "{}".into(), StatusCode::BAD_REQUEST, "missing_reason"),
        ("POST", "/api/routes/orders/rollout/resume", bearer(ALICE), "{}".into(), StatusCode::CONFLICT, "no_rollout"),
        (
            "PUT",
            "/api/routes/orders/share",
            vec![("Authorization".into(), format!("Bearer {ALICE}")), ("Content-Type".into(), "text/plain".into())],
            good.to_string(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "PUT",
            "/api/routes/orders/share",
            vec![("Authorization".into(), format!("Bearer {ALICE}"))],
            good.to_string(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "PUT",
            "/api/routes/orders/share",
            bearer(ALICE),
            format!(r#"{{"percent": 10, "reason": "{long}"}}"#),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            "DELETE",
            "/api/routes/orders/share",
            bearer(ALICE),
            String::new(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        ("GET", "/api/nothing-here", vec![], String::new(), StatusCode::NOT_FOUND, "not_found"),
        ("GET", "/api/routes/nope", vec![], String::new(), StatusCode::NOT_FOUND, "unknown_route"),
        ("GET", "/api/audit?limit=many", vec![], String::new(), StatusCode::BAD_REQUEST, "invalid_query"),
    ];
    for (method, path, headers, body, status, code) in cases {
        let reply = send(method.parse().unwrap(), &format!("{admin}{path}"), &headers, body).await;
        assert_eq!(reply.status, status, "{method} {path}: {:?}", reply.body);
        assert_eq!(reply.json()["error"]["code"], code, "{method} {path}");
        assert!(reply.json()["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let route = send(Method::GET, &format!("{admin}/api/routes/orders"), &[], "").await.json();
    assert_eq!((route["version"].as_u64(), route["mode"].as_str()), (Some(0), Some("shadow")), "nothing changed");
    let audit = send(Method::GET, &format!("{admin}/api/audit"), &[], "").await.json();
    assert_eq!(audit["entries"].as_array().map(Vec::len), Some(0), "no audit entry for a refusal");
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_control_changes_total", &[]), 0.0);
    assert!(metric(&text, "strangler_admin_requests_total", &[("status", "400")]) >= 10.0);

    // The same call with a token goes through, and is audited under the token's name.
    let ok = call(Method::PUT, &share, Some(BOB), good).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(ok.json()["by"], "bob");
    let audited = || async { drain(&tansu.brokers, "strangler.audit", Duration::from_secs(10)).await.len() == 1 };
    assert!(eventually(Duration::from_secs(30), audited).await);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_can_require_a_token_too() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let cfg = control_config(&monolith.url(), &tansu.brokers, "")
        .replace("[[admin.token]]\nname = \"alice\"", "read_requires_token = true\n[[admin.token]]\nname = \"alice\"");
    let proxy = start_proxy(&cfg, &ENV, None).await;
    let admin = format!("http://{}", proxy.admin_addr);
    for path in ["/api/routes", "/api/routes/orders", "/api/routes/orders/mismatches", "/api/audit"] {
        let open = send(Method::GET, &format!("{admin}{path}"), &[], "").await;
        assert_eq!(open.status, StatusCode::UNAUTHORIZED, "{path}");
        let with = send(Method::GET, &format!("{admin}{path}"), &bearer(ALICE), "").await;
        assert_eq!(with.status, StatusCode::OK, "{path}");
    }
    // Probes and the scrape stay open.
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(send(Method::GET, &format!("{admin}{path}"), &[], "").await.status, StatusCode::OK, "{path}");
    }
    proxy.shutdown().await;
}
