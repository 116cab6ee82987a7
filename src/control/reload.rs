//! Hot reload (SIGHUP or `POST /api/reload`): load and validate the file; if it is invalid keep
//! serving the old configuration; if it is valid swap routes, secrets, comparison rules, guards,
//! rollouts and admin tokens at once, without touching a request in flight or a route's dial.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use serde::Serialize;

use super::api::Access;
use super::audit::AuditEntry;
use super::state::DialState;
use super::topic::Control;
use crate::config::Validated;
use crate::publish::topics::{Maker, TopicSpec};
use crate::route::{RouteTable, Routes};
use crate::telemetry::Metrics;

/// Every `result` of `strangler_config_reloads_total`.
pub const RELOAD_RESULTS: [&str; 2] = [RELOAD_OK, RELOAD_ERROR];
const RELOAD_OK: &str = "ok";
const RELOAD_ERROR: &str = "error";

/// What a successful reload did.
#[derive(Debug, Serialize)]
pub struct Report {
    pub routes: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Keys that changed in the file but only take effect after a restart.
    pub restart_needed: Vec<&'static str>,
}

/// Reloads one file into the running process.
pub struct Reloader {
    pub path: PathBuf,
    pub routes: Routes,
    pub control: Arc<Control>,
    pub access: Arc<ArcSwap<Access>>,
    pub metrics: Metrics,
    pub topics: Maker,
    pub partitions: i32,
    /// The settings a reload cannot change, as started, to report what needs a restart.
    pub fixed: Fixed,
    /// One reload at a time.
    pub lock: tokio::sync::Mutex<()>,
}

/// Settings read once at start-up.
#[derive(Debug, PartialEq)]
pub struct Fixed {
    parts: Vec<(&'static str, String)>,
}

impl Fixed {
    pub fn of(cfg: &Validated) -> Self {
        let mut kafka = cfg.kafka.clone();
        kafka.librdkafka.clear();
        Self {
            parts: vec![
                ("server", format!("{:?}", cfg.server)),
                ("admin.listen", cfg.admin.listen.to_string()),
                ("legacy", format!("{:?}", cfg.legacy)),
                ("kafka", format!("{kafka:?}")),
                ("kafka.librdkafka", format!("{:?}", cfg.kafka.librdkafka)),
                ("spool", format!("{:?}", cfg.spool)),
                ("dedupe", format!("{:?}", cfg.dedupe)),
                ("comparator", format!("{:?}", cfg.comparator)),
                ("lag", format!("{:?}", cfg.lag)),
            ],
        }
    }

    fn differences(&self, other: &Fixed) -> Vec<&'static str> {
        self.parts.iter().zip(&other.parts).filter(|(a, b)| a.1 != b.1).map(|(a, _)| a.0).collect()
    }
}

impl Reloader {
    /// Loads the file and, if it is valid, puts it in force. The error is the loader's message
    /// (file, line, key).
    pub async fn reload(&self) -> Result<Report, String> {
        let _one = self.lock.lock().await;
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || crate::config::load(&path)).await;
        let cfg = match loaded {
            Ok(Ok(cfg)) => cfg,
            Ok(Err(e)) => return Err(self.failed(e.to_string())),
            Err(e) => return Err(self.failed(format!("{}: the loader failed: {e}", self.path.display()))),
        };
        let restart_needed = self.fixed.differences(&Fixed::of(&cfg));
        let old = self.routes.load_full();
        let added: Vec<String> = cfg.routes.iter().filter(|r| old.get(&r.name).is_none()).map(|r| r.name.clone()).collect();
        let removed: Vec<String> =
            old.iter().filter(|r| !cfg.routes.iter().any(|n| n.name == r.name)).map(|r| r.name.clone()).collect();
        let wanted: Vec<TopicSpec> =
            cfg.routes.iter().filter(|r| added.contains(&r.name)).map(|r| TopicSpec::plain(&r.topic, self.partitions)).collect();
        if let Err(e) = self.topics.ensure(&wanted).await {
            return Err(self.failed(format!("{}: creating the new routes' topics: {e:#}", self.path.display())));
        }
        // A route with a control record keeps its dial; the file only gives the state of the others.
        let mut initial_changes = Vec::new();
        for r in &cfg.routes {
            if self.control.has_record(&r.name) {
                continue;
            }
            let before = self.control.dials.get(&r.name).map(|d| DialState::clone(&d));
            let mut state = DialState::initial(r.initial.0, r.initial.1);
            if before.as_ref().is_some_and(|b| (b.mode, b.share) == (state.mode, state.share)) {
                continue;
            }
            state.by = "reload".into();
            state.reason = if before.is_some() { "initial state changed in the file" } else { "route added by reload" }.into();
            state.at = SystemTime::now();
            self.control.dials.set(&r.name, state.clone());
            initial_changes.push((r.name.clone(), before, state));
        }
        let names = cfg.routes.iter().map(|r| r.name.clone()).collect();
        self.routes.store(Arc::new(RouteTable::new(cfg.routes.into_iter().map(Arc::new).collect())));
        // Added routes' series exist at zero from now on, like those of the routes started with.
        self.metrics.init_routes(&self.routes.load());
        self.access
            .store(Arc::new(Access { tokens: cfg.admin.tokens.clone(), read_requires_token: cfg.admin.read_requires_token }));
        for (route, before, state) in initial_changes {
            let entry = AuditEntry {
                route: route.clone(),
                by: state.by.clone(),
                reason: state.reason.clone(),
                at: state.at,
                old: before.as_ref().map(Into::into),
                new: (&state).into(),
                guard_tripped: false,
                rollout_paused: false,
            };
            self.control.audit.write(entry).await;
        }
        self.metrics.control.reloads.with_label_values(&[RELOAD_OK]).inc();
        if !restart_needed.is_empty() {
            tracing::warn!(?restart_needed, "configuration reloaded; these sections changed and need a restart");
        }
        tracing::info!(file = %self.path.display(), ?added, ?removed, "configuration reloaded");
        Ok(Report { routes: names, added, removed, restart_needed })
    }

    fn failed(&self, error: String) -> String {
        self.metrics.control.reloads.with_label_values(&[RELOAD_ERROR]).inc();
        tracing::error!(error = %error, "configuration reload refused; the previous configuration stays in force");
        error
    }
}
