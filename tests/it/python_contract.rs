//! A Python consumer written from docs/consumer-protocol.md alone (tests/python/shadow_consumer.py)
//! against the real proxy, a real broker and the sample monolith: the events it reads and the
//! outcomes it writes must be what the page promises, in both directions.
//!
//! The Python side needs the venv that `./scripts/test.sh` installs (`STRANGLER_PYTHON`).

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use http::StatusCode;
use rdkafka::message::{Message, OwnedMessage};
use serde_json::{json, Value};
use strangler::compare::outcome::{BodyEncoding, EventMode, Outcome, Source};
use strangler::demo::monolith::Monolith;

use crate::harness::{eventually, post, start_proxy, url};
use crate::sign;
use crate::support::broker::Tansu;
use crate::support::kafka::{create_topic, drain, header};

const WAIT: Duration = Duration::from_secs(30);
/// The Python process: interpreter start, group join and 20 round trips to the broker.
const CONSUMER_DEADLINE: Duration = Duration::from_secs(90);
const ROUTE: &str = "github";
const EVENTS_TOPIC: &str = "webhooks.github";
const OUTCOMES_TOPIC: &str = "strangler.outcomes";
const PARTITIONS: i32 = 3;
const GH_SECRET: &str = "gh-secret";
const SERVICE: &str = "triage-py";
/// Distinct deliveries sent; the consumer exits after this many outcomes.
const EVENTS: usize = 20;
/// The delivery the "sender" retries (same `X-GitHub-Delivery`, a second record on Kafka).
const RETRIED: usize = 4;

fn config(legacy: &str, brokers: &str) -> String {
    format!(
        r#"
[legacy]
url = "{legacy}"
[kafka]
brokers = "{brokers}"
partitions = {PARTITIONS}
[[route]]
name = "{ROUTE}"
match = {{ path = "/webhooks/github" }}
topic = "{EVENTS_TOPIC}"
signature = {{ scheme = "github", secrets_env = ["GH"] }}
event = {{ key_pointer = "/repository/full_name" }}
# The sample monolith answers {{"ok","seq"}}: compare statuses only.
compare = {{ body = "none" }}
"#
    )
}

/// One GitHub delivery as the sender sends it.
#[derive(Clone, Debug)]
pub struct Webhook {
    pub id: String,
    pub event: &'static str,
    pub body: Vec<u8>,
}

impl Webhook {
    /// `ce_type` the proxy gives it (docs: route prefix + the provider's event name).
    pub fn ce_type(&self) -> String {
        format!("com.github.{}", self.event)
    }

    pub fn headers(&self) -> Vec<(String, String)> {
        let mut h = sign::github(GH_SECRET, &self.body);
        h.push(("X-GitHub-Event".into(), self.event.into()));
        h.push(("X-GitHub-Delivery".into(), self.id.clone()));
        h.push(("Content-Type".into(), "application/json".into()));
        h
    }
}

/// `EVENTS` distinct deliveries over three repositories (so three partition keys, none equal to
/// the event id). Some ask the consumer's rule for another status; one body is a JSON array,
/// which the rule answers with a `text` body.
pub fn webhooks() -> Vec<Webhook> {
    (0..EVENTS)
        .map(|i| {
            let body = if i == 10 {
                json!([{ "repository": { "full_name": "acme/repo-1" } }, i])
            } else {
                let mut b = json!({
                    "action": "opened",
                    "issue": { "number": i },
                    "repository": { "full_name": format!("acme/repo-{}", i % 3) },
                    "echo": { "n": i, "tag": format!("t{i}") },
                });
                match i % 5 {
                    1 => b["reply_status"] = json!(202),
                    2 => b["reply_status"] = json!(409),
                    3 => b["reply_status"] = json!("not a number"),
                    _ => {}
                }
                b
            };
            Webhook { id: format!("delivery-{i:02}"), event: "issues", body: serde_json::to_vec(&body).unwrap() }
        })
        .collect()
}

/// Sends every webhook through `proxy`, and retries `RETRIED` right after its first delivery
/// through `replica`, a second proxy: dedupe is per replica, so the retry is published again
/// (docs/consumer-protocol.md) and the consumer must deduplicate it. The retry has the same key
/// as the last delivery, so it sits before it in one partition: a consumer that processes
/// partitions in order must pass it before its last outcome.
async fn send_all(proxy: &strangler::app::Running, replica: &strangler::app::Running, hooks: &[Webhook]) {
    assert_eq!(RETRIED % 3, (EVENTS - 1) % 3, "the retry shares the last delivery's partition key");
    for (i, hook) in hooks.iter().enumerate() {
        let via: &[&strangler::app::Running] = if i == RETRIED { &[proxy, replica] } else { &[proxy] };
        for p in via {
            let reply = post(&url(p, "/webhooks/github"), &hook.headers(), hook.body.clone()).await;
            assert_eq!(reply.status, StatusCode::OK, "{}: {:?}", hook.id, reply.body);
        }
    }
}

/// What the consumer's documented rule answers for `hook` (tests/python/shadow_consumer.py):
/// `(status, body, body_encoding)`.
pub fn predicted_answer(hook: &Webhook) -> (u16, Value, BodyEncoding) {
    match serde_json::from_slice::<Value>(&hook.body) {
        Ok(Value::Object(doc)) => {
            let status =
                doc.get("reply_status").and_then(Value::as_u64).filter(|s| (100..=599).contains(s)).map_or(200, |s| s as u16);
            let body = json!({
                "accepted": status < 400,
                "event_id": hook.id,
                "type": hook.ce_type(),
                "echo": doc.get("echo").cloned().unwrap_or(Value::Null),
            });
            (status, body, BodyEncoding::Json)
        }
        _ => (422, Value::String(format!("unprocessable: {}", hook.id)), BodyEncoding::Text),
    }
}

/// The interpreter of the venv `./scripts/test.sh` installs: `$STRANGLER_PYTHON`, else
/// `target/pyenv/bin/python` in this crate.
pub fn python() -> PathBuf {
    let from_env = std::env::var_os("STRANGLER_PYTHON").map(PathBuf::from).filter(|p| p.is_file());
    let fallback = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python");
    from_env.or_else(|| fallback.is_file().then_some(fallback)).unwrap_or_else(|| {
        panic!("no Python venv with the test deps: run ./scripts/test.sh, which installs the Python test deps")
    })
}

/// The Python consumer as a child process; killed when dropped (so on any failure), its log
/// printed if the test is panicking.
pub struct PyConsumer {
    child: Option<Child>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl PyConsumer {
    pub fn start(brokers: &str, topic: &str, group: &str, count: usize) -> PyConsumer {
        let dir = tempfile::tempdir().expect("python consumer temp dir");
        let log = dir.path().join("shadow_consumer.log");
        let out = File::create(&log).expect("python consumer log");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/shadow_consumer.py");
        let python = python();
        let child = Command::new(&python)
            .arg(&script)
            .args(["--brokers", brokers, "--topic", topic, "--group", group, "--outcomes-topic", OUTCOMES_TOPIC])
            .args(["--count", &count.to_string(), "--service-name", SERVICE])
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone log handle"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} {}: {e}", python.display(), script.display()));
        PyConsumer { child: Some(child), log, _dir: dir }
    }

    /// Waits for the process to exit, polling its status until `timeout`; panics past it.
    pub async fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("consumer running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait python consumer") {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "python consumer still running after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for PyConsumer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- python consumer log ---\n{}", self.log());
        }
    }
}

/// Every record of the outcomes topic, read to its end: `(key, outcome)`. Each value must
/// deserialize as an [`Outcome`]; panics (with the raw value) otherwise.
pub async fn read_outcomes(brokers: &str) -> Vec<(String, Outcome)> {
    drain(brokers, OUTCOMES_TOPIC, WAIT).await.iter().map(decode_outcome).collect()
}

fn decode_outcome(m: &OwnedMessage) -> (String, Outcome) {
    let key = String::from_utf8(m.key().expect("outcome has a key").to_vec()).expect("outcome key is UTF-8");
    let value = m.payload().unwrap_or_default();
    let outcome = serde_json::from_slice::<Outcome>(value)
        .unwrap_or_else(|e| panic!("outcome {key} is not an Outcome ({e}): {}", String::from_utf8_lossy(value)));
    (key, outcome)
}

/// The outcomes from `source`, by event id; panics on a second one for the same event.
pub fn by_event(outcomes: &[(String, Outcome)], source: Source) -> HashMap<String, (String, Outcome)> {
    let mut out = HashMap::new();
    for (key, o) in outcomes.iter().filter(|(_, o)| o.source == source) {
        let previous = out.insert(o.event_id.clone(), (key.clone(), o.clone()));
        assert!(previous.is_none(), "two {source:?} outcomes for {}: {previous:?} and {o:?}", o.event_id);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_consumer_built_from_the_protocol_page_publishes_outcomes_strangler_reads() {
    let tansu = Tansu::start();
    let monolith = Monolith::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let proxy = start_proxy(&config(&monolith.url(), &tansu.brokers), &[("GH", GH_SECRET)], None).await;
    let replica = start_proxy(&config(&monolith.url(), &tansu.brokers), &[("GH", GH_SECRET)], None).await;
    // The page says strangler creates it at start-up; harmless if it already has.
    create_topic(&tansu.brokers, OUTCOMES_TOPIC, PARTITIONS).await;

    let mut consumer = PyConsumer::start(&tansu.brokers, EVENTS_TOPIC, "triage-py-shadow", EVENTS);
    let hooks = webhooks();
    send_all(&proxy, &replica, &hooks).await;

    let status = consumer.wait(CONSUMER_DEADLINE).await;
    assert!(status.success(), "python consumer exited with {status}:\n{}", consumer.log());

    // The retry, through another replica, reached the consumer as a second record with the same
    // ce_id (so its dedupe ran).
    let events = drain(&tansu.brokers, EVENTS_TOPIC, WAIT).await;
    let retried = &hooks[RETRIED].id;
    assert_eq!(events.len(), EVENTS + 1, "every delivery and the retry are on the events topic");
    assert_eq!(events.iter().filter(|m| header(m, "ce_id").as_ref() == Some(retried)).count(), 2);

    let outcomes = read_outcomes(&tansu.brokers).await;
    let new = by_event(&outcomes, Source::New);
    assert_eq!(new.len(), EVENTS, "one new outcome per event id: {:?}", new.keys());
    for hook in &hooks {
        let (key, o) = new.get(&hook.id).unwrap_or_else(|| panic!("no outcome for {}", hook.id));
        assert_eq!(key, &hook.id, "outcomes are keyed by event id");
        assert_eq!(o.route, ROUTE);
        assert_eq!(o.mode, EventMode::Shadow);
        assert_eq!(o.consumer.as_deref(), Some(SERVICE));
        assert!(humantime::parse_rfc3339(&o.at).is_ok(), "{}: at = {:?}", hook.id, o.at);
        let (status, body, encoding) = predicted_answer(hook);
        assert_eq!((o.status, &o.body, o.body_encoding), (status, &body, encoding), "{}: the decision", hook.id);
    }

    // The comparator accepts them: every event is joined with the monolith's outcome (the
    // sender's retry is a duplicate legacy outcome), and statuses decide match or mismatch.
    // Both replicas run the comparator in one consumer group: add up what each compared.
    let parity = |result: &str| {
        [&proxy, &replica].iter().map(|p| p.metrics.compare.parity.with_label_values(&[ROUTE, result]).get()).sum::<u64>()
    };
    let joined = || async { parity("match") + parity("mismatch") == EVENTS as u64 };
    assert!(eventually(WAIT, joined).await, "match {} mismatch {}", parity("match"), parity("mismatch"));
    let agree = hooks.iter().filter(|h| predicted_answer(h).0 == 200).count() as u64;
    assert_eq!((parity("match"), parity("mismatch")), (agree, EVENTS as u64 - agree));
    assert_eq!(parity("missing_new") + parity("missing_legacy"), 0);
    let read = |f: &dyn Fn(&strangler::app::Running) -> u64| f(&proxy) + f(&replica);
    assert_eq!(read(&|p| p.metrics.compare.dropped.with_label_values(&["undecodable"]).get()), 0);
    assert_eq!(read(&|p| p.metrics.compare.outcomes.with_label_values(&[ROUTE, "new", "shadow"]).get()), EVENTS as u64);

    replica.shutdown().await;
    proxy.shutdown().await;
}
