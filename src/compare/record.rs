//! The parity record: one comparison's result, as the comparator publishes it on the parity topic
//! and every replica reads it back (docs/consumer-protocol.md). Fields are only ever added.

use serde::{Deserialize, Serialize};

use super::diff::FieldDiff;
use super::outcome::{EventMode, Outcome, Source};
use super::rules::CompareRules;

/// A decided event: what the verdict is drawn from.
#[derive(Debug, PartialEq)]
pub enum Joined {
    /// Both outcomes are here, in full: compared field by field.
    Pair { legacy: Outcome, new: Outcome },
    /// Both outcomes are here and their digests agree: a match without a diff (bodies not needed).
    Agreed { legacy: Outcome, new: Outcome },
    /// The window closed (or the event was evicted) with only one side; `have` is the side that arrived.
    Expired { have: Outcome },
}

/// One comparison's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParityResult {
    Match,
    Mismatch,
    MissingNew,
    MissingLegacy,
    /// A live (new-owned) event whose new outcome has status below 500.
    LiveOk,
    /// A live event whose new outcome has status 500 or more.
    LiveError,
    /// A live event with no new outcome within the route's window.
    LiveMissing,
    /// A shadow event with both outcomes, one of them `truncated` (only a prefix of the answer
    /// was kept): not compared, so neither a match nor a mismatch, and outside the parity ratio.
    Truncated,
}

impl ParityResult {
    /// Every variant, for metrics that exist at zero before the first comparison.
    pub const ALL: [ParityResult; 8] = [
        ParityResult::Match,
        ParityResult::Mismatch,
        ParityResult::MissingNew,
        ParityResult::MissingLegacy,
        ParityResult::LiveOk,
        ParityResult::LiveError,
        ParityResult::LiveMissing,
        ParityResult::Truncated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ParityResult::Match => "match",
            ParityResult::Mismatch => "mismatch",
            ParityResult::MissingNew => "missing_new",
            ParityResult::MissingLegacy => "missing_legacy",
            ParityResult::LiveOk => "live_ok",
            ParityResult::LiveError => "live_error",
            ParityResult::LiveMissing => "live_missing",
            ParityResult::Truncated => "truncated",
        }
    }

    /// The new path's verdict on a live event from the status the new service answered.
    pub fn live(new_status: u16) -> Self {
        if new_status < 500 {
            ParityResult::LiveOk
        } else {
            ParityResult::LiveError
        }
    }

    /// The `result` label of `strangler_new_path_total` for live results; `None` for shadow ones.
    pub fn new_path_label(self) -> Option<&'static str> {
        match self {
            ParityResult::LiveOk => Some("ok"),
            ParityResult::LiveError => Some("error"),
            ParityResult::LiveMissing => Some("missing"),
            _ => None,
        }
    }
}

/// A parity record, as published on the parity topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Parity {
    pub event_id: String,
    pub route: String,
    pub result: ParityResult,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<FieldDiff>,
    #[serde(default)]
    pub legacy_status: Option<u16>,
    #[serde(default)]
    pub new_status: Option<u16>,
    /// RFC 3339 time of the decision.
    #[serde(default)]
    pub at: String,
    /// Mismatches only: what the monolith answered, so any replica can show both sides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy: Option<Side>,
    /// Mismatches only: what the new service answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<Side>,
}

/// One side of a mismatch: the status and the body (as in the outcome record).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Side {
    pub status: u16,
    #[serde(default)]
    pub body: serde_json::Value,
}

impl Side {
    fn of(o: &Outcome) -> Self {
        Side { status: o.status, body: o.body.clone() }
    }
}

/// Decides one joined event. Pure: the comparator adds the metrics and the publishing.
///
/// An event is live when strangler's own (`legacy`) record says so, or, with that record absent,
/// when the new one does. A live event with both records is judged by the new status; strangler's
/// record alone at the window's end is `live_missing`; a new live outcome alone (strangler's record
/// was lost, e.g. Kafka refused it) is judged by its own status, since the event did reach the new
/// path and the service's answer is what counts.
pub fn verdict(rules: &CompareRules, joined: Joined, at: String) -> Parity {
    let record = |have: &Outcome, result, legacy: Option<&Outcome>, new: Option<&Outcome>| Parity {
        event_id: have.event_id.clone(),
        route: have.route.clone(),
        result,
        diff: Vec::new(),
        legacy_status: legacy.map(|o| o.status),
        new_status: new.map(|o| o.status),
        at: at.clone(),
        legacy: None,
        new: None,
    };
    match joined {
        Joined::Pair { legacy, new } if legacy.mode == EventMode::Live => {
            record(&legacy, ParityResult::live(new.status), Some(&legacy), Some(&new))
        }
        Joined::Pair { legacy, new } if legacy.truncated || new.truncated => {
            record(&legacy, ParityResult::Truncated, Some(&legacy), Some(&new))
        }
        Joined::Pair { legacy, new } => {
            let diff = super::diff::compare(rules, &legacy, &new);
            if diff.is_empty() {
                return record(&legacy, ParityResult::Match, Some(&legacy), Some(&new));
            }
            Parity {
                diff,
                legacy: Some(Side::of(&legacy)),
                new: Some(Side::of(&new)),
                ..record(&legacy, ParityResult::Mismatch, Some(&legacy), Some(&new))
            }
        }
        Joined::Agreed { legacy, new } => record(&legacy, ParityResult::Match, Some(&legacy), Some(&new)),
        Joined::Expired { have } => match (have.source, have.mode) {
            (Source::Legacy, EventMode::Live) => record(&have, ParityResult::LiveMissing, Some(&have), None),
            (Source::New, EventMode::Live) => record(&have, ParityResult::live(have.status), None, Some(&have)),
            (Source::Legacy, EventMode::Shadow) => record(&have, ParityResult::MissingNew, Some(&have), None),
            (Source::New, EventMode::Shadow) => record(&have, ParityResult::MissingLegacy, None, Some(&have)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(source: Source, mode: EventMode, status: u16, body: &[u8]) -> Outcome {
        Outcome::from_response("e1", "r", source, mode, status, None, body, 1.0, "t")
    }

    fn judge(joined: Joined) -> Parity {
        verdict(&CompareRules::default(), joined, "2026-01-01T00:00:00.000Z".into())
    }

    #[test]
    fn live_events_are_judged_by_the_new_status_or_missing() {
        use EventMode::Live;
        let pair = |status| Joined::Pair { legacy: o(Source::Legacy, Live, 202, b"{}"), new: o(Source::New, Live, status, b"") };
        let cases = [
            (pair(200), ParityResult::LiveOk),
            (pair(499), ParityResult::LiveOk),
            (pair(500), ParityResult::LiveError),
            (Joined::Expired { have: o(Source::Legacy, Live, 202, b"{}") }, ParityResult::LiveMissing),
            (Joined::Expired { have: o(Source::New, Live, 201, b"{}") }, ParityResult::LiveOk),
            (Joined::Expired { have: o(Source::New, Live, 503, b"{}") }, ParityResult::LiveError),
        ];
        for (joined, want) in cases {
            let p = judge(joined);
            assert_eq!(p.result, want);
            assert!(p.diff.is_empty() && p.legacy.is_none() && p.new.is_none(), "{p:?}");
        }
    }

    #[test]
    fn shadow_results_and_only_mismatches_carry_both_sides() {
        use EventMode::Shadow;
        let same = judge(Joined::Pair { legacy: o(Source::Legacy, Shadow, 200, b"{}"), new: o(Source::New, Shadow, 200, b"{}") });
        assert_eq!((same.result, same.legacy.is_none()), (ParityResult::Match, true));
        let differ = judge(Joined::Pair {
            legacy: o(Source::Legacy, Shadow, 200, b"{}"),
            new: o(Source::New, Shadow, 200, br#"{"a":1}"#),
        });
        assert_eq!(differ.result, ParityResult::Mismatch);
        assert_eq!(differ.new, Some(Side { status: 200, body: serde_json::json!({"a": 1}) }));
        let wire = serde_json::to_value(&differ).unwrap();
        assert_eq!(wire["legacy"], serde_json::json!({"status": 200, "body": {}}));
        assert_eq!(serde_json::from_value::<Parity>(wire).unwrap(), differ);
        let lone = judge(Joined::Expired { have: o(Source::New, Shadow, 200, b"{}") });
        assert_eq!((lone.result, lone.legacy_status, lone.new_status), (ParityResult::MissingLegacy, None, Some(200)));
        let wire = serde_json::to_value(&lone).unwrap();
        assert!(wire.get("legacy").is_none() && wire.get("new").is_none() && wire.get("diff").is_none(), "{wire}");
    }

    #[test]
    fn a_truncated_side_is_its_own_result_not_a_comparison() {
        use EventMode::Shadow;
        let cut = |source, body: &[u8]| Outcome { truncated: true, ..o(source, Shadow, 200, body) };
        for (legacy, new) in [
            (cut(Source::Legacy, b"{\"a\":"), o(Source::New, Shadow, 200, b"{}")),
            (o(Source::Legacy, Shadow, 200, b"{}"), cut(Source::New, b"{}")),
        ] {
            let p = judge(Joined::Pair { legacy, new });
            assert_eq!((p.result, p.legacy_status, p.new_status), (ParityResult::Truncated, Some(200), Some(200)));
            assert!(p.diff.is_empty() && p.legacy.is_none(), "{p:?}");
            assert_eq!(serde_json::to_value(&p).unwrap()["result"], "truncated");
        }
        // Live events are judged by the new status, truncated or not.
        let live = Outcome { truncated: true, ..o(Source::Legacy, EventMode::Live, 202, b"{}") };
        let p = judge(Joined::Pair { legacy: live, new: o(Source::New, EventMode::Live, 200, b"") });
        assert_eq!(p.result, ParityResult::LiveOk);
    }

    #[test]
    fn an_older_record_without_the_new_fields_parses() {
        let p: Parity = serde_json::from_str(
            r#"{"event_id":"x","route":"r","result":"missing_new","legacy_status":200,"new_status":null,"at":"t"}"#,
        )
        .unwrap();
        assert_eq!((p.result, p.legacy, p.diff.len()), (ParityResult::MissingNew, None, 0));
    }
}
