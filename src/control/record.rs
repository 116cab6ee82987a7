//! The control topic's record and how every replica folds it into route state: a pure function
//! of the state in force and the record, so all replicas reading the same log end on the same
//! state and version.
//!
//! A `change` is an absolute state (mode, share, flags). It applies unless it carries an
//! `expected_version` that is not the version in force, and the state it sets takes the record's
//! offset + 1 as its version: the same number on every replica, and stable under compaction.
//!
//! Compaction keeps only the last record of a key, so the last record of a route must always
//! describe the state in force. A skipped change breaks that, so its writer follows it with a
//! `restate` of the state in force (with its explicit version), and a replica that finds a route's
//! history cut short by compaction marks the state it adopted `provisional` until a restate or
//! an unconditional change confirms it.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::state::{Change, DialState};
use crate::route::assign::{Mode, Share};

/// What a control record does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A wanted state, applied unless its `expected_version` is stale.
    Change,
    /// The state in force, restated after a skipped change so the topic's last record is true.
    Restate,
}

/// One record of the control topic (key = route name, value = this as JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlRecord {
    pub kind: Kind,
    pub route: String,
    pub mode: Mode,
    #[serde(with = "super::state::share_percent")]
    pub share_percent: Share,
    pub by: String,
    pub reason: String,
    #[serde(with = "super::state::rfc3339")]
    pub at: SystemTime,
    #[serde(default)]
    pub rollout_paused: bool,
    #[serde(default)]
    pub guard_tripped: bool,
    /// `change` only: apply only if this is the version in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    /// `restate` only: the version of the state restated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Matches the read-back to the call that wrote it.
    pub request_id: String,
    /// The replica that wrote it.
    pub writer: String,
}

impl ControlRecord {
    /// The record asking for `change`.
    pub fn change(change: &Change, at: SystemTime, request_id: String, writer: String) -> Self {
        Self {
            kind: Kind::Change,
            route: change.route.clone(),
            mode: change.mode,
            share_percent: change.share,
            by: change.by.clone(),
            reason: change.reason.clone(),
            at,
            rollout_paused: change.rollout_paused,
            guard_tripped: change.guard_tripped,
            expected_version: change.expected_version,
            version: None,
            request_id,
            writer,
        }
    }

    /// The record restating `state` of `route`.
    pub fn restate(route: &str, state: &DialState, request_id: String, writer: String) -> Self {
        Self {
            kind: Kind::Restate,
            route: route.to_string(),
            mode: state.mode,
            share_percent: state.share,
            by: state.by.clone(),
            reason: state.reason.clone(),
            at: state.at,
            rollout_paused: state.rollout_paused,
            guard_tripped: state.guard_tripped,
            expected_version: None,
            version: Some(state.version),
            request_id,
            writer,
        }
    }

    fn state(&self, version: u64) -> DialState {
        DialState {
            mode: self.mode,
            share: self.share_percent,
            version,
            by: self.by.clone(),
            reason: self.reason.clone(),
            at: self.at,
            rollout_paused: self.rollout_paused,
            guard_tripped: self.guard_tripped,
        }
    }
}

/// Where a route's state came from, as far as this replica has read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    /// No record read yet: the configuration's initial state (version 0).
    Initial,
    /// Every record of the route since its first was read.
    Confirmed,
    /// Adopted from a record whose history compaction may have removed; a restate or an
    /// unconditional change confirms it.
    Provisional,
}

/// What folding one record did.
#[derive(Clone, Debug, PartialEq)]
pub enum Folded {
    /// The state changed from `old` to `new`.
    Applied { old: DialState, new: DialState },
    /// A change whose `expected_version` was not `in_force`: nothing changed.
    Skipped { in_force: u64 },
    /// A restate matching the state in force: nothing changed.
    Confirmed,
    /// A restate of a version no longer in force: nothing changed, and its writer restates again.
    Stale { in_force: u64 },
}

/// Folds one record at `offset` into the state in force. Pure: the same inputs give the same
/// result on every replica.
pub fn fold(in_force: &DialState, known: Known, offset: i64, record: &ControlRecord) -> (Folded, Known) {
    let offset_version = u64::try_from(offset).unwrap_or(0) + 1;
    match (record.kind, known) {
        (Kind::Change, Known::Confirmed) | (Kind::Change, Known::Initial) => match record.expected_version {
            Some(expected) if expected != in_force.version => {
                if known == Known::Initial && expected != 0 {
                    // The route's earlier records may have been compacted away: believe the record.
                    let new = record.state(offset_version);
                    return (Folded::Applied { old: in_force.clone(), new }, Known::Provisional);
                }
                (Folded::Skipped { in_force: in_force.version }, known)
            }
            _ => (Folded::Applied { old: in_force.clone(), new: record.state(offset_version) }, Known::Confirmed),
        },
        (Kind::Change, Known::Provisional) => {
            let after = if record.expected_version.is_none() { Known::Confirmed } else { Known::Provisional };
            (Folded::Applied { old: in_force.clone(), new: record.state(offset_version) }, after)
        }
        (Kind::Restate, Known::Confirmed) => {
            let version = record.version.unwrap_or(0);
            if version == in_force.version {
                (Folded::Confirmed, known)
            } else {
                (Folded::Stale { in_force: in_force.version }, known)
            }
        }
        (Kind::Restate, Known::Initial) | (Kind::Restate, Known::Provisional) => {
            let new = record.state(record.version.unwrap_or(0));
            if new == *in_force {
                return (Folded::Confirmed, Known::Confirmed);
            }
            (Folded::Applied { old: in_force.clone(), new }, Known::Confirmed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(share: f64, expected: Option<u64>) -> ControlRecord {
        let c = Change {
            route: "orders".into(),
            mode: Mode::Split,
            share: Share::from_percent(share).unwrap(),
            by: "alice".into(),
            reason: "test".into(),
            expected_version: expected,
            rollout_paused: true,
            guard_tripped: false,
        };
        ControlRecord::change(&c, SystemTime::UNIX_EPOCH, "r".into(), "w".into())
    }

    /// Folds records at offsets 0.. from the initial state; returns the final state and results.
    fn replay(records: &[(i64, ControlRecord)]) -> (DialState, Known, Vec<Folded>) {
        let mut state = DialState::initial(Mode::Shadow, Share::ZERO);
        let mut known = Known::Initial;
        let mut out = Vec::new();
        for (offset, r) in records {
            let (folded, k) = fold(&state, known, *offset, r);
            if let Folded::Applied { new, .. } = &folded {
                state = new.clone();
            }
            known = k;
            out.push(folded);
        }
        (state, known, out)
    }

    #[test]
    fn changes_apply_in_order_and_take_their_offset_as_version() {
        let (state, known, _) = replay(&[(0, change(1.0, None)), (1, change(5.0, None)), (2, change(25.0, Some(2)))]);
        assert_eq!((state.share.bp(), state.version, known), (2500, 3, Known::Confirmed));
    }

    #[test]
    fn a_stale_expected_version_is_skipped_the_same_way_everywhere() {
        let log = [(0, change(1.0, Some(0))), (1, change(5.0, Some(0))), (2, change(7.0, Some(1)))];
        let (state, _, folded) = replay(&log);
        assert_eq!(folded[1], Folded::Skipped { in_force: 1 });
        assert!(matches!(folded[2], Folded::Applied { .. }));
        assert_eq!((state.share.bp(), state.version), (700, 3));
    }

    #[test]
    fn a_restate_confirms_the_state_in_force_and_flags_a_stale_one() {
        let (s1, _, _) = replay(&[(0, change(1.0, None))]);
        let restate = ControlRecord::restate("orders", &s1, "r2".into(), "w".into());
        let (_, _, folded) = replay(&[(0, change(1.0, None)), (1, change(5.0, Some(0))), (2, restate.clone())]);
        assert_eq!(folded[2], Folded::Confirmed);
        let (_, _, folded) = replay(&[(0, change(1.0, None)), (3, change(9.0, None)), (4, restate)]);
        assert_eq!(folded[2], Folded::Stale { in_force: 4 });
    }

    #[test]
    fn after_compaction_a_fresh_replica_ends_where_the_others_did() {
        // Full log: v1 applied, a conditional change skipped, then its writer's restate.
        let full = [(0, change(1.0, None)), (5, change(5.0, Some(0))), (6, change(50.0, Some(9)))];
        let (in_force, _, _) = replay(&full);
        let restate = ControlRecord::restate("orders", &in_force, "r".into(), "w".into());
        let mut full_log = full.to_vec();
        full_log.push((7, restate.clone()));
        let (everyone, _, _) = replay(&full_log);
        // Compacted: only the skipped change (as last of its segment) and the restate survive.
        let (fresh, known, _) = replay(&[(6, change(50.0, Some(9))), (7, restate)]);
        assert_eq!(fresh, everyone);
        assert_eq!(known, Known::Confirmed);
        // Compacted down to an accepted conditional change alone: believed, provisionally.
        let (fresh, known, _) = replay(&[(5, change(5.0, Some(4)))]);
        assert_eq!((fresh.share.bp(), fresh.version, known), (500, 6, Known::Provisional));
    }

    #[test]
    fn records_round_trip_as_json() {
        let r = change(12.5, Some(3));
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains(r#""share_percent":12.5"#), "{text}");
        assert_eq!(serde_json::from_str::<ControlRecord>(&text).unwrap(), r);
    }
}
