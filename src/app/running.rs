//! What a started process can be asked to do: dial a route, reload its file, stop cleanly.

use super::Running;
use crate::control::state::DialState;
use crate::route::assign::{Mode, Share};

impl Running {
    /// Dials a route through the control topic, as `by`, and returns the state in force after.
    pub async fn dial(
        &self,
        route: &str,
        mode: Mode,
        share: Share,
        by: &str,
        reason: &str,
    ) -> Result<DialState, crate::control::topic::SubmitError> {
        let change = crate::control::state::Change {
            route: route.to_string(),
            mode,
            share,
            by: by.to_string(),
            reason: reason.to_string(),
            expected_version: None,
            rollout_paused: true,
            guard_tripped: false,
        };
        self.control.submit(change).await
    }

    /// Reloads the configuration file (what SIGHUP does). `Err` carries the file's error.
    pub async fn reload(&self) -> Result<crate::control::reload::Report, String> {
        match &self.reloader {
            Some(r) => r.reload().await,
            None => Err("this process was not started from a file".into()),
        }
    }

    /// Fails the shadow producer as a fatal librdkafka error would. Fault-injection tests only.
    #[doc(hidden)]
    pub fn inject_fatal_error(&self) {
        self.publishing.inject_fatal_error();
    }

    /// Stops accepting, lets in-flight requests finish (bounded by `server.shutdown_grace_ms`),
    /// then flushes the producers (bounded by `kafka.flush_timeout_ms`).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Some(public) = self.public {
            let _ = public.await;
        }
        let left = self.publishing.flush(self.flush_timeout).await;
        if left > 0 {
            tracing::error!(unflushed = left, "events still queued for Kafka at exit");
        }
        for task in self.background {
            let _ = task.await;
        }
        tracing::info!("strangler stopped");
    }
}
