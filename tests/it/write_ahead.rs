//! `spool.write_ahead` (issue 9, item 11): the real binary SIGKILLed at steady load with the
//! broker up, five times over; after the last restart every delivery answered 2xx is on Kafka
//! exactly once. The same kills without write-ahead lose what librdkafka held: reported, not
//! asserted (it depends on timing).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use strangler::demo::monolith::Monolith;

use crate::harness::{eventually, metric, send};
use crate::load::{config, spool_table, until_all_on_kafka, SECRET};
use crate::sign;
use crate::support::kafka::header;
use crate::support::replica::Replica;
use crate::support::Tansu;

const KILLS: usize = 5;
/// Deliveries answered 2xx before each kill.
const PER_LIFE: usize = 150;

/// One signed delivery; `None` when the proxy died before answering.
async fn try_deliver(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    base: &str,
    id: &str,
    n: u64,
) -> Option<StatusCode> {
    let body = serde_json::to_vec(&serde_json::json!({ "entity": format!("{id}-e"), "n": n })).unwrap();
    let mut req = Request::builder().method(Method::POST).uri(format!("{base}/webhooks/orders"));
    for (k, v) in sign::github(SECRET, &body) {
        req = req.header(k, v);
    }
    let req = req.header("X-GitHub-Delivery", id).header("X-GitHub-Event", "order").body(Full::new(Bytes::from(body))).unwrap();
    let resp = client.request(req).await.ok()?;
    let status = resp.status();
    resp.into_body().collect().await.ok()?;
    Some(status)
}

/// Runs one life of a replica: 4 unpaced senders until `PER_LIFE` deliveries got a 2xx, then
/// SIGKILL. Returns the ids answered 2xx.
async fn one_life(file: &Path, log: std::path::PathBuf, life: usize) -> Vec<String> {
    let replica = tokio::task::spawn_blocking({
        let file = file.to_path_buf();
        move || Replica::start(&file, &[("GH", SECRET)], log)
    })
    .await
    .unwrap();
    let base = format!("http://{}", replica.public);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (base, stop, answered) = (base.clone(), stop.clone(), answered.clone());
            tokio::spawn(async move {
                let client = Client::builder(TokioExecutor::new()).build_http();
                let mut ok = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Acquire) {
                    let id = format!("wa-l{life}-w{w}-{n}");
                    match try_deliver(&client, &base, &id, n).await {
                        Some(s) if s.is_success() => {
                            ok.push(id);
                            answered.fetch_add(1, Ordering::AcqRel);
                        }
                        Some(_) => {}
                        None => break,
                    }
                    n += 1;
                }
                ok
            })
        })
        .collect();
    let enough = || async { answered.load(Ordering::Acquire) >= PER_LIFE };
    assert!(eventually(Duration::from_secs(60), enough).await, "life {life}: the replica served its load");
    let text =
        String::from_utf8_lossy(&send(Method::GET, &format!("{}/metrics", replica.admin), &[], "").await.body).into_owned();
    let replayed = |r: &str| metric(&text, "strangler_spool_replayed_total", &[("result", r)]) + 0.0;
    println!(
        "life {life}: replayed at start {} (already on Kafka, skipped: {}); spool records at kill ~{}",
        replayed("published"),
        replayed("already_on_kafka"),
        metric(&text, "strangler_spool_records", &[]) + 0.0
    );
    replica.signal("-KILL");
    stop.store(true, Ordering::Release);
    let mut ok = Vec::new();
    for w in workers {
        ok.extend(w.await.unwrap());
    }
    drop(replica);
    ok
}

/// Kills a replica `KILLS` times at load, restarts it once more, and returns the ids answered
/// 2xx with how many times each is on Kafka once the last replica's spool is empty.
async fn kill_loop(write_ahead: bool) -> (Vec<String>, HashMap<String, usize>) {
    let dir = tempfile::tempdir().unwrap();
    println!("kill loop (write_ahead = {write_ahead}) in {}", dir.path().display());
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    monolith.release_held();
    let mut spool = spool_table(&dir.path().join("spool"), 256 << 20);
    if write_ahead {
        spool.push_str("write_ahead = true\n");
    }
    let file = dir.path().join("strangler.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n{}",
            config(&monolith.url(), &tansu.brokers, "", &spool)
        ),
    )
    .unwrap();
    let mut accepted = Vec::new();
    for life in 0..KILLS {
        accepted.extend(one_life(&file, dir.path().join(format!("life-{life}.log")), life).await);
    }
    let last = tokio::task::spawn_blocking({
        let (file, log) = (file.clone(), dir.path().join("last.log"));
        move || Replica::start(&file, &[("GH", SECRET)], log)
    })
    .await
    .unwrap();
    let emptied = || async {
        let text =
            String::from_utf8_lossy(&send(Method::GET, &format!("{}/metrics", last.admin), &[], "").await.body).into_owned();
        metric(&text, "strangler_spool_records", &[]) == 0.0 && metric(&text, "strangler_kafka_up", &[]) == 1.0
    };
    assert!(eventually(Duration::from_secs(120), emptied).await, "the last replica replayed its spool");
    let within = if write_ahead { Duration::from_secs(120) } else { Duration::from_secs(5) };
    let records = until_all_on_kafka(&tansu.brokers, "webhooks.orders", &accepted, within).await;
    let mut count: HashMap<String, usize> = HashMap::new();
    for m in &records {
        *count.entry(header(m, "ce_id").expect("ce_id")).or_default() += 1;
    }
    if std::env::var_os("STRANGLER_KEEP_LOGS").is_some() {
        let _ = dir.keep();
    }
    (accepted, count)
}

#[tokio::test(flavor = "multi_thread")]
async fn write_ahead_sigkill_at_load_five_times_every_answered_delivery_on_kafka_exactly_once() {
    let (accepted, count) = kill_loop(true).await;
    assert!(accepted.len() >= KILLS * PER_LIFE, "{} deliveries answered", accepted.len());
    let missing: Vec<&String> = accepted.iter().filter(|id| !count.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} answered deliveries not on Kafka, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let twice: Vec<(&String, &usize)> = count.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "{} ids on Kafka more than once, e.g. {:?}", twice.len(), &twice[..twice.len().min(5)]);
    println!("write-ahead: {} deliveries answered 2xx over {KILLS} SIGKILLs; all on Kafka exactly once", accepted.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn without_write_ahead_sigkill_at_load_loses_what_librdkafka_held_reported() {
    let (accepted, count) = kill_loop(false).await;
    let lost = accepted.iter().filter(|id| !count.contains_key(*id)).count();
    let twice = count.values().filter(|c| **c > 1).count();
    println!(
        "without write-ahead: {} deliveries answered 2xx over {KILLS} SIGKILLs; {lost} not on Kafka, {twice} on it more than once",
        accepted.len()
    );
}

/// Produces one event as strangler would (key, `ce_id` header) and waits for its acknowledgement.
async fn produce(producer: &rdkafka::producer::FutureProducer, topic: &str, id: &str, key: &str, value: &[u8]) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::FutureRecord;
    let headers = OwnedHeaders::new().insert(Header { key: "ce_id", value: Some(id) });
    let record = FutureRecord::to(topic).key(key).payload(value).headers(headers);
    producer.send(record, Duration::from_secs(10)).await.map_err(|(e, _)| e).unwrap();
}

/// The gap SIGKILL can land in, built on purpose: Kafka acknowledged events the cursor does not
/// record as acked (the first 3, and the last 100 of 600, so the replay's first round of 500
/// publishes before it reaches them). The next start publishes the others and skips those.
#[tokio::test(flavor = "multi_thread")]
async fn events_kafka_acknowledged_but_the_cursor_did_not_record_are_not_published_again() {
    use strangler::publish::spool::{Entry, Fsync, Settings, Spool, WhenFull};
    let tansu = Tansu::start();
    let topic = "webhooks.orders";
    crate::support::create_topic(&tansu.brokers, topic, 2).await;
    let producer: rdkafka::producer::FutureProducer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &tansu.brokers).create().unwrap();
    // Older traffic, before this replica's recorded offsets.
    for n in 0..4 {
        produce(&producer, topic, &format!("older-{n}"), "older", b"{}").await;
    }
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        dir: dir.path().join("spool"),
        max_bytes: 4 << 20,
        fsync: Fsync::Always,
        when_full: WhenFull::DropNewest,
        write_ahead: true,
    };
    let (spool, _) = Spool::open(settings).unwrap();
    // What a write-ahead replica records before its first send: each partition's end offset.
    let mut ends = strangler::publish::spool::Offsets::new();
    for p in 0..2 {
        let (_, high) = tokio::task::spawn_blocking({
            let brokers = tansu.brokers.clone();
            move || {
                use rdkafka::consumer::{BaseConsumer, Consumer};
                let c: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
                c.fetch_watermarks(topic, p, Duration::from_secs(10)).unwrap()
            }
        })
        .await
        .unwrap();
        ends.entry(topic.to_string()).or_default().insert(p, high);
    }
    spool.add_missing_offsets(&ends).unwrap();
    let ids: Vec<String> = (0..600).map(|n| format!("gap-{n}")).collect();
    let on_kafka = |n: usize| !(3..500).contains(&n);
    for (n, id) in ids.iter().enumerate() {
        let value = serde_json::to_vec(&serde_json::json!({ "entity": "gap-e", "n": n })).unwrap();
        let entry = Entry {
            route: "orders".into(),
            id: id.clone(),
            topic: topic.into(),
            key: "gap-e".into(),
            headers: vec![("ce_id".into(), id.clone())],
            value: value.clone(),
            possibly_persisted: false,
            partition: None,
            spooled_at_ms: 1,
            order: n as u64,
        };
        spool.append(&entry).unwrap();
        if on_kafka(n) {
            // Acknowledged by Kafka; the process dies before the cursor records it.
            produce(&producer, topic, id, "gap-e", &value).await;
        }
    }
    drop(spool);

    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let tail = format!("{}write_ahead = true\n", spool_table(&dir.path().join("spool"), 4 << 20));
    let proxy = crate::harness::start_proxy(&config(&monolith.url(), &tansu.brokers, "", &tail), &[("GH", SECRET)], None).await;
    let settled = || async {
        let text = crate::harness::scrape(&proxy).await;
        metric(&text, "strangler_spool_records", &[]) == 0.0
            && metric(&text, "strangler_spool_replayed_total", &[("result", "published")]) == 497.0
    };
    assert!(eventually(Duration::from_secs(60), settled).await, "the 497 Kafka did not have were published");
    let text = crate::harness::scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_spool_replayed_total", &[("result", "already_on_kafka")]), 103.0);
    let records = until_all_on_kafka(&tansu.brokers, topic, &ids, Duration::from_secs(30)).await;
    let mut count: HashMap<String, usize> = HashMap::new();
    for m in &records {
        *count.entry(header(m, "ce_id").unwrap()).or_default() += 1;
    }
    for id in &ids {
        assert_eq!(count.get(id), Some(&1), "{id} on Kafka exactly once: {count:?}");
    }
    proxy.shutdown().await;
}

/// Write-ahead across a broker outage: events in flight when every broker goes down, events that
/// arrive during it, and those after it are each on Kafka once, in order per key.
#[tokio::test(flavor = "multi_thread")]
async fn write_ahead_across_a_broker_outage_publishes_each_event_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut tansu = Tansu::start_sqlite(&dir.path().join("tansu.db"));
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let tail = format!("{}write_ahead = true\n", spool_table(&dir.path().join("spool"), 64 << 20));
    let proxy = crate::harness::start_proxy(&config(&monolith.url(), &tansu.brokers, "", &tail), &[("GH", SECRET)], None).await;
    let base = format!("http://{}", proxy.public_addr);
    let scrape = || crate::harness::scrape(&proxy);
    let mut accepted = Vec::new();
    accepted.extend(send_range(&base, 0..20).await);
    let live = || async { metric(&scrape().await, "strangler_events_published_total", &[]) == 20.0 };
    assert!(eventually(Duration::from_secs(30), live).await, "published live before the outage");
    tansu.kill();
    let down = || async { metric(&scrape().await, "strangler_kafka_up", &[]) == 0.0 };
    assert!(eventually(Duration::from_secs(30), down).await, "the outage is noticed");
    accepted.extend(send_range(&base, 20..40).await);
    let text = scrape().await;
    assert!(metric(&text, "strangler_spool_records", &[]) >= 20.0, "the outage's events wait in the spool");
    tansu.restart();
    accepted.extend(send_range(&base, 40..60).await);
    let drained = || async {
        let text = scrape().await;
        metric(&text, "strangler_kafka_up", &[]) == 1.0 && metric(&text, "strangler_spool_records", &[]) == 0.0
    };
    assert!(eventually(Duration::from_secs(90), drained).await, "the spool is replayed and empty");
    let records = until_all_on_kafka(&tansu.brokers, "webhooks.orders", &accepted, Duration::from_secs(60)).await;
    crate::load::assert_exactly_once_in_order(&records, &accepted);
    // Back to sending at once: a new event is published without waiting for a replay round.
    send_range(&base, 60..61).await;
    let published = || async { metric(&scrape().await, "strangler_events_published_total", &[]) >= 61.0 };
    assert!(eventually(Duration::from_secs(30), published).await);
    proxy.shutdown().await;
}

/// Sends deliveries `wa-out-<n>` (three entities) and asserts each got the monolith's 200.
async fn send_range(base: &str, range: std::ops::Range<u64>) -> Vec<String> {
    let mut ids = Vec::new();
    for n in range {
        let id = format!("wa-out-{n}");
        assert_eq!(crate::load::deliver(base, &id, &format!("wa-out-e{}", n % 3), n, 64).await, StatusCode::OK, "{id}");
        ids.push(id);
    }
    ids
}

/// Write-ahead leaves new-owned (live) events alone: they wait for Kafka's acknowledgement on the
/// request path and are not held behind shadow events about to go out.
#[tokio::test(flavor = "multi_thread")]
async fn write_ahead_new_owned_requests_are_published_live_without_fallbacks() {
    let dir = tempfile::tempdir().unwrap();
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let tail = format!("{}write_ahead = true\n", spool_table(&dir.path().join("spool"), 64 << 20));
    let src = config(&monolith.url(), &tansu.brokers, "", &tail)
        .replace("event = { key_pointer = \"/entity\" }", "event = { key_pointer = \"/entity\" }\nmode = \"cutover\"");
    let proxy = crate::harness::start_proxy(&src, &[("GH", SECRET)], None).await;
    let base = format!("http://{}", proxy.public_addr);
    let ids: Vec<String> = (0..10).map(|n| format!("wa-live-{n}")).collect();
    let sends = ids.iter().enumerate().map(|(n, id)| crate::load::deliver(&base, id, "wa-live-e", n as u64, 16));
    for status in futures_util::future::join_all(sends).await {
        assert_eq!(status, StatusCode::ACCEPTED, "the new path answers");
    }
    assert!(monolith.received().is_empty(), "no request fell back to the monolith");
    let text = crate::harness::scrape(&proxy).await;
    assert_eq!(metric(&text, "strangler_fallbacks_total", &[]), 0.0);
    let records = until_all_on_kafka(&tansu.brokers, "webhooks.orders", &ids, Duration::from_secs(30)).await;
    let mut count: HashMap<String, usize> = HashMap::new();
    for m in &records {
        *count.entry(header(m, "ce_id").unwrap()).or_default() += 1;
    }
    assert!(ids.iter().all(|id| count.get(id) == Some(&1)), "each once: {count:?}");
    proxy.shutdown().await;
}

/// Idle, a write-ahead replica moves its recovery offsets up to the end offsets (every 60 s), so a
/// crash much later never reads a partition from far back, even one it seldom writes to.
#[tokio::test(flavor = "multi_thread")]
async fn write_ahead_moves_its_recovery_offsets_to_the_end_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let tail = format!("{}write_ahead = true\n", spool_table(&dir.path().join("spool"), 64 << 20));
    let proxy = crate::harness::start_proxy(&config(&monolith.url(), &tansu.brokers, "", &tail), &[("GH", SECRET)], None).await;
    let ids = send_range(&format!("http://{}", proxy.public_addr), 0..5).await;
    let published = || async { metric(&crate::harness::scrape(&proxy).await, "strangler_events_published_total", &[]) == 5.0 };
    assert!(eventually(Duration::from_secs(30), published).await);
    // Another replica's traffic, on both partitions, after this one's events.
    let producer: rdkafka::producer::FutureProducer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &tansu.brokers).create().unwrap();
    for p in 0..2 {
        for n in 0..3 {
            use rdkafka::producer::FutureRecord;
            let record = FutureRecord::<str, [u8]>::to("webhooks.orders").partition(p).key("other").payload(b"{}");
            producer.send(record, Duration::from_secs(10)).await.map_err(|(e, _)| format!("{e} {n}")).unwrap();
        }
    }
    let ends: Vec<i64> = tokio::task::spawn_blocking({
        let brokers = tansu.brokers.clone();
        move || {
            use rdkafka::consumer::{BaseConsumer, Consumer};
            let c: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
            (0..2).map(|p| c.fetch_watermarks("webhooks.orders", p, Duration::from_secs(10)).unwrap().1).collect()
        }
    })
    .await
    .unwrap();
    let cursor = dir.path().join("spool").join("cursor");
    let recorded = |p: usize| {
        let c: serde_json::Value = serde_json::from_slice(&std::fs::read(&cursor).unwrap()).unwrap();
        c["offsets"]["webhooks.orders"][p.to_string()].as_i64()
    };
    assert!(recorded(0).unwrap() < ends[0] || recorded(1).unwrap() < ends[1], "the other traffic is past the acks");
    let moved = || async { recorded(0) == Some(ends[0]) && recorded(1) == Some(ends[1]) };
    assert!(
        eventually(Duration::from_secs(150), moved).await,
        "recovery offsets {:?} {:?}, ends {ends:?}",
        recorded(0),
        recorded(1)
    );
    let records = until_all_on_kafka(&tansu.brokers, "webhooks.orders", &ids, Duration::from_secs(30)).await;
    assert_eq!(records.iter().filter(|m| header(m, "ce_id").is_some()).count(), 5);
    proxy.shutdown().await;
}
