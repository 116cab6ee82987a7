//! What a service writes: a [`Handler`] that turns one [`Event`] into a [`Decision`] (the answer
//! the webhook sender gets, or would get), acting only through [`Effects`].

use std::future::Future;

use bytes::Bytes;
use serde::Serialize;

use super::effects::Effects;
use super::event::Event;

/// What the service answers (live) or would answer (shadow) to the webhook sender. Published as
/// the event's outcome and compared with the monolith's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// HTTP status.
    pub status: u16,
    /// Response body (empty for none).
    pub body: Bytes,
    /// Response content type.
    pub content_type: Option<String>,
}

impl Decision {
    /// A JSON answer (`application/json`). Fails, permanently, only if `value` cannot be
    /// serialized (e.g. a map with non-string keys), so a handler can end with it.
    pub fn json(status: u16, value: &impl Serialize) -> Result<Decision, HandlerError> {
        let body = serde_json::to_vec(value).map_err(|e| HandlerError::permanent(format!("decision body: {e}")))?;
        Ok(Decision { status, body: body.into(), content_type: Some("application/json".into()) })
    }

    /// An answer with no body.
    pub fn status(status: u16) -> Decision {
        Decision { status, body: Bytes::new(), content_type: None }
    }

    /// An answer with raw bytes and their content type.
    pub fn bytes(status: u16, body: impl Into<Bytes>, content_type: &str) -> Decision {
        Decision { status, body: body.into(), content_type: Some(content_type.to_string()) }
    }
}

/// Decides one event. Called once per attempt; retried on a retryable error. Events with the same
/// key are handled one after the other, in partition order; events with different keys may be
/// handled concurrently (one per lane, [`ConsumerConfig::lanes`](super::ConsumerConfig::lanes)),
/// so `handle` must be safe to run on several events at once.
///
/// Every side effect must go through [`Effects::perform`]: it runs only for live events. A live
/// effect can run again if a later step fails (a retry, or a crash before the offset is committed),
/// so make it idempotent by [`Event::id`].
///
/// Implement it with `async fn handle(&self, event: &Event, effects: &Effects) -> Result<..>`.
pub trait Handler: Send + Sync + 'static {
    /// Decides `event`. An error is retried with backoff unless [`HandlerError::permanent`].
    fn handle(&self, event: &Event, effects: &Effects) -> impl Future<Output = Result<Decision, HandlerError>> + Send;
}

/// A handler failure: retryable (the default; retried with backoff up to `max_attempts`) or
/// permanent (straight to the dead-letter topic). Its message becomes the `dlq_reason`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    message: String,
    permanent: bool,
}

impl HandlerError {
    /// A failure that may pass (a timeout, a busy dependency): the kit tries again.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self { message: message.into(), permanent: false }
    }

    /// A failure that retrying cannot fix (the event itself is unusable): dead-lettered at once.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { message: message.into(), permanent: true }
    }

    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A body that is not the JSON the handler expects will not become so: permanent.
impl From<serde_json::Error> for HandlerError {
    fn from(e: serde_json::Error) -> Self {
        Self::permanent(format!("body is not the expected JSON: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_and_errors() {
        let d = Decision::json(201, &serde_json::json!({"ok": true})).unwrap();
        assert_eq!((d.status, &d.body[..], d.content_type.as_deref()), (201, &br#"{"ok":true}"#[..], Some("application/json")));
        assert_eq!(Decision::status(204), Decision { status: 204, body: Bytes::new(), content_type: None });
        let bad: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
        assert!(Decision::json(200, &bad).unwrap_err().is_permanent());

        assert!(!HandlerError::retryable("busy").is_permanent());
        let e: HandlerError = serde_json::from_slice::<u32>(b"x").unwrap_err().into();
        assert!(e.is_permanent() && e.to_string().starts_with("body is not the expected JSON"));
    }
}
