//! Path templates (two tenants on one route, the capture as key and extension attribute), 405
//! with `Allow`, `match.other_methods`, case-insensitive routes and aliases, over raw sockets
//! against real Tansu and the recording sample monolith.

use std::collections::{BTreeMap, BTreeSet};

use rdkafka::Message;
use strangler::route::assign::{assign, Mode, Share};

use crate::harness::{eventually, metric, scrape, start_proxy};
use crate::route_spelling::{delivery, monolith, raw, SECRET, WAIT};
use crate::support::broker::Tansu;
use crate::support::kafka::{drain, header};

#[tokio::test(flavor = "multi_thread")]
async fn a_template_route_keys_and_labels_each_tenant_by_its_captured_segment() {
    let tansu = Tansu::start();
    let monolith = monolith().await;
    let toml = format!(
        r#"
[legacy]
url = "{}"
[kafka]
brokers = "{}"
partitions = 1
[[route]]
name = "tenants"
match = {{ path = "/webhooks/{{tenant}}/stripe" }}
topic = "webhooks.tenants"
signature = {{ scheme = "github", secrets_env = ["GH"] }}
event = {{ key_path = "tenant", path_extensions = ["tenant"] }}
mode = "split"
share = 50
"#,
        monolith.url(),
        tansu.brokers
    );
    let proxy = start_proxy(&toml, &[("GH", SECRET)], None).await;
    let owner = |t: &str| assign(Mode::Split, "tenants", t, Share::from_percent(50.0).unwrap());
    let candidates = ["acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka"];
    let legacy = *candidates.iter().find(|t| owner(t) == strangler::event::Owner::Legacy).unwrap();
    let new = *candidates.iter().find(|t| owner(t) == strangler::event::Owner::New).unwrap();

    let mut sent = 0;
    for tenant in [legacy, new] {
        let encoded_first = format!("%{:02X}{}", tenant.as_bytes()[0], &tenant[1..]);
        for target in [
            format!("/webhooks/{tenant}/stripe"),
            format!("//webhooks/{tenant}/./stripe/"),
            format!("/webhooks/{encoded_first}/stripe"),
        ] {
            let (headers, body) = delivery(&format!("{tenant}-{sent}"), "ignored");
            sent += 1;
            let r = raw(proxy.public_addr, "POST", &target, &headers, &body).await;
            assert_eq!(r.status, if tenant == legacy { 200 } else { 202 }, "{target}");
        }
    }
    let r = raw(proxy.public_addr, "POST", "/webhooks/ac%2Fme/stripe", &[], b"{}").await;
    assert_eq!((r.status, r.code()), (400, "ambiguous_path".to_string()), "an encoded slash inside a capture");

    let got: Vec<String> = monolith.received().iter().map(|r| r.uri.path().to_string()).collect();
    assert_eq!(got.len(), 3, "only the legacy tenant's deliveries: {got:?}");
    assert!(got.iter().all(|p| p.contains(&legacy[1..])), "{got:?}");
    let published = || async { proxy.metrics.publish.published.with_label_values(&["tenants"]).get() == 6 };
    assert!(eventually(WAIT, published).await);
    let records = drain(&tansu.brokers, "webhooks.tenants", WAIT).await;
    assert_eq!(records.len(), 6);
    let mut by_tenant: BTreeMap<String, usize> = BTreeMap::new();
    for m in &records {
        let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
        assert_eq!(header(m, "ce_partitionkey").as_deref(), Some(key.as_str()));
        assert_eq!(header(m, "ce_tenant").as_deref(), Some(key.as_str()), "the capture as extension attribute");
        assert_eq!(header(m, "ce_stranglerowner").unwrap(), owner(&key).as_str());
        *by_tenant.entry(key).or_default() += 1;
    }
    assert_eq!(by_tenant, BTreeMap::from([(legacy.to_string(), 3), (new.to_string(), 3)]));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn other_methods_pass_through_and_case_insensitive_routes_and_aliases_are_the_route() {
    let tansu = Tansu::start();
    let monolith = monolith().await;
    let toml = format!(
        r#"
[legacy]
url = "{}"
[kafka]
brokers = "{}"
partitions = 1
[[route]]
name = "github"
match = {{ path = "/webhooks/github", aliases = ["/hooks/gh"], other_methods = ["GET"] }}
topic = "webhooks.github"
signature = {{ scheme = "github", secrets_env = ["GH"] }}
[[route]]
name = "partner"
match = {{ path = "/Hooks/Partner", case_insensitive = true }}
topic = "webhooks.partner"
signature = {{ scheme = "github", secrets_env = ["GH"] }}
[[route]]
name = "old"
match = {{ path = "/hooks/old" }}
topic = "webhooks.old"
signature = {{ scheme = "github", secrets_env = ["GH"] }}
mode = "passthrough"
"#,
        monolith.url(),
        tansu.brokers
    );
    let proxy = start_proxy(&toml, &[("GH", SECRET)], None).await;
    let r = raw(proxy.public_addr, "PUT", "/webhooks/github", &[], b"").await;
    assert_eq!((r.status, r.code(), r.header("allow")), (405, "method_not_allowed".into(), Some("POST, GET")));
    let r = raw(proxy.public_addr, "GET", "/webhooks/github/?health=1", &[], b"").await;
    assert_eq!(r.status, 200, "a health check on the route's path passes through");
    let r = raw(proxy.public_addr, "GET", "/HOOKS/GH", &[], b"").await;
    assert_eq!(r.status, 200, "in any spelling");
    let got: Vec<(String, String)> = monolith.received().iter().map(|r| (r.method.to_string(), r.uri.to_string())).collect();
    assert_eq!(got, [("GET".into(), "/webhooks/github/?health=1".into()), ("GET".into(), "/HOOKS/GH".into())], "untouched");

    let targets =
        [("/hooks/gh", "github"), ("/hooks/partner", "partner"), ("/HOOKS/PARTNER/", "partner"), ("/hooks/%50artner", "partner")];
    for (i, (target, _)) in targets.iter().enumerate() {
        let (headers, body) = delivery(&format!("ci-{i}"), "x");
        assert_eq!(raw(proxy.public_addr, "POST", target, &headers, &body).await.status, 200, "{target}");
    }
    let r = raw(proxy.public_addr, "POST", "/Hooks/Partner", &[("X-Hub-Signature-256".into(), "sha256=00".into())], b"{}").await;
    assert_eq!(r.status, 401, "verified like the route");
    let published = || async {
        proxy.metrics.publish.published.with_label_values(&["github"]).get() == 1
            && proxy.metrics.publish.published.with_label_values(&["partner"]).get() == 3
    };
    assert!(eventually(WAIT, published).await);
    let paths: BTreeSet<String> = monolith.received().iter().skip(2).map(|r| r.uri.path().to_string()).collect();
    assert_eq!(paths, targets.iter().map(|(t, _)| t.to_string()).collect(), "forwarded with their original targets");

    // A route in passthrough mode refuses nothing.
    for (method, target) in [("PUT", "/hooks/old"), ("POST", "/hooks%2Fold")] {
        assert_eq!(raw(proxy.public_addr, method, target, &[], b"").await.status, 200, "{method} {target}");
    }
    let last: Vec<String> = monolith.received().iter().rev().take(2).map(|r| r.uri.path().to_string()).collect();
    assert_eq!(last, ["/hooks%2Fold", "/hooks/old"]);
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_route_refusals_total", &[("route", "github"), ("reason", "method_not_allowed")]), 1.0);
    // The admin API shows each route's match as configured.
    let routes = crate::control::get_json(&format!("http://{}/api/routes", proxy.admin_addr)).await;
    let matches: Vec<&serde_json::Value> = routes["routes"].as_array().unwrap().iter().map(|r| &r["match"]).collect();
    assert_eq!(matches[0], &serde_json::json!({"aliases": ["/hooks/gh"], "case_insensitive": false, "other_methods": ["GET"]}));
    assert_eq!(matches[1], &serde_json::json!({"aliases": [], "case_insensitive": true, "other_methods": []}));
    assert_eq!(metric(&text, "strangler_route_refusals_total", &[("route", "old")]), 0.0);
    proxy.shutdown().await;
}
