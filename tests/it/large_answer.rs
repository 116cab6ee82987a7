//! A monolith answer larger than `server.max_body_bytes` on a matched route: the sender gets it
//! whole, the legacy outcome keeps a marked prefix, and the comparator reports `truncated`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Method, StatusCode};
use rdkafka::Message;
use strangler::demo::monolith::reply_bytes;

use crate::harness::{eventually, metric, post, scrape, send, start_proxy, url};
use crate::parity::{deciding_monolith, order, orders_config, start_service, SECRET};
use crate::sign;
use crate::support::broker::Tansu;
use crate::support::kafka::drain;

const WAIT: Duration = Duration::from_secs(120);
const FIVE_MIB: usize = 5 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread")]
async fn a_5_mib_monolith_answer_reaches_the_sender_whole_and_its_outcome_is_marked_truncated() {
    let tansu = Tansu::start();
    let monolith = deciding_monolith().await;
    let proxy = start_proxy(&orders_config(&monolith.url(), &tansu.brokers, ""), &[("S", SECRET)], None).await;
    let service = start_service(&tansu.brokers, 0);

    let body = serde_json::to_vec(&order("evt_large", "cus_1", 100)).unwrap();
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut headers = sign::stripe(SECRET, t, &body);
    headers.push(("x-monolith-reply-bytes".into(), FIVE_MIB.to_string()));
    let reply = post(&url(&proxy, "/webhooks/orders"), &headers, body).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.len(), FIVE_MIB);
    assert!(reply.body == reply_bytes(FIVE_MIB), "byte-exact");
    assert_eq!(monolith.received().len(), 1, "the monolith acted once");

    // A small answer on the same route stays whole and unmarked.
    let small = serde_json::to_vec(&order("evt_small", "cus_2", 100)).unwrap();
    let reply = post(&url(&proxy, "/webhooks/orders"), &sign::stripe(SECRET, t, &small), small).await;
    assert_eq!(reply.status, StatusCode::OK);

    let compared = || async {
        let p = |r| proxy.metrics.compare.parity.with_label_values(&["orders", r]).get();
        p("truncated") == 1 && p("match") == 1
    };
    assert!(eventually(WAIT, compared).await, "the comparator decided both events");
    assert_eq!(proxy.metrics.compare.parity.with_label_values(&["orders", "mismatch"]).get(), 0);
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_parity_ratio", &[("route", "orders")]), 1.0, "truncated is outside the ratio");

    let outcomes = drain(&tansu.brokers, "strangler.outcomes", WAIT).await;
    let legacy: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|m| serde_json::from_slice::<serde_json::Value>(m.payload().unwrap()).unwrap())
        .filter(|v| v["source"] == "legacy")
        .collect();
    let of = |id: &str| legacy.iter().find(|v| v["event_id"] == id).unwrap_or_else(|| panic!("no outcome for {id}"));
    let large = of("evt_large");
    assert_eq!(large["truncated"], true);
    assert_eq!(large["status"], 200);
    let kept = large["body"].as_str().unwrap();
    assert_eq!(kept.len(), strangler::ingress::proxy::OUTCOME_BODY_CAP, "a prefix of the documented cap");
    assert!(reply_bytes(FIVE_MIB).starts_with(kept.as_bytes()));
    assert!(of("evt_small").get("truncated").is_none(), "absent when the whole answer was kept");

    let parity = drain(&tansu.brokers, "strangler.parity", WAIT).await;
    let results: Vec<(String, String)> = parity
        .iter()
        .map(|m| serde_json::from_slice::<serde_json::Value>(m.payload().unwrap()).unwrap())
        .map(|v| (v["event_id"].as_str().unwrap().to_owned(), v["result"].as_str().unwrap().to_owned()))
        .collect();
    assert!(results.contains(&("evt_large".into(), "truncated".into())), "{results:?}");

    // The cluster-wide counts show it apart from the samples of the ratio.
    let route = format!("http://{}/api/routes/orders", proxy.admin_addr);
    let counted = || async { send(Method::GET, &route, &[], "").await.json()["parity"]["counts"]["truncated"] == 1 };
    assert!(eventually(WAIT, counted).await);
    let view = send(Method::GET, &route, &[], "").await.json();
    assert_eq!(view["parity"]["ratio"], 1.0, "{view}");
    service.stop().await;
    proxy.shutdown().await;
}
