//! The consumer kit: what a Rust team uses to write a new service against strangler's events.
//!
//! A service implements [`Handler`] (decide what to answer for one [`Event`]) and calls [`run`].
//! The kit does the rest of docs/consumer-protocol.md. Records are dispatched to
//! [`ConsumerConfig::lanes`] lanes by a hash of their key; each lane takes its records one at a
//! time, in the order received (so per key, in partition order), through these steps:
//!
//! 1. decode the CloudEvent ([`event::decode`]); a record it cannot decode is dead-lettered;
//! 2. skip an event id it already answered (a bounded in-memory window), and skip, unhandled and
//!    without remembering its id, an event marked `ce_stranglersignature=invalid`;
//! 3. call the handler with retries and exponential backoff; side effects go through
//!    [`Effects::perform`], which runs them only for `live` events (the shadow guarantee);
//! 4. publish the [`Outcome`](crate::compare::outcome::Outcome) keyed by event id; the lane goes on
//!    to its next record while the broker's acknowledgement is awaited beside it (in the lane's
//!    own task, many at once), retrying until it is acknowledged;
//! 5. only then count the record done (its id answered, its offset storable). A handler that keeps failing sends the record to
//!    `<topic>.dlq` with a `dlq_reason` header instead, and no outcome.
//!
//! A partition's offset is stored for commit only up to its lowest record not yet done, however
//! the lanes finish; at most [`ConsumerConfig::max_in_flight`] records are held at once. An event
//! id is claimed before it is handled, so two deliveries of one id are never handled at once.
//!
//! Deliveries are at-least-once: the dedupe window is in memory, so after a restart an event whose
//! offset was not yet committed is handled again. Live side effects should therefore be idempotent
//! by event id.
//!
//! ```no_run
//! use strangler::consumer::{self, ConsumerConfig, Decision, Effects, Event, Handler, HandlerError};
//!
//! struct Triage;
//!
//! impl Handler for Triage {
//!     async fn handle(&self, event: &Event, effects: &Effects) -> Result<Decision, HandlerError> {
//!         let issue: serde_json::Value = event.json()?;
//!         effects.perform("label the issue", || async { /* call the tracker */ }).await;
//!         Decision::json(200, &serde_json::json!({ "labels": issue["labels"] }))
//!     }
//! }
//!
//! # async fn main_() -> Result<(), consumer::ConsumerError> {
//! let cfg = ConsumerConfig::new("localhost:9092", "triage", vec!["webhooks.github".into()], "triage-service");
//! let (_stop, shutdown) = tokio::sync::watch::channel(false);
//! let stats = consumer::run(cfg, Triage, shutdown).await?;
//! # Ok(()) }
//! ```

pub mod config;
mod dedupe;
pub mod effects;
pub mod event;
pub mod handler;
mod lane;
mod offsets;
mod raw;
pub mod runner;
mod settle;

pub use config::ConsumerConfig;
pub use effects::Effects;
pub use event::{decode, DecodeError, Event};
pub use handler::{Decision, Handler, HandlerError};
pub use runner::{run, RunStats};

use rdkafka::error::KafkaError;

/// Why [`run`] could not start or stopped abnormally. Per-record problems (undecodable records,
/// failing handlers, unavailable brokers) never end the loop: they are retried or dead-lettered.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The [`ConsumerConfig`] cannot work (no topics, zero attempts, ...).
    #[error("invalid consumer config: {0}")]
    Config(String),
    /// A Kafka client could not be created, subscribed or committed.
    #[error("kafka {what}: {source}")]
    Kafka {
        /// What the kit was doing: `consumer`, `producer`, `subscribe`, `commit`.
        what: &'static str,
        #[source]
        source: KafkaError,
    },
}
