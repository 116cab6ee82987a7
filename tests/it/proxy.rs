//! The proxy core end to end: real Tansu, the sample monolith, every signature scheme.

use std::time::Duration;

use http::{Method, StatusCode};
use rdkafka::message::Message;
use strangler::demo::monolith::Monolith;

use crate::harness::{eventually, metric, post, scrape, send, start_proxy, url};
use crate::sign;
use crate::support::broker::Tansu;
use crate::support::kafka::{consume, drain, header};

const WAIT: Duration = Duration::from_secs(20);
const STD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("GH", "gh-secret"),
        ("GH_OLD", "gh-old-secret"),
        ("STRIPE", "whsec_stripe_test"),
        ("SHOPIFY", "shopify-secret"),
        ("SLACK", "slack-secret"),
        ("STD", STD_SECRET),
        ("PARTNER", "partner-secret"),
    ]
}

/// One route per scheme, single-partition topics so a drain sees everything in order.
fn config(legacy: &str, brokers: &str) -> String {
    format!(
        r#"
[legacy]
url = "{legacy}"
[kafka]
brokers = "{brokers}"
partitions = 1
[[route]]
name = "github"
match = {{ path = "/webhooks/github" }}
topic = "webhooks.github"
signature = {{ scheme = "github", secrets_env = ["GH_OLD", "GH"] }}
event = {{ key_pointer = "/repository/full_name", forward_headers = ["User-Agent"] }}
[[route]]
name = "stripe"
match = {{ path = "/webhooks/stripe" }}
topic = "webhooks.stripe"
signature = {{ scheme = "stripe", secrets_env = ["STRIPE"] }}
event = {{ key_pointer = "/data/object/customer", subject_pointer = "/data/object/id" }}
[[route]]
name = "shopify"
match = {{ path = "/webhooks/shopify" }}
topic = "webhooks.shopify"
signature = {{ scheme = "shopify", secrets_env = ["SHOPIFY"] }}
event = {{ key_header = "X-Shopify-Shop-Domain" }}
[[route]]
name = "slack"
match = {{ path = "/webhooks/slack" }}
topic = "webhooks.slack"
signature = {{ scheme = "slack", secrets_env = ["SLACK"] }}
[[route]]
name = "std"
match = {{ path = "/webhooks/std" }}
topic = "webhooks.std"
signature = {{ scheme = "standard-webhooks", secrets_env = ["STD"] }}
event = {{ key_pointer = "/data/account" }}
[[route]]
name = "partner"
match = {{ method = "PUT", path = "/hooks/partner" }}
topic = "webhooks.partner"
signature = {{ scheme = "hmac", secrets_env = ["PARTNER"], header = "X-Partner-Signature", algorithm = "sha512", encoding = "base64", prefix = "v1=", timestamp_header = "X-Partner-Timestamp", timestamp_separator = ":" }}
event = {{ id_pointer = "/delivery", type_from_header = "X-Partner-Event", key_pointer = "/account" }}
[[route]]
name = "observed"
match = {{ path = "/webhooks/observed" }}
topic = "webhooks.observed"
signature = {{ scheme = "github", secrets_env = ["GH"], mode = "observe" }}
"#
    )
}

struct Case {
    route: &'static str,
    method: Method,
    path: &'static str,
    topic: &'static str,
    body: &'static [u8],
    headers: Vec<(String, String)>,
    id: &'static str,
    key: &'static str,
    ce_type: &'static str,
}

fn cases() -> Vec<Case> {
    let t = sign::now();
    let gh_body: &[u8] = br#"{"ref":"refs/heads/main","repository":{"full_name":"acme/widgets"}}"#;
    let stripe_body: &[u8] = br#"{"id":"evt_1","type":"invoice.paid","data":{"object":{"id":"in_9","customer":"cus_42"}}}"#;
    let shopify_body: &[u8] = br#"{"id":820982911946154508,"total_price":"10.00"}"#;
    let slack_body: &[u8] = b"token=x&team_id=T1&command=%2Fdeploy&text=now";
    let std_body: &[u8] = br#"{"type":"account.updated","data":{"account":"acc_7"}}"#;
    let partner_body: &[u8] = br#"{"delivery":"dlv-55","account":"p-3"}"#;
    let with = |mut signed: Vec<(String, String)>, extra: &[(&str, &str)]| {
        signed.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        signed.push(("Content-Type".into(), "application/json".into()));
        signed.push(("X-Custom-Trace".into(), "keep-me".into()));
        signed
    };
    vec![
        Case {
            route: "github",
            method: Method::POST,
            path: "/webhooks/github",
            topic: "webhooks.github",
            body: gh_body,
            headers: with(
                sign::github("gh-secret", gh_body),
                &[("X-GitHub-Event", "push"), ("X-GitHub-Delivery", "d-1"), ("User-Agent", "GitHub-Hookshot/1")],
            ),
            id: "d-1",
            key: "acme/widgets",
            ce_type: "com.github.push",
        },
        Case {
            route: "stripe",
            method: Method::POST,
            path: "/webhooks/stripe",
            topic: "webhooks.stripe",
            body: stripe_body,
            headers: with(sign::stripe("whsec_stripe_test", t, stripe_body), &[]),
            id: "evt_1",
            key: "cus_42",
            ce_type: "com.stripe.invoice.paid",
        },
        Case {
            route: "shopify",
            method: Method::POST,
            path: "/webhooks/shopify",
            topic: "webhooks.shopify",
            body: shopify_body,
            headers: with(
                sign::shopify("shopify-secret", shopify_body),
                &[
                    ("X-Shopify-Webhook-Id", "shp-1"),
                    ("X-Shopify-Topic", "orders/create"),
                    ("X-Shopify-Shop-Domain", "acme.myshopify.com"),
                ],
            ),
            id: "shp-1",
            key: "acme.myshopify.com",
            ce_type: "com.shopify.orders/create",
        },
        Case {
            route: "slack",
            method: Method::POST,
            path: "/webhooks/slack",
            topic: "webhooks.slack",
            body: slack_body,
            headers: with(sign::slack("slack-secret", t, slack_body), &[]),
            id: "",
            key: "",
            ce_type: "com.slack.webhook",
        },
        Case {
            route: "std",
            method: Method::POST,
            path: "/webhooks/std",
            topic: "webhooks.std",
            body: std_body,
            headers: with(sign::standard(STD_SECRET, "msg_1", t, std_body), &[]),
            id: "msg_1",
            key: "acc_7",
            ce_type: "account.updated",
        },
        Case {
            route: "partner",
            method: Method::PUT,
            path: "/hooks/partner",
            topic: "webhooks.partner",
            body: partner_body,
            headers: with(sign::partner("partner-secret", t, partner_body), &[("X-Partner-Event", "sync")]),
            id: "dlv-55",
            key: "p-3",
            ce_type: "sync",
        },
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_scheme_reaches_the_monolith_untouched_and_lands_on_kafka_as_a_cloudevent() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers), &env(), None).await;

    for (i, case) in cases().into_iter().enumerate() {
        let reply = send(case.method.clone(), &url(&proxy, case.path), &case.headers, case.body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}: {:?}", case.route, reply.body);
        assert_eq!(reply.json()["seq"], i + 1, "{}: the sender gets the monolith's own answer", case.route);
        assert!(reply.headers.contains_key("x-request-id"));

        let got = monolith.wait_for(i + 1, WAIT).await;
        let req = &got[i];
        assert_eq!(req.method, case.method);
        assert_eq!(req.uri.path(), case.path);
        assert_eq!(req.body.as_ref(), case.body, "{}: body bytes identical", case.route);
        for (k, v) in &case.headers {
            assert_eq!(
                req.headers.get(k.as_str()).and_then(|h| h.to_str().ok()),
                Some(v.as_str()),
                "{}: header {k} forwarded unchanged",
                case.route
            );
        }
        assert!(req.headers.contains_key("x-forwarded-for"));

        let msgs = consume(&tansu.brokers, case.topic, 1, WAIT).await;
        assert_eq!(msgs.len(), 1, "{}: one record", case.route);
        let m = &msgs[0];
        assert_eq!(m.payload(), Some(case.body), "{}: value is the exact bytes received", case.route);
        let id = header(m, "ce_id").unwrap();
        if case.id.is_empty() {
            assert_eq!(id.len(), 26, "{}: no delivery id, so a ULID: {id}", case.route);
        } else {
            assert_eq!(id, case.id, "{}: provider delivery id", case.route);
        }
        let key = if case.key.is_empty() { id.as_str() } else { case.key };
        assert_eq!(m.key(), Some(key.as_bytes()), "{}: partition key", case.route);
        assert_eq!(header(m, "ce_partitionkey").as_deref(), Some(key));
        assert_eq!(header(m, "ce_specversion").as_deref(), Some("1.0"));
        assert_eq!(header(m, "ce_source"), Some(format!("strangler://{}", case.route)));
        assert_eq!(header(m, "ce_type").as_deref(), Some(case.ce_type), "{}: type", case.route);
        assert_eq!(header(m, "ce_stranglerroute").as_deref(), Some(case.route));
        assert_eq!(header(m, "ce_stranglermode").as_deref(), Some("shadow"));
        assert_eq!(header(m, "ce_stranglerowner").as_deref(), Some("legacy"));
        assert_eq!(header(m, "ce_stranglersignature").as_deref(), Some("valid"));
        assert_eq!(header(m, "content-type").as_deref(), Some("application/json"));
        assert!(humantime::parse_rfc3339(&header(m, "ce_time").unwrap()).is_ok());
    }
    let stripe = consume(&tansu.brokers, "webhooks.stripe", 1, WAIT).await;
    assert_eq!(header(&stripe[0], "ce_subject").as_deref(), Some("in_9"));
    let github = consume(&tansu.brokers, "webhooks.github", 1, WAIT).await;
    assert_eq!(header(&github[0], "x-orig-user-agent").as_deref(), Some("GitHub-Hookshot/1"));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_signatures_get_401_and_nothing_is_forwarded_or_published() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers), &env(), None).await;
    let body: &[u8] = br#"{"repository":{"full_name":"acme/widgets"}}"#;
    let t = sign::now();
    let h = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    let good_sig = sign::github("gh-secret", body)[0].1.clone();
    let bad: Vec<(&str, Vec<(String, String)>)> = vec![
        ("/webhooks/github", sign::github("wrong-secret", body)),
        ("/webhooks/github", vec![]),
        ("/webhooks/github", h("X-Hub-Signature-256", "sha256=")),
        ("/webhooks/github", h("X-Hub-Signature-256", &good_sig[..good_sig.len() - 8])),
        ("/webhooks/github", h("X-Hub-Signature-256", "sha1=abcdef")),
        ("/webhooks/std", h("webhook-signature", "v1,")),
        // Stale by an hour, not a second past the window: the test must not depend on its own speed.
        ("/webhooks/std", sign::standard(STD_SECRET, "msg_x", t - 3600, body)),
        ("/webhooks/stripe", sign::stripe("whsec_stripe_test", t - 3600, body)),
        ("/webhooks/stripe", h("Stripe-Signature", "t=1,v1=")),
        ("/webhooks/slack", sign::slack("slack-secret", t + 3600, body)),
        ("/webhooks/shopify", sign::shopify("shopify-secret", b"another body")),
    ];
    for (path, headers) in &bad {
        let reply = post(&url(&proxy, path), headers, body).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path} {headers:?}");
        assert_eq!(reply.json()["error"]["code"], "signature_invalid");
        assert!(reply.json()["error"]["request_id"].is_string());
    }
    // A good one afterwards: once it is on Kafka and at the monolith, the bad ones would be too.
    let good = sign::github("gh-secret", body);
    assert_eq!(post(&url(&proxy, "/webhooks/github"), &good, body).await.status, StatusCode::OK);
    let published = || async { proxy.metrics.publish.published.with_label_values(&["github"]).get() >= 1 };
    assert!(eventually(WAIT, published).await);
    assert_eq!(monolith.received().len(), 1, "the monolith saw only the good request");
    for topic in ["webhooks.github", "webhooks.std", "webhooks.stripe", "webhooks.slack", "webhooks.shopify"] {
        let n = drain(&tansu.brokers, topic, WAIT).await.len();
        assert_eq!(n, usize::from(topic == "webhooks.github"), "{topic}");
    }
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_signature_failures_total", &[("route", "github"), ("mode", "enforce")]), 5.0);
    assert_eq!(metric(&text, "strangler_signature_failures_total", &[("route", "github"), ("reason", "mismatch")]), 1.0);
    assert_eq!(metric(&text, "strangler_signature_failures_total", &[("route", "stripe"), ("reason", "stale")]), 1.0);
    assert_eq!(metric(&text, "strangler_requests_total", &[("route", "github"), ("status", "401")]), 5.0);

    // Observe mode: forwarded and published, counted, and marked.
    let reply = post(&url(&proxy, "/webhooks/observed"), &sign::github("wrong-secret", body), body).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(monolith.wait_for(2, WAIT).await.len(), 2);
    let msgs = consume(&tansu.brokers, "webhooks.observed", 1, WAIT).await;
    assert_eq!(header(&msgs[0], "ce_stranglersignature").as_deref(), Some("invalid"));
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_signature_failures_total", &[("route", "observed"), ("mode", "observe")]), 1.0);
    proxy.shutdown().await;
}

/// The published vectors, sent through the whole proxy with the clock injected at their time,
/// then refused once the clock is past the window.
#[tokio::test(flavor = "multi_thread")]
async fn published_vectors_pass_through_the_proxy_with_an_injected_clock() {
    let raw: serde_json::Value = serde_json::from_str(include_str!("../vectors/signatures.json")).unwrap();
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    for (scheme, path) in [("github", "/v/github"), ("slack", "/v/slack"), ("standard-webhooks", "/v/std")] {
        for v in raw[scheme].as_array().unwrap() {
            let ts = v["timestamp"].as_i64().unwrap_or(1_700_000_000);
            let secret = v["secret"].as_str().unwrap();
            let headers: Vec<(String, String)> =
                v["headers"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
            let body = v["body"].as_str().unwrap().to_string();
            let toml = format!(
                "[legacy]\nurl = \"{}\"\n[kafka]\nbrokers = \"{}\"\npartitions = 1\n[[route]]\nname = \"v\"\nmatch = {{ path = \"{path}\" }}\ntopic = \"vectors\"\nsignature = {{ scheme = \"{scheme}\", secrets_env = [\"V\"] }}\n",
                monolith.url(),
                tansu.brokers
            );
            for (offset, expected) in [(0, StatusCode::OK), (301, StatusCode::UNAUTHORIZED)] {
                let clock = std::time::UNIX_EPOCH + Duration::from_secs((ts + offset) as u64);
                let proxy = start_proxy(&toml, &[("V", secret)], Some(clock)).await;
                let reply = post(&url(&proxy, path), &headers, body.clone()).await;
                let expected = if scheme == "github" { StatusCode::OK } else { expected };
                assert_eq!(reply.status, expected, "{scheme} at +{offset}s: {:?}", reply.body);
                proxy.shutdown().await;
            }
        }
    }
}
