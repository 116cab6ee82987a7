//! Event contracts through a Kafka outage (issue 13): a `dead_letter` contract's dead letters wait
//! in the spool (written ahead or not) with the route's valid events while no broker answers, and
//! land on the dead-letter topic once, counted as dead letters, not as the route's events.

use std::time::Duration;

use http::StatusCode;
use strangler::demo::monolith::Monolith;

use crate::contract_edge::{by_id, config, deliver, route, SECRET, WAIT};
use crate::harness::{eventually, metric, scrape, start_proxy};
use crate::support::broker::{free_port, Tansu};
use crate::support::kafka::{drain, header};

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_wait_in_the_spool_while_kafka_is_down_and_land_when_it_answers() {
    dead_letters_across_an_outage("").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn write_ahead_dead_letters_wait_in_the_spool_while_kafka_is_down_and_land_once() {
    dead_letters_across_an_outage("write_ahead = true\n").await;
}

/// Valid events and dead letters sent while no broker answers, then a broker: `spool_extra` goes
/// into `[spool]`.
async fn dead_letters_across_an_outage(spool_extra: &str) {
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // No broker yet: the route's events and the contract's dead letters wait in the spool.
    let port = free_port();
    let spool = format!("[spool]\ndir = \"{}\"\nmax_bytes = 67108864\n{spool_extra}", dir.path().join("spool").display());
    let cfg = format!(
        "{}{spool}",
        config(&monolith.url(), &format!("127.0.0.1:{port}"), &[route("guarded", "", "on_invalid = \"dead_letter\"")])
    );
    let proxy = start_proxy(&cfg, &[("S", SECRET)], None).await;
    let bodies = [
        r#"{"id":"ok1","amount":5}"#,
        r#"{"id":"bad1","amount":-1}"#,
        r#"{"id":"ok2","amount":7}"#,
        r#"{"id":"bad2","amount":"ten"}"#,
    ];
    for body in bodies {
        assert_eq!(deliver(&proxy, "guarded", body, true).await.status, StatusCode::OK, "{body}: the monolith answers");
    }
    assert_eq!(monolith.received().len(), 4);
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_spool_records", &[]), 4.0, "valid events and dead letters alike: {text}");
    assert_eq!(metric(&text, "strangler_dead_letters_total", &[("route", "guarded"), ("reason", "contract")]), 0.0);
    assert_eq!(metric(&text, "strangler_contract_violations_total", &[("route", "guarded")]), 2.0);

    let tansu = Tansu::start_on(port);
    let landed = || async {
        let t = scrape(&proxy).await;
        metric(&t, "strangler_dead_letters_total", &[("route", "guarded"), ("reason", "contract")]) == 2.0
            && metric(&t, "strangler_spool_records", &[]) == 0.0
    };
    assert!(eventually(Duration::from_secs(120), landed).await, "{}", scrape(&proxy).await);
    let text = scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_events_dropped_total", &[("route", "guarded")]), 0.0, "{text}");
    assert_eq!(
        metric(&text, "strangler_partition_events_total", &[("route", "guarded")]),
        2.0,
        "only the valid events count as the route's"
    );
    let on_route: Vec<_> = by_id(&drain(&tansu.brokers, "webhooks.guarded", WAIT).await).into_iter().map(|s| s.0).collect();
    assert_eq!(on_route, ["ok1", "ok2"]);
    let dlq = drain(&tansu.brokers, "strangler.dead-letter", WAIT).await;
    let mut dead: Vec<_> =
        dlq.iter().map(|m| (header(m, "ce_id").unwrap(), header(m, "dlq_reason"), header(m, "dlq_route"))).collect();
    dead.sort();
    let contract = Some("contract".to_string());
    let guarded = Some("guarded".to_string());
    assert_eq!(dead, [("bad1".into(), contract.clone(), guarded.clone()), ("bad2".into(), contract, guarded)], "each once");
    proxy.shutdown().await;
}
