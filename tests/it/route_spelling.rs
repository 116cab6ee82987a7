//! A route cannot be sidestepped by spelling its path differently: a corpus of spellings over raw
//! sockets, against a route in `enforce` (bad signatures) and in `split` (valid ones), with the
//! recording sample monolith and real Tansu as witnesses.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use rdkafka::Message;
use strangler::demo::monolith::{Monolith, MonolithHandle};
use strangler::route::assign::{assign, Mode, Share};

use crate::harness::{eventually, metric, scrape, start_proxy};
use crate::sign;
use crate::support::broker::Tansu;
use crate::support::kafka::{drain, header};
pub use crate::support::wire::Raw;
use crate::support::wire::{exchange, responses};

pub const WAIT: Duration = Duration::from_secs(60);
pub const SECRET: &str = "gh-spelling-secret";

/// Targets that are the route `POST /webhooks/github` (alias `/webhooks/github.json`), with the
/// path the monolith must see (the original, never rewritten; absolute form becomes its path).
const SAME_ROUTE: &[(&str, &str)] = &[
    ("/webhooks/github", "/webhooks/github"),
    ("/webhooks/github/", "/webhooks/github/"),
    ("//webhooks/github", "//webhooks/github"),
    ("/webhooks//github", "/webhooks//github"),
    ("///webhooks///github///", "///webhooks///github///"),
    ("http://x//webhooks/github", "//webhooks/github"),
    ("http://x/webhooks/github/", "/webhooks/github/"),
    ("/webhooks/%67ithub", "/webhooks/%67ithub"),
    ("/%77ebhooks/github", "/%77ebhooks/github"),
    ("/%77ebhooks/%67%69%74%68%75%62", "/%77ebhooks/%67%69%74%68%75%62"),
    ("/webhooks/%67%69%74hub", "/webhooks/%67%69%74hub"),
    ("/x/../webhooks/github", "/x/../webhooks/github"),
    ("/webhooks/./github", "/webhooks/./github"),
    ("/webhooks/%2e/github", "/webhooks/%2e/github"),
    ("/webhooks/%2E/github", "/webhooks/%2E/github"),
    ("/webhooks/github/x/..", "/webhooks/github/x/.."),
    ("/webhooks/github/x/%2e%2e", "/webhooks/github/x/%2e%2e"),
    ("/webhooks/github/x/.%2e/", "/webhooks/github/x/.%2e/"),
    ("/webhooks/github/x/%2E./", "/webhooks/github/x/%2E./"),
    ("//..//webhooks/github", "//..//webhooks/github"),
    ("/a/b/../../webhooks/./%67ithub//", "/a/b/../../webhooks/./%67ithub//"),
    ("/webhooks/github;x=1", "/webhooks/github;x=1"),
    ("/webhooks/github/..;/github", "/webhooks/github/..;/github"),
    ("/webhooks;a=b/github;c", "/webhooks;a=b/github;c"),
    ("/webhooks/github.json", "/webhooks/github.json"),
    ("/webhooks/github.json/", "/webhooks/github.json/"),
    ("/webhooks/%67ithub%2Ejson", "/webhooks/%67ithub%2Ejson"),
    ("/webhooks/github?x=1", "/webhooks/github"),
];

/// Spellings that are ambiguous near the route: `400 ambiguous_path`.
const AMBIGUOUS: &[&str] = &[
    "/webhooks%2Fgithub",
    "/webhooks%2fgithub",
    "/webhooks%5Cgithub",
    "/webhooks%5cgithub",
    "/webhooks\\github",
    "/webhooks/github%00",
    "/webhooks/github%00.json",
    "/webhooks/%zz/../github",
    "/webhooks/github/%4/..",
    "/webhooks%2F..%2Fwebhooks%2Fgithub",
    "/WEBHOOKS/GITHUB",
    "/Webhooks/github/",
    "/webhooks/GitHub.json",
    "/webhooks/%67%49%54hub",
    "/webhooks/github%3Bx=1",
];

/// Other methods on the route's path: `405` with `Allow: POST`.
const METHODS: &[(&str, &str)] = &[
    ("PUT", "/webhooks/github"),
    ("GET", "/webhooks/github"),
    ("post", "/webhooks/github"),
    ("DELETE", "/webhooks/github/"),
    ("PATCH", "//webhooks/%67ithub"),
];

/// Sends one request exactly as written (method, target, headers, body) and reads the answer.
pub async fn raw(addr: SocketAddr, method: &str, target: &str, headers: &[(String, String)], body: &[u8]) -> Raw {
    let mut wire = format!("{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        wire.push_str(&format!("{k}: {v}\r\n"));
    }
    wire.push_str("\r\n");
    let sent = [wire.as_bytes(), body].concat();
    let mut answers = responses(&exchange(addr, &sent).await);
    assert_eq!(answers.len(), 1, "{target:?}: one answer");
    answers.remove(0)
}

fn config(legacy: &str, brokers: &str, mode: &str) -> String {
    format!(
        r#"
[legacy]
url = "{legacy}"
[kafka]
brokers = "{brokers}"
partitions = 1
[[route]]
name = "github"
match = {{ path = "/webhooks/github", aliases = ["/webhooks/github.json"] }}
topic = "webhooks.github"
signature = {{ scheme = "github", secrets_env = ["GH"] }}
event = {{ key_pointer = "/entity" }}
{mode}
"#
    )
}

pub fn delivery(id: &str, entity: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let body = serde_json::to_vec(&serde_json::json!({ "entity": entity, "n": id })).unwrap();
    let mut headers = sign::github(SECRET, &body);
    headers.push(("X-GitHub-Delivery".into(), id.into()));
    headers.push(("X-GitHub-Event".into(), "push".into()));
    (headers, body)
}

pub async fn monolith() -> MonolithHandle {
    Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn in_enforce_no_spelling_of_a_route_reaches_the_monolith_unverified() {
    let tansu = Tansu::start();
    let monolith = monolith().await;
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, ""), &[("GH", SECRET)], None).await;
    let (mut forged, body) = delivery("forged", "e0");
    forged.retain(|(k, _)| k != "X-Hub-Signature-256");
    forged.push(("X-Hub-Signature-256".into(), format!("sha256={}", "0".repeat(64))));

    for (target, _) in SAME_ROUTE {
        let r = raw(proxy.public_addr, "POST", target, &forged, &body).await;
        assert_eq!((r.status, r.code()), (401, "signature_invalid".to_string()), "{target}: verified as the route");
    }
    for target in AMBIGUOUS {
        let r = raw(proxy.public_addr, "POST", target, &forged, &body).await;
        assert_eq!((r.status, r.code()), (400, "ambiguous_path".to_string()), "{target:?}");
    }
    for (method, target) in METHODS {
        let r = raw(proxy.public_addr, method, target, &forged, &body).await;
        assert_eq!(
            (r.status, r.code(), r.header("allow")),
            (405, "method_not_allowed".to_string(), Some("POST")),
            "{method} {target}"
        );
    }
    // A raw NUL in the target never gets past hyper's parser.
    let r = raw(proxy.public_addr, "POST", "/webhooks/github\0", &forged, &body).await;
    assert_eq!(r.status, 400, "raw NUL");

    // Unrelated paths with the same oddities still pass through untouched.
    let r = raw(proxy.public_addr, "POST", "/other%2Fpath/..;/x", &forged, &body).await;
    assert_eq!(r.status, 200, "not near a route: passthrough");
    let received = monolith.received();
    assert_eq!(
        received.len(),
        1,
        "only the unrelated request reached the monolith: {:?}",
        received.iter().map(|r| r.uri.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(received[0].uri.path(), "/other%2Fpath/..;/x", "forwarded with its original target");

    let text = scrape(&proxy).await;
    let refused = |reason| metric(&text, "strangler_route_refusals_total", &[("route", "github"), ("reason", reason)]);
    assert_eq!(refused("ambiguous_path"), AMBIGUOUS.len() as f64);
    assert_eq!(refused("method_not_allowed"), METHODS.len() as f64);
    let failures = metric(&text, "strangler_signature_failures_total", &[("route", "github"), ("mode", "enforce")]);
    assert_eq!(failures, SAME_ROUTE.len() as f64);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_split_every_spelling_is_verified_published_once_and_assigned_like_the_exact_path() {
    let tansu = Tansu::start();
    let monolith = monolith().await;
    let split = "mode = \"split\"\nshare = 50";
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers, split), &[("GH", SECRET)], None).await;
    let owner = |key: &str| assign(Mode::Split, "github", key, Share::from_percent(50.0).unwrap());
    let entity = |i: usize| format!("e{}", i % 8);

    let mut expected_legacy = BTreeMap::new();
    for (i, (target, seen_as)) in SAME_ROUTE.iter().enumerate() {
        let id = format!("d{i:02}");
        let (headers, body) = delivery(&id, &entity(i));
        let r = raw(proxy.public_addr, "POST", target, &headers, &body).await;
        match owner(&entity(i)) {
            strangler::event::Owner::Legacy => {
                assert_eq!(r.status, 200, "{target}: the monolith answered");
                expected_legacy.insert(id, seen_as.to_string());
            }
            strangler::event::Owner::New => assert_eq!(r.status, 202, "{target}: the new path answered"),
        }
    }
    for target in AMBIGUOUS {
        let (headers, body) = delivery("valid-but-ambiguous", "e0");
        assert_eq!(raw(proxy.public_addr, "POST", target, &headers, &body).await.status, 400, "{target:?}");
    }
    let first_pass: BTreeMap<String, String> = monolith
        .received()
        .iter()
        .map(|r| (r.headers["x-github-delivery"].to_str().unwrap().to_string(), r.uri.path().to_string()))
        .collect();
    assert!(!expected_legacy.is_empty() && expected_legacy.len() < SAME_ROUTE.len(), "both owners exercised");
    assert_eq!(first_pass, expected_legacy, "exactly the legacy-owned deliveries, with their original targets");
    assert!(monolith.received().iter().all(|r| r.headers.contains_key("x-hub-signature-256")));

    // Each delivery again on the exact path: the same dedupe slot, so nothing is published twice.
    for (i, _) in SAME_ROUTE.iter().enumerate() {
        let (headers, body) = delivery(&format!("d{i:02}"), &entity(i));
        raw(proxy.public_addr, "POST", "/webhooks/github", &headers, &body).await;
    }
    let n = SAME_ROUTE.len() as u64;
    let settled = || async {
        proxy.metrics.publish.published.with_label_values(&["github"]).get() == n
            && proxy.metrics.publish.duplicates.with_label_values(&["github"]).get() == n
    };
    assert!(eventually(WAIT, settled).await, "every spelling published once, every repeat recognised");
    let records = drain(&tansu.brokers, "webhooks.github", WAIT).await;
    let ids: BTreeSet<String> = records.iter().map(|m| header(m, "ce_id").unwrap()).collect();
    assert_eq!((records.len(), ids.len()), (SAME_ROUTE.len(), SAME_ROUTE.len()), "one record per delivery");
    for m in &records {
        let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
        assert_eq!(header(m, "ce_stranglerowner").unwrap(), owner(&key).as_str(), "{key}: assigned like the exact path");
        assert_eq!(header(m, "ce_stranglersignature").as_deref(), Some("valid"));
    }
    proxy.shutdown().await;
}
