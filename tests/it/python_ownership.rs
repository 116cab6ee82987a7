//! Ownership is predictable from the protocol page alone: a Python program that knows only
//! docs/consumer-protocol.md ("Who owns an entity") recomputes the page's test vectors and the
//! owner of 1,000 events a split route published through the real proxy and a real broker.

use std::process::Command;

use futures_util::future::join_all;
use serde_json::{json, Value};
use strangler::demo::monolith::Monolith;
use strangler::route::assign::{assign, bucket, Mode, Share};

use crate::harness::{post, start_proxy, url};
use crate::python_contract::python;
use crate::sign;
use crate::support::broker::Tansu;

const KEYS: usize = 1000;
const SALT: &str = "ownership-salt-1";
const SHARE: f64 = 37.5;
const TOPIC: &str = "webhooks.ownership";

fn config(legacy: &str, brokers: &str) -> String {
    format!(
        r#"
[legacy]
url = "{legacy}"
[kafka]
brokers = "{brokers}"
[[route]]
name = "ownership"
match = {{ path = "/webhooks/github" }}
topic = "{TOPIC}"
mode = "split"
share = {SHARE}
salt = "{SALT}"
signature = {{ scheme = "github", secrets_env = ["GH"] }}
event = {{ key_pointer = "/customer" }}
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_program_predicts_the_owner_of_every_event_from_the_documented_hash() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers), &[("GH", "gh-secret")], None).await;
    let target = url(&proxy, "/webhooks/github");
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(50) {
        join_all(chunk.iter().map(|i| {
            let body = serde_json::to_vec(&json!({"customer": format!("cust-{i}"), "n": i})).unwrap();
            let mut headers = sign::github("gh-secret", &body);
            headers.push(("X-GitHub-Event".into(), "push".into()));
            headers.push(("X-GitHub-Delivery".into(), format!("own-{i}")));
            let target = target.clone();
            async move {
                let reply = post(&target, &headers, body).await;
                assert!(reply.status.is_success(), "cust-{i}: {} {:?}", reply.status, reply.body);
            }
        }))
        .await;
    }
    // Not a trivial split: both owners occur among these keys.
    let share = Share::from_percent(SHARE).unwrap();
    let new = (0..KEYS).filter(|i| bucket(SALT, &format!("cust-{i}")) < share.bp()).count();
    assert!(new > 100 && new < KEYS - 100, "{new} of {KEYS} keys new-owned");

    let doc = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/consumer-protocol.md");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/ownership.py");
    let brokers = tansu.brokers.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(script)
            .args(["--doc", doc, "--brokers", &brokers, "--topic", TOPIC, "--salt", SALT])
            .args(["--share-percent", &SHARE.to_string(), "--count", &KEYS.to_string()])
            .output()
            .expect("run ownership.py")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ownership.py: {}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert!(summary["vectors"].as_u64().unwrap() >= 5, "{summary}");
    assert_eq!(summary["agree"], json!(KEYS), "{summary}");
    assert_eq!(summary["owners"]["new"], json!(new), "{summary}");
    proxy.shutdown().await;
}

/// The page's vectors agree with strangler's own hash, so the page and the code cannot drift.
#[test]
fn the_documented_vectors_are_strangler_s_hash() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/consumer-protocol.md")).unwrap();
    let section = page.split("## Who owns an entity").nth(1).unwrap().split("\n## ").next().unwrap();
    let mut rows = 0;
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(|c| c.trim().trim_matches('`')).collect();
        let (salt, key, bucket_doc) = (cells[0], cells[1], cells[3].parse::<u32>().unwrap());
        assert_eq!(bucket(salt, key), bucket_doc, "{line}");
        for (percent, doc) in [(25.0, cells[4]), (60.0, cells[5])] {
            let owner = assign(Mode::Split, salt, key, Share::from_percent(percent).unwrap());
            assert_eq!(owner.as_str(), doc, "{line} at {percent} %");
        }
        rows += 1;
    }
    assert!(rows >= 5, "{rows} vectors");
}
