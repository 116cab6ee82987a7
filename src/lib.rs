//! strangler: a reverse proxy for strangler-fig migrations off a legacy monolith.
//!
//! # Layout
//!
//! Modules are listed in the order a webhook travels through them (ARCHITECTURE §3, §6):
//!
//! - [`config`]: raw serde structs → pure `validate()` → [`config::Validated`]; errors name file, line and key.
//! - [`ingress`]: the hyper server and its tower stack (request id, head hygiene, timeout, body limit,
//!   metrics), the budget of buffered request bodies, and the per-request flow that ties the stages
//!   below together (the monolith's answer streamed back, its outcome captured as a bounded prefix).
//! - [`verify`]: one file per signature scheme; only a [`verify::Verified`] webhook reaches the mapper.
//! - [`contract`]: event contracts (issue 13): JSON Schemas for a verified event's data; for now the
//!   compatibility check between two versions of a schema (`strangler contract check`).
//! - [`event`]: `Verified<Webhook>` → [`event::CanonicalEvent`]: id, type, key and CloudEvents headers.
//! - [`route`]: the route table (method + canonical path per RFC 3986 §6, path templates, aliases;
//!   refusals near a route; swapped whole by a reload), the pure assignment, and each route's guard
//!   and rollout specs.
//! - [`legacy`]: the pooled client to the monolith, with header hygiene.
//! - [`publish`]: one handle per kind of caller over the Kafka producers: the event sink on the
//!   request path (a tower `Service` for shadow events, many in flight off the response path; live
//!   events; dedupe), the record sink (outcome and parity records), the supervisor (outages,
//!   recreating producers after a fatal error, replay, flush) and the admin API's health view; the
//!   spool (a bounded, checksummed on-disk log for events Kafka cannot take right now, or every
//!   event first in write-ahead mode), the dead-letter topic, topic set-up (in the background while
//!   Kafka is unreachable) and the embedded broker.
//! - [`compare`]: the comparator (outcomes consumer group, join by event id, JSON diff, parity records).
//! - [`control`]: route state (one versioned dial per route, loaded once per request), the control
//!   and audit topics, cluster-wide parity folded from the parity topic, the guard and the rollout
//!   as pure `decide()`s run by every replica, hot reload, the admin API (axum, named bearer tokens)
//!   and the operator CLI's client.
//! - [`telemetry`]: the Prometheus registry with one metrics struct per stage (every series at zero
//!   from start-up), readiness, and tracing set-up.
//! - [`demo`]: real sample programs (the sample monolith) used by tests and the demo.
//! - [`app`]: wires the stages into a running proxy with graceful shutdown.

pub mod app;
pub mod compare;
pub mod config;
pub mod consumer;
pub mod contract;
pub mod control;
pub mod demo;
pub mod event;
pub mod ingress;
pub mod legacy;
pub mod publish;
pub mod route;
pub mod telemetry;
pub mod verify;

/// The error type boxed through tower and hyper bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
