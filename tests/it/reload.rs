//! Hot reload of a real process: a broken file keeps the old configuration serving; a good one
//! adds a route and rotates a secret with requests in flight, none failing; dials survive both.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};

use crate::control::{call, control_config, get_json, send_order, start_replica, ALICE, ENV};
use crate::harness::{eventually, metric, post, send};
use crate::parity::{deciding_monolith, SECRET};
use crate::sign;
use crate::support::broker::Tansu;

const WAIT: Duration = Duration::from_secs(60);
const NEW_SECRET: &str = "whsec_rotated";

fn github_route(secret_env: &str) -> String {
    format!(
        "\n[[route]]\nname = \"github\"\nmatch = {{ path = \"/webhooks/github\" }}\ntopic = \"webhooks.github\"\nsignature = {{ scheme = \"github\", secrets_env = [\"{secret_env}\"] }}\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_keeps_serving_on_a_broken_file_and_swaps_routes_and_secrets_without_failing_a_request() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("strangler.toml");
    let original = control_config(&monolith.url(), &tansu.brokers, "");
    std::fs::write(&file, &original).unwrap();
    let mut env = ENV.to_vec();
    env.extend([("S_NEW", NEW_SECRET), ("GH", "github-secret")]);
    let replica = start_replica(&file, &env, "r").await;
    let admin = replica.admin.clone();

    let dialled = call(
        Method::PUT,
        &format!("{admin}/api/routes/orders/share"),
        Some(ALICE),
        serde_json::json!({"percent": 25, "reason": "before reloads"}),
    )
    .await;
    assert_eq!(dialled.status, StatusCode::OK);
    let version = dialled.json()["version"].as_u64().unwrap();

    // A broken file: refused with file, line and key; the old configuration keeps serving.
    std::fs::write(&file, original.replace("topic = \"webhooks.orders\"", "topik = \"webhooks.orders\"")).unwrap();
    let refused = call(Method::POST, &format!("{admin}/api/reload"), Some(ALICE), serde_json::json!({})).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.json()["error"]["code"], "config_invalid");
    let message = refused.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("strangler.toml:") && message.contains("route[0]") && message.contains("topik"), "{message}");
    replica.signal("-HUP");
    let counted = || async {
        let text = send(Method::GET, &format!("{admin}/metrics"), &[], "").await;
        metric(std::str::from_utf8(&text.body).unwrap(), "strangler_config_reloads_total", &[("result", "error")]) == 2.0
    };
    assert!(eventually(WAIT, counted).await, "SIGHUP with a broken file is counted as an error");
    assert!(replica.log_text().contains("reload refused"), "{}", replica.log_text());
    assert!(send_order(&replica.public, "evt_still", "cus_1", SECRET).await.status.is_success(), "still serving");
    assert_eq!(get_json(&format!("{admin}/api/routes/orders")).await["version"].as_u64(), Some(version));

    // A good file: a new route, and the orders secret rotated (old and new both pass), while
    // requests signed with the old secret keep arriving.
    let rotating = original.replace("secrets_env = [\"S\"]", "secrets_env = [\"S\", \"S_NEW\"]") + &github_route("GH");
    std::fs::write(&file, &rotating).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let senders: Vec<_> = (0..4)
        .map(|w| {
            let (stop, sent, failed, public) = (stop.clone(), sent.clone(), failed.clone(), replica.public.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Acquire) || i < 10 {
                    let reply = send_order(&public, &format!("evt_flight_{w}_{i}"), &format!("cus_{i}"), SECRET).await;
                    sent.fetch_add(1, Ordering::AcqRel);
                    if !reply.status.is_success() {
                        failed.fetch_add(1, Ordering::AcqRel);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    let in_flight = || async { sent.load(Ordering::Acquire) >= 20 };
    assert!(eventually(WAIT, in_flight).await);
    let reloaded = call(Method::POST, &format!("{admin}/api/reload"), Some(ALICE), serde_json::json!({})).await;
    assert_eq!(reloaded.status, StatusCode::OK, "{:?}", reloaded.body);
    assert_eq!(reloaded.json()["report"]["added"], serde_json::json!(["github"]));
    let more = sent.load(Ordering::Acquire) + 20;
    let after = || async { sent.load(Ordering::Acquire) >= more };
    assert!(eventually(WAIT, after).await);
    stop.store(true, Ordering::Release);
    for s in senders {
        s.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Acquire), 0, "no request failed across the reload ({} sent)", sent.load(Ordering::Acquire));

    // The new route serves; the new secret passes; the dial survived.
    let body = br#"{"zen":"reloaded"}"#;
    let mut headers = sign::github("github-secret", body);
    headers.push(("X-GitHub-Delivery".into(), "reload-1".into()));
    let github = post(&format!("http://{}/webhooks/github", replica.public), &headers, &body[..]).await;
    assert_ne!(github.status, StatusCode::UNAUTHORIZED, "verified with the new route's secret");
    let published = || async {
        let text = send(Method::GET, &format!("{admin}/metrics"), &[], "").await;
        metric(std::str::from_utf8(&text.body).unwrap(), "strangler_events_published_total", &[("route", "github")]) == 1.0
    };
    assert!(eventually(WAIT, published).await, "the new route's topic was created and the event published");
    assert_eq!(get_json(&format!("{admin}/api/routes/github")).await["mode"], "shadow");
    assert!(send_order(&replica.public, "evt_new_secret", "cus_2", NEW_SECRET).await.status.is_success());
    let orders = get_json(&format!("{admin}/api/routes/orders")).await;
    assert_eq!((orders["version"].as_u64(), orders["share_percent"].as_f64()), (Some(version), Some(25.0)), "the dial survived");

    // Finish the rotation by SIGHUP: the old secret is refused now.
    std::fs::write(&file, original.replace("secrets_env = [\"S\"]", "secrets_env = [\"S_NEW\"]") + &github_route("GH")).unwrap();
    replica.signal("-HUP");
    let old_refused =
        || async { send_order(&replica.public, "evt_old_secret", "cus_3", SECRET).await.status == StatusCode::UNAUTHORIZED };
    assert!(eventually(WAIT, old_refused).await, "the old secret is refused after the second reload");
    assert!(send_order(&replica.public, "evt_new_secret_2", "cus_4", NEW_SECRET).await.status.is_success());
    assert_eq!(get_json(&format!("{admin}/api/routes/orders")).await["version"].as_u64(), Some(version));
}

/// Secrets get the same rules at start-up, on reload and in `check-config` (one validation): a
/// blank or too-short secret is refused with file, line and key and the old configuration stays;
/// a weak one is accepted with a warning in the log.
#[tokio::test(flavor = "multi_thread")]
async fn reload_refuses_blank_and_short_secrets_and_logs_weak_ones() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("strangler.toml");
    let original = control_config(&monolith.url(), &tansu.brokers, "");
    std::fs::write(&file, &original).unwrap();
    let mut env = ENV.to_vec();
    env.extend([("BLANK", " \t "), ("SHORT_STD", "whsec_c3RyYW5nbGVyLW90aGVyLXNlY3JldA=="), ("WEAK", "short")]);
    let replica = start_replica(&file, &env, "secrets").await;
    let admin = replica.admin.clone();

    let std_route = "\n[[route]]\nname = \"std\"\nmatch = { path = \"/webhooks/std\" }\ntopic = \"webhooks.std\"\nsignature = { scheme = \"standard-webhooks\", secrets_env = [\"SHORT_STD\"] }\n";
    for (added, found) in [(github_route("BLANK"), "found only whitespace"), (std_route.to_string(), "found a key of 22 bytes")] {
        std::fs::write(&file, format!("{original}{added}")).unwrap();
        let refused = call(Method::POST, &format!("{admin}/api/reload"), Some(ALICE), serde_json::json!({})).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        let message = refused.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains("strangler.toml:") && message.contains("route[1].signature.secrets_env[0]"), "{message}");
        assert!(message.contains(found), "{message}");
        assert!(!message.contains("c3RyYW5nbGVy"), "the secret leaked: {message}");
    }
    assert!(send_order(&replica.public, "evt_kept", "cus_1", SECRET).await.status.is_success(), "still serving");

    std::fs::write(&file, format!("{original}{}", github_route("WEAK"))).unwrap();
    let reloaded = call(Method::POST, &format!("{admin}/api/reload"), Some(ALICE), serde_json::json!({})).await;
    assert_eq!(reloaded.status, StatusCode::OK, "{:?}", reloaded.body);
    let warned = || async {
        let log = replica.log_text();
        log.contains("configuration accepted with a warning")
            && log.contains("route[1].signature.secrets_env[0]")
            && log.contains("found 5 bytes in environment variable WEAK")
    };
    assert!(eventually(WAIT, warned).await, "{}", replica.log_text());
}
