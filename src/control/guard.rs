//! The guard as a pure decision: from a route's cluster-wide figures and its dial, whether to dial
//! back by itself and what to write. No I/O: the caller gathers the figures and writes the change.
//!
//! The guard trips on either side, over the figures of the last `window` but never before the
//! dial's last change (`dial.at`), so a change is judged only on traffic it shaped:
//!
//! - **parity**: at least `min_samples` shadow comparisons and `matched / samples < min_parity`;
//! - **new-path errors**: at least one live event and `failed / max(live, min_samples) >
//!   max_new_error_rate`, where failed = status ≥ 500 or no outcome in time. From `min_samples`
//!   live events on this is the plain error rate. Below that, the live events not yet seen count
//!   as successes: the guard trips only once the failures already seen would keep the rate above
//!   the limit whatever the rest of `min_samples` do (with the defaults, the 3rd failure). A broken
//!   new path at a 1 % share is caught without waiting for 200 live events, and one unlucky
//!   failure early on does not trip it.
//!
//! Exactly at a threshold is healthy. Each trip writes one change, conditional on the dial's
//! version, so however many replicas run the guard only one write applies; a tripped dial is left
//! alone until an operator clears it (a dial, or `rollout/resume`).

use serde::Serialize;

use super::figures::Figures;
use super::state::{human, Change, DialState};
use crate::route::assign::{Mode, Share};
use crate::route::{GuardAction, GuardSpec};

/// The writer named in the change and the audit record.
pub const ACTOR: &str = "guard";

/// Most decimals a figure in a reason is printed with.
const MAX_DECIMALS: usize = 6;

/// What the guard sees, as the API and the page show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardHealth {
    /// Enough figures on at least one side, and neither side trips.
    Ok,
    /// The dial is marked tripped, or the figures would trip the guard now.
    Tripped,
    /// The new path owns traffic but neither side has `min_samples` figures yet.
    InsufficientSamples,
    /// Passthrough or shadow: the new path owns nothing, there is nothing to protect.
    Idle,
}

impl GuardHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            GuardHealth::Ok => "ok",
            GuardHealth::Tripped => "tripped",
            GuardHealth::InsufficientSamples => "insufficient_samples",
            GuardHealth::Idle => "idle",
        }
    }
}

/// The change the guard writes for `route`, if it trips now.
///
/// `figures` are the cluster-wide counts (from the parity topic) over the last `guard.window`,
/// but never before `dial.at`: the caller computes that span. `None` when the new path owns
/// nothing (passthrough, shadow), when the dial is already tripped (one change per trip), or when
/// the figures are healthy. The change is conditional on `dial.version`.
pub fn decide(route: &str, figures: &Figures, guard: &GuardSpec, dial: &DialState) -> Option<Change> {
    if dial.guard_tripped || !protects(dial.mode) {
        return None;
    }
    let reason = verdict(figures, guard)?;
    let (mode, share) = match guard.action {
        GuardAction::Rollback => (Mode::Shadow, Share::ZERO),
        GuardAction::Hold => (dial.mode, dial.share),
    };
    Some(Change {
        route: route.to_string(),
        mode,
        share,
        by: ACTOR.to_string(),
        reason,
        expected_version: Some(dial.version),
        rollout_paused: true,
        guard_tripped: true,
    })
}

/// The guard's state over the same figures as [`decide`], for the API.
pub fn health(figures: &Figures, guard: &GuardSpec, dial: &DialState) -> GuardHealth {
    if dial.guard_tripped {
        GuardHealth::Tripped
    } else if !protects(dial.mode) {
        GuardHealth::Idle
    } else if verdict(figures, guard).is_some() {
        GuardHealth::Tripped
    } else if figures.samples() >= guard.min_samples || figures.live() >= guard.min_samples {
        GuardHealth::Ok
    } else {
        GuardHealth::InsufficientSamples
    }
}

/// Split and cutover hand traffic to the new path; the other modes leave it all to the monolith.
fn protects(mode: Mode) -> bool {
    matches!(mode, Mode::Split | Mode::Cutover)
}

/// The reason to trip, naming every side that trips, or `None` when healthy.
fn verdict(f: &Figures, g: &GuardSpec) -> Option<String> {
    let window = human(g.window);
    let mut why = Vec::new();
    if let Some(parity) = f.parity_ratio().filter(|p| f.samples() >= g.min_samples && *p < g.min_parity) {
        let (seen, limit) = pair(parity, g.min_parity, 2, true);
        why.push(format!("parity {seen} < {limit} over {window} ({} samples)", f.samples()));
    }
    let failed = f.live_error + f.live_missing;
    if let Some(rate) = f.new_error_rate().filter(|_| failed as f64 / f.live().max(g.min_samples) as f64 > g.max_new_error_rate) {
        let (seen, limit) = pair(rate, g.max_new_error_rate, 3, false);
        why.push(format!("new-path error rate {seen} > {limit} over {window} ({} live events)", f.live()));
    }
    (!why.is_empty()).then(|| format!("guard: {}", why.join("; ")))
}

/// `value` and `threshold` printed with the same decimals: `base` (2 for parity, 3 for error
/// rates), more when the threshold needs them to print exactly (`0.995`) or when fewer would hide
/// which side of it `value` is on (`0.9899 < 0.9900`, never `0.99 < 0.99`), up to 6.
fn pair(value: f64, threshold: f64, base: usize, below: bool) -> (String, String) {
    let text = |x: f64, d: usize| format!("{x:.d$}");
    let back = |x: f64, d: usize| text(x, d).parse::<f64>().unwrap_or(x);
    let shows = |d: usize| {
        let (v, t) = (back(value, d), back(threshold, d));
        t == threshold && if below { v < t } else { v > t }
    };
    let d = (base..=MAX_DECIMALS).find(|&d| shows(d)).unwrap_or(MAX_DECIMALS);
    (text(value, d), text(threshold, d))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn spec(action: GuardAction) -> GuardSpec {
        GuardSpec { min_parity: 0.99, min_samples: 200, window: Duration::from_secs(300), max_new_error_rate: 0.01, action }
    }

    fn dial(mode: Mode, percent: f64, tripped: bool) -> DialState {
        DialState {
            mode,
            share: Share::from_percent(percent).unwrap(),
            version: 7,
            by: "alice".into(),
            reason: "dial".into(),
            at: SystemTime::UNIX_EPOCH,
            rollout_paused: false,
            guard_tripped: tripped,
        }
    }

    /// Shadow comparisons (matched, mismatched) and live events (ok, error, missing).
    fn figures(matched: u64, mismatched: u64, live_ok: u64, live_error: u64, live_missing: u64) -> Figures {
        Figures { matched, mismatched, live_ok, live_error, live_missing, ..Figures::default() }
    }

    fn change(mode: Mode, percent: f64, reason: &str) -> Change {
        Change {
            route: "stripe".into(),
            mode,
            share: Share::from_percent(percent).unwrap(),
            by: "guard".into(),
            reason: reason.into(),
            expected_version: Some(7),
            rollout_paused: true,
            guard_tripped: true,
        }
    }

    #[test]
    fn trips_on_either_side_only_past_its_threshold() {
        use GuardAction::{Hold, Rollback};
        use Mode::{Cutover, Passthrough, Shadow, Split};
        let low_parity = "guard: parity 0.93 < 0.99 over 5m (412 samples)";
        let errors = "guard: new-path error rate 0.050 > 0.010 over 5m (200 live events)";
        #[rustfmt::skip]
        let cases: Vec<(&str, Figures, GuardAction, DialState, Option<Change>)> = vec![
            ("below min_samples never trips", figures(0, 199, 0, 0, 0), Rollback, dial(Split, 25.0, false), None),
            ("parity exactly at min_parity", figures(198, 2, 0, 0, 0), Rollback, dial(Split, 25.0, false), None),
            ("parity below, exactly min_samples", figures(197, 3, 0, 0, 0), Rollback, dial(Split, 25.0, false),
                Some(change(Shadow, 0.0, "guard: parity 0.98 < 0.99 over 5m (200 samples)"))),
            ("rollback", figures(383, 29, 0, 0, 0), Rollback, dial(Split, 25.0, false), Some(change(Shadow, 0.0, low_parity))),
            ("hold keeps mode and share", figures(383, 29, 0, 0, 0), Hold, dial(Split, 25.0, false), Some(change(Split, 25.0, low_parity))),
            ("rollback from cutover", figures(383, 29, 0, 0, 0), Rollback, dial(Cutover, 100.0, false), Some(change(Shadow, 0.0, low_parity))),
            ("hold in cutover", figures(383, 29, 0, 0, 0), Hold, dial(Cutover, 100.0, false), Some(change(Cutover, 100.0, low_parity))),
            ("shadow: nothing to protect", figures(0, 500, 0, 0, 0), Rollback, dial(Shadow, 0.0, false), None),
            ("passthrough: nothing to protect", figures(0, 500, 0, 500, 0), Rollback, dial(Passthrough, 0.0, false), None),
            ("already tripped: one change per trip", figures(0, 500, 0, 500, 0), Hold, dial(Split, 25.0, true), None),
            ("error rate", figures(0, 0, 190, 6, 4), Rollback, dial(Split, 25.0, false), Some(change(Shadow, 0.0, errors))),
            ("error rate exactly at the limit", figures(0, 0, 198, 1, 1), Rollback, dial(Split, 25.0, false), None),
            ("two failures of two: could still end at 1 %", figures(0, 0, 0, 2, 0), Rollback, dial(Split, 1.0, false), None),
            ("three failures of three: above 1 % whatever comes", figures(0, 0, 0, 2, 1), Rollback, dial(Split, 1.0, false),
                Some(change(Shadow, 0.0, "guard: new-path error rate 1.000 > 0.010 over 5m (3 live events)"))),
            ("both sides", figures(383, 29, 190, 6, 4), Hold, dial(Split, 5.0, false),
                Some(change(Split, 5.0, "guard: parity 0.93 < 0.99 over 5m (412 samples); new-path error rate 0.050 > 0.010 over 5m (200 live events)"))),
        ];
        for (name, f, action, d, want) in cases {
            assert_eq!(decide("stripe", &f, &spec(action), &d), want, "{name}");
        }
    }

    #[test]
    fn reasons_print_as_many_decimals_as_the_comparison_needs() {
        let mut g = spec(GuardAction::Rollback);
        let d = dial(Mode::Split, 10.0, false);
        let reason = |f: Figures, g: &GuardSpec| decide("stripe", &f, g, &d).map(|c| c.reason);
        let cases = [
            (figures(9_899, 101, 0, 0, 0), 0.99, "parity 0.9899 < 0.9900 over 5m (10000 samples)"),
            (figures(990, 10, 0, 0, 0), 0.995, "parity 0.990 < 0.995 over 5m (1000 samples)"),
            (figures(100, 100, 0, 0, 0), 0.995, "parity 0.500 < 0.995 over 5m (200 samples)"),
        ];
        for (f, min_parity, want) in cases {
            g.min_parity = min_parity;
            assert_eq!(reason(f, &g), Some(format!("guard: {want}")));
        }
        g.min_parity = 0.0;
        g.max_new_error_rate = 0.0125;
        let want = "guard: new-path error rate 0.0150 > 0.0125 over 5m (200 live events)";
        assert_eq!(reason(figures(0, 0, 197, 3, 0), &g).as_deref(), Some(want));
    }

    #[test]
    fn health_says_why_the_guard_is_quiet() {
        use GuardHealth::*;
        let g = spec(GuardAction::Rollback);
        #[rustfmt::skip]
        let cases = [
            (figures(200, 0, 0, 0, 0), dial(Mode::Split, 5.0, false), Ok),
            (figures(0, 0, 200, 0, 0), dial(Mode::Cutover, 100.0, false), Ok),
            (figures(150, 0, 49, 0, 0), dial(Mode::Split, 5.0, false), InsufficientSamples),
            (figures(0, 300, 0, 0, 0), dial(Mode::Split, 5.0, false), Tripped),
            (figures(0, 0, 0, 0, 3), dial(Mode::Split, 5.0, false), Tripped),
            (figures(200, 0, 0, 0, 0), dial(Mode::Shadow, 0.0, true), Tripped),
            (figures(0, 300, 0, 0, 0), dial(Mode::Shadow, 0.0, false), Idle),
            (figures(0, 0, 0, 0, 0), dial(Mode::Passthrough, 0.0, false), Idle),
        ];
        for (f, d, want) in cases {
            assert_eq!(health(&f, &g, &d), want, "{f:?} {:?} tripped={}", d.mode, d.guard_tripped);
        }
        let names = [Ok, Tripped, InsufficientSamples, Idle].map(GuardHealth::as_str);
        assert_eq!(names, ["ok", "tripped", "insufficient_samples", "idle"]);
    }
}
