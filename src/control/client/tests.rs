//! Tests of the operator CLI's client: admin URLs, tokens, percents, calls and a real exchange.

use super::*;

#[test]
fn admin_urls() {
    let ok = |s: &str| AdminUrl::parse(s, "--admin").map(|u| u.as_str().to_string()).map_err(|e| e.to_string());
    assert_eq!(ok("http://127.0.0.1:9090"), Ok("http://127.0.0.1:9090".into()));
    assert_eq!(ok("http://admin.internal:9090/"), Ok("http://admin.internal:9090".into()));
    assert_eq!(ok(" http://localhost "), Ok("http://localhost".into()));
    assert_eq!(ok("https://admin.internal:9443/"), Ok("https://admin.internal:9443".into()));
    for (bad, needle) in [
        ("127.0.0.1:9090", "expected http://host:port"),
        ("ftp://x", "expected http://host:port"),
        ("http://x:9090/api", "without a path"),
        ("http://x:9090?a=b", "without a path"),
        ("http://", "expected http://host:port"),
        ("not a url", "expected http://host:port"),
    ] {
        let err = AdminUrl::parse(bad, "--admin").unwrap_err();
        assert_eq!(err.exit_code(), 2, "{bad}");
        let text = err.to_string();
        assert!(text.starts_with("--admin: ") && text.contains(needle) && text.contains(bad.trim()), "{bad}: {text}");
    }
}

#[test]
fn the_flag_wins_over_the_environment_which_wins_over_the_default() {
    let url = |flag, env| AdminUrl::choose(flag, env).unwrap().as_str().to_string();
    assert_eq!(url(Some("http://a:1"), Some("http://b:2")), "http://a:1");
    assert_eq!(url(None, Some("http://b:2")), "http://b:2");
    assert_eq!(url(None, Some(" ")), DEFAULT_ADMIN);
    assert_eq!(url(None, None), DEFAULT_ADMIN);
    let err = AdminUrl::choose(None, Some("ftp://b")).unwrap_err().to_string();
    assert!(err.starts_with("STRANGLER_ADMIN: "), "{err}");
}

#[test]
fn percents_from_the_command_line() {
    for (text, want) in [("12.5", 12.5), ("0", 0.0), ("100", 100.0), ("0.01", 0.01), ("30%", 30.0)] {
        assert_eq!(parse_percent(text), Ok(want), "{text}");
    }
    for bad in ["101", "-1", "12.345", "abc", "", "NaN", "inf"] {
        let err = parse_percent(bad).unwrap_err();
        assert!(err.contains("from 0 to 100") && err.contains(&format!("`{bad}`")), "{bad}: {err}");
    }
}

#[test]
fn tokens_are_redacted_and_blank_is_none() {
    let t = BearerToken::from_env_value(Some(" s3cret ".into())).unwrap();
    assert_eq!(format!("{t:?}"), "BearerToken([redacted])");
    assert_eq!(t.0, "s3cret");
    assert!(BearerToken::from_env_value(Some("  ".into())).is_none());
    assert!(BearerToken::from_env_value(None).is_none());
}

#[test]
fn calls_are_requests() {
    let share = Call::Share { route: "orders".into(), percent: 12.5, reason: "x".into(), expected_version: Some(41) };
    let mode = Call::Mode { route: "a b".into(), mode: "cutover".into(), reason: "y".into(), expected_version: None };
    #[rustfmt::skip]
    let cases = [
        (Call::Status, Method::GET, "/api/routes", None),
        (share, Method::PUT, "/api/routes/orders/share", Some(json!({"percent": 12.5, "reason": "x", "expected_version": 41}))),
        (mode, Method::PUT, "/api/routes/a%20b/mode", Some(json!({"mode": "cutover", "reason": "y"}))),
        (Call::Rollback { route: "orders".into(), reason: "z".into() }, Method::POST, "/api/routes/orders/rollback", Some(json!({"reason": "z"}))),
        (Call::Resume { route: "orders".into(), reason: None }, Method::POST, "/api/routes/orders/rollout/resume", Some(json!({}))),
        (Call::Resume { route: "orders".into(), reason: Some("go".into()) }, Method::POST, "/api/routes/orders/rollout/resume", Some(json!({"reason": "go"}))),
        (Call::Audit { route: None, limit: None }, Method::GET, "/api/audit", None),
        (Call::Audit { route: Some("o/&".into()), limit: Some(5) }, Method::GET, "/api/audit?route=o%2F%26&limit=5", None),
        (Call::Reload, Method::POST, "/api/reload", Some(json!({}))),
    ];
    for (call, method, path, body) in cases {
        assert_eq!(call.request(), (method, path.to_string(), body), "{call:?}");
    }
}

#[test]
fn refusals_carry_the_code_and_message_in_plain_words() {
    let body = r#"{"error":{"code":"version_conflict","message":"version 41 is in force","version":41}}"#;
    let e = refusal(409, Bytes::from(body));
    assert_eq!((e.exit_code(), e.to_string()), (1, "refused (409 version_conflict): version 41 is in force".into()));
    let e = refusal(401, Bytes::from(r#"{"error":{"code":"unauthorized","message":"needs a token"}}"#));
    assert!(e.to_string().starts_with("refused (401 unauthorized): needs a token\nhint: export STRANGLER_ADMIN_TOKEN="));
    let e = refusal(502, Bytes::from("<html>Bad Gateway</html>"));
    assert_eq!(e.to_string(), "refused (502): <html>Bad Gateway</html>");
    assert_eq!(refusal(503, Bytes::new()).to_string(), "refused (503): (no message)");
}

#[tokio::test]
async fn nothing_listening_is_unreachable_and_names_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let admin = Admin::new(AdminUrl::parse(&url, "--admin").unwrap(), None);
    let e = admin.run(&Call::Status, false).await.unwrap_err();
    assert_eq!(e.exit_code(), 3, "{e}");
    assert!(e.to_string().starts_with(&format!("cannot reach the admin API at {url}: ")), "{e}");
}
