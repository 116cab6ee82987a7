//! librdkafka clients: an idempotent `acks=all` producer whose delivery reports carry librdkafka's
//! persistence status, and the broker-health signals (all brokers down, fatal error) it raises.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka_sys::rd_kafka_msg_status_t;
use tokio::sync::{mpsc, oneshot, Notify};

/// Settings strangler relies on for the events producer. Idempotence keeps librdkafka's retries
/// from duplicating or reordering records within a partition; `acks=all` means an acknowledged
/// event survives the loss of a broker. A message not acknowledged within 30 s fails back to
/// strangler, which spools it instead of holding it in memory.
const PRODUCER_DEFAULTS: [(&str, &str); 4] =
    [("enable.idempotence", "true"), ("acks", "all"), ("linger.ms", "5"), ("message.timeout.ms", "30000")];

/// The producer type strangler uses everywhere.
pub type Producer = ThreadedProducer<Ctx>;

/// Client settings for any strangler client (producer, admin, consumer).
pub fn client_config(brokers: &str, overrides: &BTreeMap<String, String>) -> ClientConfig {
    with_defaults(brokers, &[], overrides)
}

/// Producer settings: strangler's defaults, then the operator's overrides.
pub fn producer_config(brokers: &str, overrides: &BTreeMap<String, String>) -> ClientConfig {
    with_defaults(brokers, &PRODUCER_DEFAULTS, overrides)
}

/// Creates a producer reporting into `health`.
pub fn create(config: &ClientConfig, health: Arc<Health>) -> KafkaResult<Producer> {
    config.create_with_context(Ctx { health })
}

fn with_defaults(brokers: &str, defaults: &[(&str, &str)], overrides: &BTreeMap<String, String>) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers).set("client.id", "strangler");
    for (k, v) in defaults {
        cfg.set(*k, *v);
    }
    // The operator's `[kafka.librdkafka]` comes last so it can override anything above.
    for (k, v) in overrides {
        cfg.set(k, v);
    }
    cfg
}

/// What the producers have learnt about the brokers. Shared by every producer and the replayer.
#[derive(Debug, Default)]
pub struct Health {
    down: AtomicBool,
    fatal: AtomicBool,
    /// Wakes the supervisor when `down` or `fatal` changes.
    pub changed: Notify,
}

impl Health {
    /// True once librdkafka reported every broker down, until a delivery or a probe succeeds.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    pub fn set_down(&self) {
        if !self.down.swap(true, Ordering::AcqRel) {
            tracing::warn!("kafka: all brokers down; shadow events go to the spool");
            self.changed.notify_one();
        }
    }

    pub fn set_up(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            tracing::info!("kafka: reachable again");
            self.changed.notify_one();
        }
    }

    pub fn set_fatal(&self) {
        self.fatal.store(true, Ordering::Release);
        self.changed.notify_one();
    }

    /// Takes the fatal flag: true once per fatal error.
    pub fn take_fatal(&self) -> bool {
        self.fatal.swap(false, Ordering::AcqRel)
    }
}

/// The outcome of one message, as librdkafka reported it.
#[derive(Debug)]
pub enum Report {
    Acked,
    Failed {
        error: KafkaError,
        /// librdkafka's message status: the broker may have written it even though it failed.
        possibly_persisted: bool,
        partition: Option<i32>,
    },
}

/// Who waits for a message's delivery report.
pub enum Waiter {
    /// One task awaits it.
    One(oneshot::Sender<Report>),
    /// One task awaits it and the partition the record went to (events, counted per partition).
    Placed(oneshot::Sender<Placed>),
    /// Write-ahead: reports go to one channel in librdkafka's order (per partition, the order
    /// Kafka wrote them), with where the event landed.
    Logged { seq: u64, to: mpsc::UnboundedSender<Logged> },
}

/// A delivery report for a [`Waiter::Placed`] message.
#[derive(Debug)]
pub struct Placed {
    pub report: Report,
    /// Where an acknowledged record landed; `None` when it failed.
    pub partition: Option<i32>,
}

/// A delivery report for a [`Waiter::Logged`] message.
#[derive(Debug)]
pub struct Logged {
    pub seq: u64,
    pub report: Report,
    /// Topic, partition and offset, when acknowledged.
    pub at: Option<(String, i32, i64)>,
}

/// The producer context: delivery reports go to the waiting task, client errors to [`Health`].
pub struct Ctx {
    health: Arc<Health>,
}

impl ClientContext for Ctx {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.health.set_down();
            return;
        }
        // A fatal error arrives here as its underlying code; the supervisor asks the client
        // whether it is fatal (`fatal_error()`), so wake it.
        tracing::warn!(%error, reason, "kafka client error");
        self.health.changed.notify_one();
    }
}

impl ProducerContext for Ctx {
    type DeliveryOpaque = Box<Waiter>;

    fn delivery(&self, result: &DeliveryResult<'_>, done: Self::DeliveryOpaque) {
        let report = match result {
            Ok(_) => {
                self.health.set_up();
                Report::Acked
            }
            Err((error, message)) => Report::Failed {
                error: error.clone(),
                possibly_persisted: possibly_persisted(message),
                partition: (message.partition() >= 0).then(|| message.partition()),
            },
        };
        // The waiting task may be gone (shutdown): nothing left to tell.
        match *done {
            Waiter::One(done) => {
                let _ = done.send(report);
            }
            Waiter::Placed(done) => {
                let partition = result.as_ref().ok().map(|m| m.partition());
                let _ = done.send(Placed { report, partition });
            }
            Waiter::Logged { seq, to } => {
                let at = match (&report, result) {
                    (Report::Acked, Ok(m)) => Some((m.topic().to_string(), m.partition(), m.offset())),
                    _ => None,
                };
                let _ = to.send(Logged { seq, report, at });
            }
        }
    }
}

fn possibly_persisted(message: &BorrowedMessage<'_>) -> bool {
    // SAFETY: `ptr()` is the live message librdkafka handed to this delivery callback; the status
    // call only reads it.
    let status = unsafe { rdkafka_sys::rd_kafka_message_status(message.ptr()) };
    status != rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_NOT_PERSISTED
}

/// One record to produce.
pub struct Outgoing<'a> {
    pub topic: &'a str,
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub headers: &'a [(String, String)],
}

/// Enqueues `out` and returns the receiver of its delivery report, or the error that kept
/// librdkafka from taking it (queue full, too large, unknown topic).
pub fn send(producer: &Producer, out: &Outgoing<'_>) -> Result<oneshot::Receiver<Report>, KafkaError> {
    let (done, report) = oneshot::channel();
    send_to(producer, out, Waiter::One(done)).map(|()| report)
}

/// As [`send`], and the report says which partition the record landed on.
pub fn send_placed(producer: &Producer, out: &Outgoing<'_>) -> Result<oneshot::Receiver<Placed>, KafkaError> {
    let (done, report) = oneshot::channel();
    send_to(producer, out, Waiter::Placed(done)).map(|()| report)
}

/// Enqueues `out`; its report goes to `to` as a [`Logged`] for `seq`.
pub fn send_logged(
    producer: &Producer,
    out: &Outgoing<'_>,
    seq: u64,
    to: &mpsc::UnboundedSender<Logged>,
) -> Result<(), KafkaError> {
    send_to(producer, out, Waiter::Logged { seq, to: to.clone() })
}

fn send_to(producer: &Producer, out: &Outgoing<'_>, waiter: Waiter) -> Result<(), KafkaError> {
    let headers = out.headers.iter().fold(OwnedHeaders::new_with_capacity(out.headers.len()), |h, (k, v)| {
        h.insert(Header { key: k, value: Some(v.as_bytes()) })
    });
    let record = BaseRecord::with_opaque_to(out.topic, Box::new(waiter)).key(out.key).payload(out.value).headers(headers);
    producer.send(record).map_err(|(e, _)| e)
}

/// Sends and waits for the delivery report.
pub async fn deliver(producer: &Producer, out: &Outgoing<'_>) -> Report {
    match send(producer, out) {
        Ok(report) => {
            report.await.unwrap_or(Report::Failed { error: KafkaError::Canceled, possibly_persisted: true, partition: None })
        }
        Err(error) => Report::Failed { error, possibly_persisted: false, partition: None },
    }
}

/// As [`deliver`], and the report says which partition the record landed on.
pub async fn deliver_placed(producer: &Producer, out: &Outgoing<'_>) -> Placed {
    match send_placed(producer, out) {
        Ok(report) => report.await.unwrap_or_else(|_| canceled()),
        Err(error) => Placed { report: Report::Failed { error, possibly_persisted: false, partition: None }, partition: None },
    }
}

/// The report of a message whose waiter was dropped: librdkafka may still have written it.
pub fn canceled() -> Placed {
    Placed { report: Report::Failed { error: KafkaError::Canceled, possibly_persisted: true, partition: None }, partition: None }
}

/// Fails a running producer on purpose, as librdkafka would on a fatal idempotence error. For
/// fault-injection tests of the recreate path.
#[doc(hidden)]
pub fn inject_fatal_error(producer: &Producer, reason: &str) {
    use rdkafka::producer::Producer as _;
    let Ok(reason) = std::ffi::CString::new(reason) else { return };
    // SAFETY: the client pointer is valid while `producer` lives; librdkafka copies the reason.
    unsafe {
        rdkafka_sys::rd_kafka_test_fatal_error(
            producer.client().native_ptr(),
            rdkafka_sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
            reason.as_ptr(),
        );
    }
}
