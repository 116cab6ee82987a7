//! Steady signed load for the fault tests, and the checks they share: every accepted delivery id
//! on Kafka exactly once, in order per key.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use rdkafka::message::OwnedMessage;
use rdkafka::Message;

use crate::harness::post;
use crate::sign;
use crate::support::kafka::{drain, header};

pub const SECRET: &str = "fault-secret";

/// One route, `orders`, GitHub-signed (secret from `GH`), keyed by the body's `/entity`, on a
/// two-partition topic. `kafka` lines go inside `[kafka]`; `tail` after it (e.g. a `[spool]`).
pub fn config(legacy: &str, brokers: &str, kafka: &str, tail: &str) -> String {
    format!(
        r#"[legacy]
url = "{legacy}"
[comparator]
enabled = false
[kafka]
brokers = "{brokers}"
partitions = 2
{kafka}
{tail}
[[route]]
name = "orders"
match = {{ path = "/webhooks/orders" }}
topic = "webhooks.orders"
signature = {{ scheme = "github", secrets_env = ["GH"] }}
event = {{ key_pointer = "/entity" }}
"#
    )
}

pub fn spool_table(dir: &std::path::Path, max_bytes: u64) -> String {
    format!("[spool]\ndir = \"{}\"\nmax_bytes = {max_bytes}\nfsync = \"50ms\"\n", dir.display())
}

/// One signed delivery: id `id`, entity `entity`, sequence `n` within the entity.
pub async fn deliver(base: &str, id: &str, entity: &str, n: u64, pad: usize) -> StatusCode {
    let body = serde_json::to_vec(&serde_json::json!({ "entity": entity, "n": n, "pad": "x".repeat(pad) })).unwrap();
    let mut headers = sign::github(SECRET, &body);
    headers.push(("X-GitHub-Delivery".into(), id.into()));
    headers.push(("X-GitHub-Event".into(), "order".into()));
    post(&format!("{base}/webhooks/orders"), &headers, body).await.status
}

/// One answered request.
pub struct Sent {
    pub id: String,
    pub status: StatusCode,
    pub latency: Duration,
    /// The phase the load was in when the request started (set by the test).
    pub phase: u8,
}

/// Runs `workers` senders, each pacing one request every `every` over its own entities, until
/// `stop`. The phase in effect is read from `phase` when each request starts.
pub struct Load {
    pub phase: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Sent>>>,
}

impl Load {
    pub fn start(base: &str, prefix: &str, workers: usize, every: Duration) -> Load {
        let phase = Arc::new(AtomicU8::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..workers)
            .map(|w| {
                let (base, prefix, phase, stop) = (base.to_string(), prefix.to_string(), phase.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    let mut tick = tokio::time::interval(every);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let mut n = 0u64;
                    while !stop.load(Ordering::Acquire) {
                        tick.tick().await;
                        let entity = format!("{prefix}-e{w}-{}", n % 4);
                        let id = format!("{prefix}-w{w}-{n}");
                        let p = phase.load(Ordering::Acquire);
                        let start = Instant::now();
                        let status = deliver(&base, &id, &entity, n, 64).await;
                        out.push(Sent { id, status, latency: start.elapsed(), phase: p });
                        n += 1;
                    }
                    out
                })
            })
            .collect();
        Load { phase, stop, tasks }
    }

    pub fn set_phase(&self, p: u8) {
        self.phase.store(p, Ordering::Release);
    }

    pub async fn finish(self) -> Vec<Sent> {
        self.stop.store(true, Ordering::Release);
        let mut all = Vec::new();
        for t in self.tasks {
            all.extend(t.await.unwrap());
        }
        all
    }
}

/// The 99th percentile latency of the requests sent in `phase`.
pub fn p99(sent: &[Sent], phase: u8) -> Duration {
    let mut l: Vec<Duration> = sent.iter().filter(|s| s.phase == phase).map(|s| s.latency).collect();
    l.sort();
    l.get((l.len() * 99 / 100).min(l.len().saturating_sub(1))).copied().unwrap_or_default()
}

/// Drains `topic` until every id in `want` is there (or `within` passes); returns every record.
pub async fn until_all_on_kafka(brokers: &str, topic: &str, want: &[String], within: Duration) -> Vec<OwnedMessage> {
    let deadline = Instant::now() + within;
    loop {
        let records = drain(brokers, topic, Duration::from_secs(20)).await;
        let ids: std::collections::HashSet<String> = records.iter().filter_map(|m| header(m, "ce_id")).collect();
        if want.iter().all(|id| ids.contains(id)) || Instant::now() > deadline {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Asserts each id in `accepted` is on Kafka exactly once, nothing else is, and within each key
/// the body's `n` increases in offset order.
pub fn assert_exactly_once_in_order(records: &[OwnedMessage], accepted: &[String]) {
    let mut count: HashMap<String, usize> = HashMap::new();
    // (partition, key) → (offset, n) in the order read.
    type Key = (i32, Vec<u8>);
    let mut by_key: BTreeMap<Key, Vec<(i64, u64)>> = BTreeMap::new();
    for m in records {
        let id = header(m, "ce_id").expect("every record has ce_id");
        *count.entry(id).or_default() += 1;
        let body: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        let key = (m.partition(), m.key().unwrap().to_vec());
        by_key.entry(key).or_default().push((m.offset(), body["n"].as_u64().unwrap()));
    }
    let missing: Vec<&String> = accepted.iter().filter(|id| !count.contains_key(*id)).collect();
    assert!(missing.is_empty(), "{} accepted ids not on Kafka, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
    let dups: Vec<(&String, &usize)> = count.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dups.is_empty(), "{} ids on Kafka more than once, e.g. {:?}", dups.len(), &dups[..dups.len().min(5)]);
    assert_eq!(count.len(), accepted.len(), "only accepted ids are on Kafka");
    for ((p, key), mut seq) in by_key {
        seq.sort();
        let ns: Vec<u64> = seq.iter().map(|(_, n)| *n).collect();
        assert!(ns.windows(2).all(|w| w[0] < w[1]), "key {} (partition {p}) out of order: {ns:?}", String::from_utf8_lossy(&key));
    }
}
