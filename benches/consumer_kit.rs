//! Consumer kit throughput against a plain rdkafka `StreamConsumer`, side by side in one run on a
//! real Tansu broker: both read the same N records (CloudEvents as strangler publishes them), the
//! kit with a trivial handler (decode, dedupe, handle, publish the outcome, await its ack, store
//! the offset), the plain consumer only receiving. Printed as records/s and as ratios.
//!
//! `cargo bench --bench consumer_kit` (env: BENCH_RECORDS, default 20000; BENCH_ROUNDS, default 2;
//! BENCH_PARTITIONS, default 4; BENCH_KEYS, default 1000; BENCH_LANES and BENCH_MAX_IN_FLIGHT,
//! default the kit's; BENCH_KIT_LIBRDKAFKA, `k=v,k=v` settings added to the kit's clients). Needs
//! Tansu (`$TANSU_BIN` or `~/.cargo/bin/tansu`, as scripts/test.sh installs it). Rates are timed
//! from the first record seen, so group joins do not count; the kit's two ends are in [`kit`].

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use strangler::compare::outcome::{Outcome, Source};
use strangler::consumer::{self, ConsumerConfig, Decision, Effects, Event, Handler, HandlerError};
use tokio::sync::{watch, Notify};

const TOPIC: &str = "bench.events";
const OUTCOMES: &str = "bench.outcomes";
const WAIT: Duration = Duration::from_secs(120);

/// A Tansu child process on a free loopback port, in-memory storage; killed on drop.
struct Tansu {
    brokers: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tansu_bin() -> Option<PathBuf> {
    let bin = std::env::var_os("TANSU_BIN")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/tansu")))?;
    bin.is_file().then_some(bin)
}

fn start_tansu(bin: PathBuf) -> Tansu {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("tansu.log")).unwrap();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(bin)
        .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", "memory://tansu/"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn tansu");
    let tansu = Tansu { brokers: format!("127.0.0.1:{port}"), child, _dir: dir };
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < Duration::from_secs(30), "tansu did not start");
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let probe: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &tansu.brokers).create().unwrap();
            if probe.fetch_metadata(None, Duration::from_secs(2)).is_ok() {
                return tansu;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics([&NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &opts).await.unwrap() {
        result.unwrap_or_else(|(name, code)| panic!("create {name}: {code:?}"));
    }
    tokio::task::spawn_blocking(move || drop(admin)).await.unwrap();
}

/// Produces `n` events over `keys` keys, every acknowledgement awaited.
async fn produce(brokers: &str, n: usize, keys: usize) {
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", brokers).set("linger.ms", "5").set("acks", "all").create().unwrap();
    let body = br#"{"ref":"refs/heads/main","repository":{"full_name":"acme/widgets"}}"#;
    let mut deliveries = Vec::with_capacity(n);
    for i in 0..n {
        let (id, key) = (format!("evt-{i}"), format!("key-{}", i % keys));
        let headers = [
            ("ce_specversion", "1.0"),
            ("ce_id", id.as_str()),
            ("ce_source", "strangler://bench"),
            ("ce_type", "com.github.push"),
            ("ce_partitionkey", key.as_str()),
            ("ce_stranglerroute", "bench"),
            ("ce_stranglermode", "shadow"),
            ("ce_stranglerowner", "legacy"),
            ("ce_stranglersignature", "valid"),
            ("content-type", "application/json"),
        ]
        .iter()
        .fold(OwnedHeaders::new(), |h, (k, v)| h.insert(Header { key: k, value: Some(*v) }));
        let record = FutureRecord::to(TOPIC).key(&key).payload(&body[..]).headers(headers);
        deliveries.push(producer.send_result(record).map_err(|(e, _)| e).expect("enqueue"));
    }
    for d in deliveries {
        d.await.unwrap().map_err(|(e, _)| e).expect("delivered");
    }
    tokio::task::spawn_blocking(move || drop(producer)).await.unwrap();
}

/// Reads `n` records with a plain `StreamConsumer`; seconds from the first record to the n-th.
async fn plain(brokers: &str, group: &str, n: usize) -> f64 {
    let c: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    c.subscribe(&[TOPIC]).unwrap();
    let (mut seen, mut bytes, mut first) = (0, 0, None);
    while seen < n {
        let m = tokio::time::timeout(WAIT, c.recv()).await.expect("plain consumer stalled").expect("recv");
        first.get_or_insert_with(Instant::now);
        bytes += m.payload().map_or(0, <[u8]>::len);
        seen += 1;
    }
    let secs = first.unwrap().elapsed().as_secs_f64();
    assert!(bytes > 0);
    tokio::task::spawn_blocking(move || drop(c)).await.unwrap();
    secs
}

/// The same work per record written by hand on rdkafka, without the kit (no lanes, dedupe,
/// retries or dead letters): decode the event's headers, publish its outcome, store the offset
/// once acknowledged, in order, with up to 256 outcomes pending. Seconds from the first record to
/// the n-th acknowledgement, and to the end (offsets committed, clients closed, as `run` ends).
async fn hand(brokers: &str, group: &str, n: usize) -> (f64, f64) {
    let c: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.offset.store", "false")
        .create()
        .unwrap();
    // The kit's producer settings, so both publish alike.
    let mut pc = ClientConfig::new();
    pc.set("bootstrap.servers", brokers).set("linger.ms", "1").set("message.timeout.ms", "30000");
    for (k, v) in kit_librdkafka() {
        pc.set(k, v);
    }
    let p: FutureProducer = pc.create().unwrap();
    c.subscribe(&[TOPIC]).unwrap();
    let (mut pending, mut first) = (std::collections::VecDeque::new(), None);
    for _ in 0..n {
        let m = tokio::time::timeout(WAIT, c.recv()).await.expect("hand consumer stalled").expect("recv");
        first.get_or_insert_with(Instant::now);
        let event = consumer::decode(&m).expect("an event");
        let outcome = Outcome::from_response(&event.id, &event.route, Source::New, event.mode, 200, None, b"", 0.0, "bench-hand");
        let value = serde_json::to_vec(&outcome).unwrap();
        let record = FutureRecord::to(OUTCOMES).key(&event.id).payload(&value);
        pending.push_back((p.send_result(record).map_err(|(e, _)| e).expect("enqueue"), m.partition(), m.offset()));
        if pending.len() > 256 {
            settle(pending.pop_front().unwrap(), &c).await;
        }
    }
    while let Some(next) = pending.pop_front() {
        settle(next, &c).await;
    }
    let secs = first.unwrap().elapsed().as_secs_f64();
    // As the kit's `run` ends: commit what was stored, close both clients.
    tokio::task::spawn_blocking(move || {
        c.commit_consumer_state(CommitMode::Sync).unwrap();
        drop((c, p));
    })
    .await
    .unwrap();
    (secs, first.unwrap().elapsed().as_secs_f64())
}

async fn settle((delivery, partition, offset): (DeliveryFuture, i32, i64), c: &StreamConsumer) {
    delivery.await.unwrap().map_err(|(e, _)| e).expect("outcome delivered");
    c.store_offset(TOPIC, partition, offset + 1).unwrap();
}

/// BENCH_KIT_LIBRDKAFKA="k=v,k=v": extra librdkafka settings for the kit's clients (and the
/// hand-written consumer's producer).
fn kit_librdkafka() -> Vec<(String, String)> {
    let all = std::env::var("BENCH_KIT_LIBRDKAFKA").unwrap_or_default();
    all.split(',')
        .filter(|s| !s.is_empty())
        .map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).expect("BENCH_KIT_LIBRDKAFKA is k=v,k=v"))
        .collect()
}

/// Answers 200 to everything; notes when it saw the first event and how many it saw.
struct Trivial {
    first: Mutex<Option<Instant>>,
    calls: AtomicU64,
    all: Arc<Notify>,
    n: u64,
}

impl Handler for Trivial {
    async fn handle(&self, _event: &Event, _effects: &Effects) -> Result<Decision, HandlerError> {
        self.first.lock().unwrap().get_or_insert_with(Instant::now);
        if self.calls.fetch_add(1, Ordering::Relaxed) + 1 == self.n {
            self.all.notify_one();
        }
        Ok(Decision::status(200))
    }
}

/// Runs the kit over the `n` records; seconds from the first handler call to the n-th, and to the
/// end of `run` (stopped at the n-th call: it waits for every outcome still unacknowledged, up to
/// `max_in_flight`, commits and closes its clients). Its stats must show all `n` outcomes
/// acknowledged.
async fn kit(brokers: &str, group: &str, n: usize, lanes: Option<usize>) -> (f64, f64) {
    let mut cfg = ConsumerConfig::new(brokers, group, vec![TOPIC.into()], "bench-service");
    cfg.outcomes_topic = OUTCOMES.into();
    if let Some(l) = lanes {
        cfg.lanes = l;
    }
    if let Some(m) = std::env::var("BENCH_MAX_IN_FLIGHT").ok().and_then(|s| s.parse().ok()) {
        cfg.max_in_flight = m;
    }
    cfg.librdkafka.extend(kit_librdkafka());
    let all = Arc::new(Notify::new());
    let handler = Arc::new(Trivial { first: Mutex::new(None), calls: AtomicU64::new(0), all: all.clone(), n: n as u64 });
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(consumer::run(cfg, SharedTrivial(handler.clone()), shutdown));
    tokio::time::timeout(WAIT, all.notified()).await.expect("kit stalled");
    let last = Instant::now();
    stop.send(true).unwrap();
    let stats = task.await.unwrap().expect("kit run");
    let returned = Instant::now();
    assert_eq!((stats.handled, stats.outcomes_published), (n as u64, n as u64), "{stats:?}");
    let first = handler.first.lock().unwrap().unwrap();
    (last.duration_since(first).as_secs_f64(), returned.duration_since(first).as_secs_f64())
}

struct SharedTrivial(Arc<Trivial>);

impl Handler for SharedTrivial {
    async fn handle(&self, event: &Event, effects: &Effects) -> Result<Decision, HandlerError> {
        self.0.handle(event, effects).await
    }
}

/// CPU seconds (user + system) a process has used so far, from `/proc/<pid>/stat` (every
/// thread, live or exited), in clock ticks of 10 ms.
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are 14th and 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU µs per record spent by this process and by the broker while `f` ran.
async fn measured<T>(tansu: &Tansu, n: usize, f: impl std::future::Future<Output = T>) -> (T, f64, f64) {
    let broker = tansu.child.id().to_string();
    let (me0, b0) = (cpu_secs("self"), cpu_secs(&broker));
    let out = f.await;
    let (me, b) = (cpu_secs("self") - me0, cpu_secs(&broker) - b0);
    (out, me * 1e6 / n as f64, b * 1e6 / n as f64)
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` gets a small smoke run.
    let bench = std::env::args().any(|a| a == "--bench");
    let n = env("BENCH_RECORDS", if bench { 20_000 } else { 500 });
    let rounds = env("BENCH_ROUNDS", if bench { 2 } else { 1 });
    let (partitions, keys) = (env("BENCH_PARTITIONS", 4) as i32, env("BENCH_KEYS", 1000));
    let lanes = std::env::var("BENCH_LANES").ok().and_then(|s| s.parse().ok());
    let Some(bin) = tansu_bin() else {
        println!("consumer_kit bench skipped: no tansu (set TANSU_BIN or run scripts/test.sh)");
        return;
    };
    let tansu = start_tansu(bin);
    create_topic(&tansu.brokers, TOPIC, partitions).await;
    create_topic(&tansu.brokers, OUTCOMES, partitions).await;
    let produced = Instant::now();
    produce(&tansu.brokers, n, keys).await;
    println!("produced in {:.2?} ({:.0} rec/s, linger.ms 5)", produced.elapsed(), n as f64 / produced.elapsed().as_secs_f64());
    println!(
        "{n} records, {partitions} partitions, {keys} keys, lanes: {}",
        lanes.map_or("default".into(), |l: usize| l.to_string())
    );
    println!("kit rec/s to its n-th handler call, and to the end of its run (all acknowledged, committed, closed)");
    println!("CPU µs/record: this process (client) and the broker, over each side's whole run, start-up included");
    println!("hand: the kit's work per record written by hand on rdkafka (decode, publish the outcome, store the offset once acknowledged)");
    println!("round  plain rec/s  kit rec/s  kit/plain  kit to end  kit to end/plain  hand rec/s  hand to end  kit to end/hand to end  cpu client+broker: plain  hand  kit");
    for round in 1..=rounds {
        let (p, pc, pb) = measured(&tansu, n, plain(&tansu.brokers, &format!("plain-{round}"), n)).await;
        let ((h, hend), hc, hb) = measured(&tansu, n, hand(&tansu.brokers, &format!("hand-{round}"), n)).await;
        let ((k, end), kc, kb) = measured(&tansu, n, kit(&tansu.brokers, &format!("kit-{round}"), n, lanes)).await;
        let (pr, kr, er, hr, hr_end) = (n as f64 / p, n as f64 / k, n as f64 / end, n as f64 / h, n as f64 / hend);
        let (kp, ep, eh) = (kr / pr, er / pr, er / hr_end);
        println!(
            "{round:>5} {pr:>12.0} {kr:>10.0} {kp:>9.2}x {er:>11.0} {ep:>16.2}x {hr:>11.0} {hr_end:>11.0} {eh:>15.2}x   {pc:.1}+{pb:.1}  {hc:.1}+{hb:.1}  {kc:.1}+{kb:.1}"
        );
    }
}
