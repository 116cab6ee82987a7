//! The progressive rollout as pure functions: when a split route steps its share up to the next
//! configured step, what `rollout/resume` writes, and where the rollout stands for the API.
//!
//! A rollout only ever raises the share of a route in `split`, one step at a time, and only while
//! nothing asks it to stand still: a manual dial or a guard trip pauses it (`rollout_paused`), and
//! it waits for the guard to be healthy. It never writes `cutover`: the last step, even 100 %,
//! stays a split, and deleting the monolith's endpoint remains an operator's decision.

use std::time::SystemTime;

use super::figures::Figures;
use super::state::{human, Change, DialState};
use crate::route::assign::{Mode, Share};
use crate::route::{GuardSpec, RolloutSpec};

/// The writer named in the change and the audit record.
pub const ACTOR: &str = "rollout";

/// The change that steps `route` up to its next step, if it is due now.
///
/// `at_step` are the cluster-wide figures since `dial.at` (what the current step has seen);
/// `guard_ok` is whether the route's guard is healthy ([`super::guard::health`] is `Ok`; `true`
/// when the route has no guard). Due when all hold: the mode is split, the rollout is neither
/// paused nor stopped by a trip, the guard is ok, there is a step above the share, `interval` has
/// passed since `dial.at`, and the step has seen the guard's `min_samples` shadow comparisons.
/// Without a guard there is nothing to judge samples by, so only the interval is waited for.
/// The change is conditional on `dial.version`, so of N replicas one write applies.
pub fn decide(
    route: &str,
    now: SystemTime,
    at_step: &Figures,
    guard_ok: bool,
    guard: Option<&GuardSpec>,
    spec: &RolloutSpec,
    dial: &DialState,
) -> Option<Change> {
    if dial.mode != Mode::Split || dial.rollout_paused || dial.guard_tripped || !guard_ok {
        return None;
    }
    let next = next_index(spec, dial.share)?;
    // A clock behind `dial.at` (another replica's clock wrote it) waits rather than steps.
    let waited = now.duration_since(dial.at).ok()?;
    if waited < spec.interval || at_step.samples() < guard.map_or(0, |g| g.min_samples) {
        return None;
    }
    let to = spec.steps[next];
    let parity = at_step.parity_ratio().map(|p| format!(", parity {p:.3}")).unwrap_or_default();
    let reason = format!(
        "rollout: step {}/{}, {}% → {}% after {} ({} samples{parity})",
        next + 1,
        spec.steps.len(),
        dial.share.percent(),
        to.percent(),
        human(spec.interval),
        at_step.samples(),
    );
    Some(Change {
        route: route.to_string(),
        mode: Mode::Split,
        share: to,
        by: ACTOR.to_string(),
        reason,
        expected_version: Some(dial.version),
        rollout_paused: false,
        guard_tripped: false,
    })
}

/// What `POST /api/routes/{name}/rollout/resume` writes: the pause and the trip cleared.
///
/// After a guard rollback (shadow) or from passthrough the route restarts the rollout in split at
/// the first step; a split keeps its share and steps on from there; a cutover stays as it is
/// (resume then only clears the trip). Unconditional: an operator's resume wins.
pub fn resume(route: &str, by: &str, reason: &str, spec: &RolloutSpec, dial: &DialState) -> Change {
    let (mode, share) = match dial.mode {
        Mode::Passthrough | Mode::Shadow => (Mode::Split, spec.steps.first().copied().unwrap_or(Share::ZERO)),
        Mode::Split | Mode::Cutover => (dial.mode, dial.share),
    };
    Change {
        route: route.to_string(),
        mode,
        share,
        by: by.to_string(),
        reason: reason.to_string(),
        expected_version: None,
        rollout_paused: false,
        guard_tripped: false,
    }
}

/// Where the rollout stands: the index of the highest step at or below the share in effect
/// (`None` below the first step), and the first step above it (`None` past the last).
pub fn position(spec: &RolloutSpec, dial: &DialState) -> (Option<usize>, Option<Share>) {
    let share = dial.effective_share();
    let current = spec.steps.iter().rposition(|&s| s <= share);
    (current, next_index(spec, share).map(|i| spec.steps[i]))
}

/// The earliest time the next step may be taken: `dial.at + interval`, or `None` when the
/// rollout will not step (not split, paused, tripped, or past the last step). Samples and the
/// guard may hold it back further.
pub fn next_at(spec: &RolloutSpec, dial: &DialState) -> Option<SystemTime> {
    if dial.mode != Mode::Split || dial.rollout_paused || dial.guard_tripped {
        return None;
    }
    next_index(spec, dial.share)?;
    dial.at.checked_add(spec.interval)
}

/// Index of the first step above `share` (steps are strictly rising).
fn next_index(spec: &RolloutSpec, share: Share) -> Option<usize> {
    spec.steps.iter().position(|&s| s > share)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::route::GuardAction;

    const MIN: Duration = Duration::from_secs(60);

    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn spec() -> RolloutSpec {
        RolloutSpec { steps: [1.0, 5.0, 25.0, 50.0, 100.0].map(|p| Share::from_percent(p).unwrap()).to_vec(), interval: 10 * MIN }
    }

    fn guard() -> GuardSpec {
        GuardSpec { min_parity: 0.99, min_samples: 200, window: 5 * MIN, max_new_error_rate: 0.01, action: GuardAction::Rollback }
    }

    fn dial(mode: Mode, percent: f64) -> DialState {
        DialState {
            mode,
            share: Share::from_percent(percent).unwrap(),
            version: 41,
            by: "alice".into(),
            reason: "dial".into(),
            at: at(),
            rollout_paused: false,
            guard_tripped: false,
        }
    }

    fn paused(mut d: DialState) -> DialState {
        d.rollout_paused = true;
        d
    }

    fn tripped(mut d: DialState) -> DialState {
        d.guard_tripped = true;
        d
    }

    fn samples(matched: u64, mismatched: u64) -> Figures {
        Figures { matched, mismatched, ..Figures::default() }
    }

    fn step(percent: f64, reason: &str) -> Option<Change> {
        Some(Change {
            route: "stripe".into(),
            mode: Mode::Split,
            share: Share::from_percent(percent).unwrap(),
            by: "rollout".into(),
            reason: reason.into(),
            expected_version: Some(41),
            rollout_paused: false,
            guard_tripped: false,
        })
    }

    #[test]
    fn steps_up_only_when_every_condition_holds() {
        use Mode::{Cutover, Shadow, Split};
        let g = guard();
        let from_1 = "rollout: step 2/5, 1% → 5% after 10m (500 samples, parity 0.998)";
        #[rustfmt::skip]
        let cases = [
            ("due", 10 * MIN, samples(499, 1), true, Some(&g), dial(Split, 1.0), step(5.0, from_1)),
            ("waits for the interval", 10 * MIN - Duration::from_secs(1), samples(499, 1), true, Some(&g), dial(Split, 1.0), None),
            ("waits for samples", 11 * MIN, samples(199, 0), true, Some(&g), dial(Split, 1.0), None),
            ("exactly min_samples", 11 * MIN, samples(200, 0), true, Some(&g), dial(Split, 5.0),
                step(25.0, "rollout: step 3/5, 5% → 25% after 10m (200 samples, parity 1.000)")),
            ("waits for the guard", 60 * MIN, samples(499, 1), false, Some(&g), dial(Split, 1.0), None),
            ("no guard: the interval alone", 10 * MIN, samples(0, 0), true, None, dial(Split, 50.0),
                step(100.0, "rollout: step 5/5, 50% → 100% after 10m (0 samples)")),
            ("between steps: to the next one above", 10 * MIN, samples(300, 0), true, Some(&g), dial(Split, 12.5),
                step(25.0, "rollout: step 3/5, 12.5% → 25% after 10m (300 samples, parity 1.000)")),
            ("split at 0: to the first step", 10 * MIN, samples(300, 0), true, Some(&g), dial(Split, 0.0),
                step(1.0, "rollout: step 1/5, 0% → 1% after 10m (300 samples, parity 1.000)")),
            ("no step past the last", 60 * MIN, samples(999, 0), true, Some(&g), dial(Split, 100.0), None),
            ("paused", 60 * MIN, samples(999, 0), true, Some(&g), paused(dial(Split, 1.0)), None),
            ("tripped", 60 * MIN, samples(999, 0), true, Some(&g), tripped(dial(Split, 1.0)), None),
            ("shadow never steps", 60 * MIN, samples(999, 0), true, Some(&g), dial(Shadow, 0.0), None),
            ("cutover never steps", 60 * MIN, samples(999, 0), true, Some(&g), dial(Cutover, 100.0), None),
        ];
        for (name, waited, f, guard_ok, g, d, want) in cases {
            assert_eq!(decide("stripe", at() + waited, &f, guard_ok, g, &spec(), &d), want, "{name}");
        }
        let behind = at() - MIN;
        assert_eq!(decide("stripe", behind, &samples(999, 0), true, None, &spec(), &dial(Split, 1.0)), None, "clock behind");
    }

    #[test]
    fn resume_clears_the_pause_and_restarts_after_a_rollback() {
        use Mode::{Cutover, Passthrough, Shadow, Split};
        #[rustfmt::skip]
        let cases = [
            ("after a guard rollback", tripped(paused(dial(Shadow, 0.0))), Split, 1.0),
            ("from passthrough", dial(Passthrough, 0.0), Split, 1.0),
            ("paused split keeps its share", paused(dial(Split, 25.0)), Split, 25.0),
            ("held split keeps its share", tripped(paused(dial(Split, 5.0))), Split, 5.0),
            ("cutover stays", tripped(paused(dial(Cutover, 100.0))), Cutover, 100.0),
        ];
        for (name, d, mode, percent) in cases {
            let want = Change {
                route: "stripe".into(),
                mode,
                share: Share::from_percent(percent).unwrap(),
                by: "alice".into(),
                reason: "parity fixed".into(),
                expected_version: None,
                rollout_paused: false,
                guard_tripped: false,
            };
            assert_eq!(resume("stripe", "alice", "parity fixed", &spec(), &d), want, "{name}");
        }
    }

    #[test]
    fn position_and_next_at_for_the_api() {
        use Mode::{Cutover, Shadow, Split};
        let share = |p: f64| Share::from_percent(p).ok();
        let due = Some(at() + 10 * MIN);
        #[rustfmt::skip]
        let cases = [
            (dial(Split, 0.0), (None, share(1.0)), due),
            (dial(Split, 1.0), (Some(0), share(5.0)), due),
            (dial(Split, 12.5), (Some(1), share(25.0)), due),
            (dial(Split, 100.0), (Some(4), None), None),
            (paused(dial(Split, 5.0)), (Some(1), share(25.0)), None),
            (tripped(paused(dial(Shadow, 0.0))), (None, share(1.0)), None),
            (dial(Cutover, 0.0), (Some(4), None), None),
        ];
        for (d, want_position, want_next_at) in cases {
            assert_eq!(position(&spec(), &d), want_position, "{:?} {:?}", d.mode, d.share);
            assert_eq!(next_at(&spec(), &d), want_next_at, "{:?} {:?}", d.mode, d.share);
        }
    }
}
