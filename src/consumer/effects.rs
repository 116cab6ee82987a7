//! The shadow guarantee: side effects run through [`Effects::perform`], which runs them for `live`
//! events only and skips (and counts) them for `shadow` events.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::compare::outcome::EventMode;

use super::event::Event;

/// The gate for one event's side effects, handed to [`Handler::handle`](super::Handler::handle).
///
/// A shadow event is one the monolith already handled: the service must only *decide*, and cause
/// nothing (no writes, emails, calls that change anything). A handler must route **every** side
/// effect through [`Effects::perform`]; then the same code is a dry run in shadow and the real
/// thing in live, and the shadow guarantee does not depend on each handler remembering to check
/// the mode. Reads that change nothing may be done directly.
#[derive(Debug)]
pub struct Effects {
    mode: EventMode,
    event_id: String,
    performed: AtomicU64,
    skipped: AtomicU64,
}

impl Effects {
    /// The gate for `event` (the kit builds one per handler attempt).
    pub fn for_event(event: &Event) -> Self {
        Self::new(event.mode, &event.id)
    }

    /// A gate for an event in `mode`; useful to unit-test a handler.
    pub fn new(mode: EventMode, event_id: &str) -> Self {
        Self { mode, event_id: event_id.to_string(), performed: AtomicU64::new(0), skipped: AtomicU64::new(0) }
    }

    /// True when this event's side effects are real (`ce_stranglermode: live`).
    pub fn is_live(&self) -> bool {
        self.mode == EventMode::Live
    }

    /// The event's mode.
    pub fn mode(&self) -> EventMode {
        self.mode
    }

    /// Runs the side effect `f` (described by `what`, for logs) and returns its result for a live
    /// event. For a shadow event, `f` is not called: the skip is logged at debug and counted, and
    /// the result is `None`, so the handler decides the same way without acting.
    pub async fn perform<F, Fut, T>(&self, what: &str, f: F) -> Option<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        if self.is_live() {
            self.performed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(event_id = %self.event_id, what, "live: performing side effect");
            Some(f().await)
        } else {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(event_id = %self.event_id, what, "shadow: side effect skipped");
            None
        }
    }

    /// How many side effects were skipped (shadow).
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// How many side effects were performed (live).
    pub fn performed(&self) -> u64 {
        self.performed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    #[tokio::test]
    async fn shadow_skips_and_live_performs() {
        let ran = AtomicBool::new(false);
        let shadow = Effects::new(EventMode::Shadow, "e1");
        assert_eq!(shadow.perform("send email", || async { ran.store(true, Ordering::SeqCst) }).await, None);
        assert!(!ran.load(Ordering::SeqCst));
        assert_eq!((shadow.is_live(), shadow.skipped(), shadow.performed()), (false, 1, 0));

        let live = Effects::new(EventMode::Live, "e2");
        assert_eq!(live.perform("charge", || async { 42 }).await, Some(42));
        assert_eq!((live.is_live(), live.skipped(), live.performed()), (true, 0, 1));
    }
}
