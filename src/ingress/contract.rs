//! Event contracts on the request path: each matched request's event is judged once, after it is
//! canonicalized and before it is published ([`crate::contract::judge`]).
//!
//! Every judged event carries `ce_dataschema`. An invalid one is counted and sampled, and flagged
//! `ce_stranglercontract=invalid` with its first error's pointer in `ce_stranglercontracterror`.
//! With `on_invalid = "dead_letter"` it goes to the dead-letter topic instead of the route's
//! topic; the monolith still gets the request when it owns it, and a new-owned request is
//! answered by `when_new_owned`.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};

use super::error::ProxyError;
use super::proxy::Proxy;
use super::{full, Body};
use crate::contract::samples::Sample;
use crate::contract::{judge_parsed, OnInvalid, Verdict, Violation, WhenNewOwned};
use crate::event::CanonicalEvent;
use crate::route::Route;
use crate::telemetry::RouteMetrics;

/// An event that failed a `dead_letter` contract: its errors, for `dlq_error` and the 422 answer.
pub(super) struct DeadLettered(pub Vec<Violation>);

impl Proxy {
    /// Judges `event` by `route`'s contract and stamps its headers; counts and samples a
    /// violation. `Some` when the event must be dead-lettered instead of published.
    /// `parsed`: the body as JSON when canonicalizing parsed it.
    pub(super) fn judge_contract(
        &self,
        route: &Route,
        event: &mut CanonicalEvent,
        parsed: Option<&serde_json::Value>,
    ) -> Option<DeadLettered> {
        let contract = route.contract.as_deref()?;
        let ce_type = event.header("ce_type").unwrap_or_default().to_string();
        let (dataschema, type_key, errors) = match judge_parsed(Some(contract), &ce_type, &event.value, parsed) {
            Verdict::NoContract => return None,
            Verdict::Valid { dataschema } => {
                event.headers.push(("ce_dataschema".into(), dataschema.into()));
                return None;
            }
            Verdict::Invalid { dataschema, type_key, errors } => (dataschema, type_key, errors),
        };
        let first = errors.first().map(|e| e.pointer.clone()).unwrap_or_default();
        event.headers.extend([
            ("ce_dataschema".to_string(), dataschema.to_string()),
            ("ce_stranglercontract".to_string(), "invalid".to_string()),
            ("ce_stranglercontracterror".to_string(), first.clone()),
        ]);
        tracing::warn!(route = %route.name, event_id = %event.id, ce_type, dataschema, pointer = %first, errors = errors.len(), on_invalid = contract.on_invalid.as_str(), "event does not match its contract");
        let sample = Sample {
            event_id: event.id.clone(),
            ce_type,
            at: event.header("ce_time").unwrap_or_default().to_string(),
            dataschema: dataschema.to_string(),
            errors: errors.clone(),
        };
        self.metrics.contract.violated(&route.name, type_key, sample);
        (contract.on_invalid == OnInvalid::DeadLetter).then_some(DeadLettered(errors))
    }

    /// Publishes a shadow event, or dead-letters it when it failed a `dead_letter` contract.
    pub(super) async fn publish_judged(&self, route: &Route, event: CanonicalEvent, dead: Option<&DeadLettered>) {
        match dead {
            None => self.events.publish(&route.name, event).await,
            Some(dead) => self.dead_letter_contract(route, event, dead).await,
        }
    }

    /// Hands the dead letter over as a shadow event is: the sender's answer waits for librdkafka's
    /// queue or the spool (write-ahead: the disk), never for Kafka's acknowledgement.
    async fn dead_letter_contract(&self, route: &Route, event: CanonicalEvent, dead: &DeadLettered) {
        let errors = serde_json::to_string(&dead.0).unwrap_or_else(|_| "[]".into());
        self.events.dead_letter_contract(&route.name, &event, &errors).await;
    }

    /// A new-owned request whose event failed a `dead_letter` contract: dead-lettered (the first
    /// time), then `422 contract_violation` or forwarded to the monolith as a fallback.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn new_owned_invalid(
        &self,
        route: &Route,
        handles: &Arc<RouteMetrics>,
        req: Request<Bytes>,
        event: CanonicalEvent,
        peer: SocketAddr,
        first: bool,
        dead: DeadLettered,
    ) -> Result<Response<Body>, ProxyError> {
        if first {
            self.dead_letter_contract(route, event, &dead).await;
        }
        let policy = route.contract.as_deref().map_or(WhenNewOwned::Legacy, |c| c.when_new_owned);
        match policy {
            WhenNewOwned::Reject => Err(ProxyError::ContractViolation(dead.0)),
            WhenNewOwned::Legacy => {
                handles.fell_back_contract();
                self.forward(handles, &route.upstream, req.map(full), peer).await
            }
        }
    }
}
