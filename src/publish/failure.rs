//! Why an event did not reach Kafka, and whether trying again could ever help.
//!
//! Retryable errors (leader moves, too few replicas, transport) never get here: librdkafka retries
//! them itself within `message.timeout.ms`, and idempotence keeps per-partition order. What does
//! get here either waits in the spool or, when Kafka refused it for good, goes to the dead-letter topic.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Why an event did not reach Kafka. Bounded: used as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// librdkafka's local queue is full (the broker is slow or down).
    QueueFull,
    /// The broker did not acknowledge within `message.timeout.ms`.
    TimedOut,
    /// Taken back out of librdkafka's queue: every broker was down, or the producer was replaced.
    Purged,
    /// Every broker is down: the event went straight to the spool.
    KafkaDown,
    /// The spool still holds older events; newer ones queue behind them to keep per-key order.
    SpoolDraining,
    /// The broker refused the record for good (too large, not authorised, invalid).
    Refused,
    /// Any other failure (fatal producer error, unknown topic, ...).
    Failed,
    /// The producer went away before the outcome was known (shutdown).
    Canceled,
}

impl FailReason {
    /// Every variant, for metrics that exist at zero before the first failure.
    pub const ALL: [FailReason; 8] = [
        FailReason::QueueFull,
        FailReason::TimedOut,
        FailReason::Purged,
        FailReason::KafkaDown,
        FailReason::SpoolDraining,
        FailReason::Refused,
        FailReason::Failed,
        FailReason::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::QueueFull => "queue_full",
            FailReason::TimedOut => "timed_out",
            FailReason::Purged => "purged",
            FailReason::KafkaDown => "kafka_down",
            FailReason::SpoolDraining => "spool_draining",
            FailReason::Refused => "refused",
            FailReason::Failed => "failed",
            FailReason::Canceled => "canceled",
        }
    }

    pub fn of(e: &KafkaError) -> Self {
        if permanent(e).is_some() {
            return FailReason::Refused;
        }
        match e {
            KafkaError::Canceled => FailReason::Canceled,
            _ => match e.rdkafka_error_code() {
                Some(RDKafkaErrorCode::QueueFull) => FailReason::QueueFull,
                Some(RDKafkaErrorCode::MessageTimedOut) => FailReason::TimedOut,
                Some(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight) => FailReason::Purged,
                _ => FailReason::Failed,
            },
        }
    }
}

/// Every reason [`permanent`] gives: the `reason` of `strangler_dead_letters_total`.
pub const PERMANENT_REASONS: [&str; 4] = [TOO_LARGE, INVALID, NOT_AUTHORIZED, INVALID_TOPIC];
const TOO_LARGE: &str = "too_large";
const INVALID: &str = "invalid";
const NOT_AUTHORIZED: &str = "not_authorized";
const INVALID_TOPIC: &str = "invalid_topic";

/// Why an accepted event will never reach Kafka: the `reason` of `strangler_events_dropped_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Kafka did not take it and no spool is configured.
    NoSpool,
    /// The spool was full and this, its oldest event, made room.
    SpoolEvicted,
    /// The spool was full and could not take it.
    SpoolFull,
    /// Writing it to the spool failed.
    SpoolError,
    /// Kafka refused it for good and the dead-letter topic failed too.
    DeadLetterFailed,
}

impl DropReason {
    /// Every variant, for metrics that exist at zero before the first drop.
    pub const ALL: [DropReason; 5] = [
        DropReason::NoSpool,
        DropReason::SpoolEvicted,
        DropReason::SpoolFull,
        DropReason::SpoolError,
        DropReason::DeadLetterFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::NoSpool => "no_spool",
            DropReason::SpoolEvicted => "spool_evicted",
            DropReason::SpoolFull => "spool_full",
            DropReason::SpoolError => "spool_error",
            DropReason::DeadLetterFailed => "dead_letter_failed",
        }
    }
}

/// The dead-letter reason when Kafka will never take this record as it is; `None` when a later
/// attempt may succeed.
pub fn permanent(e: &KafkaError) -> Option<&'static str> {
    let code = e.rdkafka_error_code()?;
    Some(match code {
        RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge | RDKafkaErrorCode::InvalidMessageSize => {
            TOO_LARGE
        }
        RDKafkaErrorCode::InvalidMessage | RDKafkaErrorCode::InvalidRecord | RDKafkaErrorCode::BadMessage => INVALID,
        RDKafkaErrorCode::TopicAuthorizationFailed | RDKafkaErrorCode::ClusterAuthorizationFailed => NOT_AUTHORIZED,
        RDKafkaErrorCode::InvalidTopic => INVALID_TOPIC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_and_authorisation_refusals_are_permanent_others_are_not() {
        let size = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        assert_eq!(permanent(&size), Some("too_large"));
        assert_eq!(FailReason::of(&size), FailReason::Refused);
        let auth = KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed);
        assert_eq!(permanent(&auth), Some("not_authorized"));
        for retryable in [
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::QueueFull,
            RDKafkaErrorCode::NotEnoughReplicas,
            RDKafkaErrorCode::LeaderNotAvailable,
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::PurgeQueue,
        ] {
            assert_eq!(permanent(&KafkaError::MessageProduction(retryable)), None, "{retryable:?}");
        }
        assert_eq!(FailReason::of(&KafkaError::MessageProduction(RDKafkaErrorCode::PurgeQueue)), FailReason::Purged);
        assert_eq!(FailReason::of(&KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut)), FailReason::TimedOut);
    }
}
