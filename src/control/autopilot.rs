//! The guard and the rollout at work: every replica evaluates every route once a second from the
//! cluster-wide figures and writes what [`guard::decide`] or [`rollout::decide`] asks for. The
//! writes carry `expected_version`, so however many replicas decide the same thing at once,
//! exactly one change applies; the others get a conflict and let it be.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::guard::{self, GuardHealth};
use super::parity::ClusterParity;
use super::rollout;
use super::topic::{Control, SubmitError};
use crate::route::{Route, Routes};

/// How often every route is evaluated.
pub const TICK: Duration = Duration::from_secs(1);

/// Runs the guards and rollouts until `shutdown`.
pub async fn run(routes: Routes, control: Arc<Control>, parity: Arc<ClusterParity>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        if !control.caught_up() || !parity.caught_up() {
            continue;
        }
        let table = routes.load_full();
        for route in table.iter().filter(|r| r.guard.is_some() || r.rollout.is_some()) {
            evaluate(route, &control, &parity, SystemTime::now()).await;
        }
    }
}

async fn evaluate(route: &Route, control: &Control, parity: &ClusterParity, now: SystemTime) {
    let dial = control.in_force(&route.name);
    let mut guard_ok = true;
    if let Some(g) = &route.guard {
        // The guard judges only what happened since the dial last changed.
        let since = now.checked_sub(g.window).map_or(dial.at, |start| start.max(dial.at));
        let figures = parity.figures(&route.name, since);
        if let Some(change) = guard::decide(&route.name, &figures, g, &dial) {
            tracing::warn!(route = %route.name, reason = %change.reason, "guard tripped");
            write(control, change).await;
            return;
        }
        guard_ok = guard::health(&figures, g, &dial) == GuardHealth::Ok;
    }
    if let Some(spec) = &route.rollout {
        let at_step = parity.figures(&route.name, dial.at);
        if let Some(change) = rollout::decide(&route.name, now, &at_step, guard_ok, route.guard.as_ref(), spec, &dial) {
            tracing::info!(route = %route.name, reason = %change.reason, "rollout step");
            write(control, change).await;
        }
    }
}

async fn write(control: &Control, change: super::state::Change) {
    match control.submit(change).await {
        Ok(_) => {}
        // Another replica made the same decision first.
        Err(SubmitError::Conflict { in_force }) => tracing::debug!(in_force, "decision already taken by another replica"),
        Err(e) => tracing::warn!(error = %e, "guard/rollout change not written"),
    }
}
