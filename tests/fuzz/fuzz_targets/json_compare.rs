//! The field-level diff on two arbitrary response bodies under several rule sets.
//!
//! Input: `[flags]` then the legacy body, a NUL byte, the new body, a NUL byte, and `\n`-separated
//! pointer patterns used as both `ignore` and `unordered` of one extra rule set (when they parse).
//! Bodies become outcomes through `Outcome::from_response` (JSON, else text, else base64), and also
//! through `serde_json::from_slice::<Outcome>` when a body is itself an outcome record, as the
//! comparator reads them off the outcomes topic. flags bits 0-1 pick the two statuses.
//!
//! Checked: `compare` never panics, its diffs serialize, and an outcome always matches itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strangler::compare::diff::compare;
use strangler::compare::outcome::{EventMode, Outcome, Source};
use strangler::compare::rules::{BodyRule, CompareRules, PointerPattern, StatusRule};

fn patterns(list: &[&str]) -> Vec<PointerPattern> {
    list.iter().map(|p| PointerPattern::parse(p).expect("fixed pattern")).collect()
}

fn rule_sets(extra: &[PointerPattern], tolerance: f64) -> Vec<CompareRules> {
    let wild = patterns(&["", "/*", "/*/*", "/*/*/*"]);
    vec![
        CompareRules::default(),
        CompareRules {
            ignore: patterns(&["/updated_at", "/items/*/id", "/*/meta"]),
            unordered: patterns(&["/tags", "/items", "/*/labels"]),
            numeric_tolerance: 0.001,
            ..CompareRules::default()
        },
        CompareRules { unordered: wild.clone(), numeric_tolerance: tolerance, ..CompareRules::default() },
        CompareRules { ignore: wild, status: StatusRule::Class, numeric_tolerance: f64::NAN, ..CompareRules::default() },
        CompareRules { ignore: extra.to_vec(), unordered: extra.to_vec(), numeric_tolerance: -1.0, ..CompareRules::default() },
        CompareRules { unordered: extra.to_vec(), numeric_tolerance: f64::INFINITY, ..CompareRules::default() },
        CompareRules { body: BodyRule::Bytes, status: StatusRule::Class, ..CompareRules::default() },
        CompareRules { body: BodyRule::None, ..CompareRules::default() },
    ]
}

fn outcome(source: Source, status: u16, body: &[u8]) -> Outcome {
    Outcome::from_response("evt_fuzz", "fuzz", source, EventMode::Shadow, status, Some("application/json"), body, 1.0, "fuzz")
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let mut parts = rest.splitn(3, |&b| b == 0);
    let legacy_body = parts.next().unwrap_or_default();
    let new_body = parts.next().unwrap_or_default();
    let extra_text = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let extra: Vec<PointerPattern> = extra_text.split('\n').filter_map(|p| PointerPattern::parse(p).ok()).collect();
    let statuses = [200, 201, 404, 599];
    let (legacy_status, new_status) = (statuses[usize::from(flags & 3)], statuses[usize::from((flags >> 2) & 3)]);
    let tolerance = f64::from(flags >> 4) / 4.0;

    let mut legacy = vec![outcome(Source::Legacy, legacy_status, legacy_body)];
    let mut new = vec![outcome(Source::New, new_status, new_body)];
    legacy.extend(serde_json::from_slice::<Outcome>(legacy_body).ok());
    new.extend(serde_json::from_slice::<Outcome>(new_body).ok());

    for rules in rule_sets(&extra, tolerance) {
        for a in &legacy {
            for b in &new {
                let diffs = compare(&rules, a, b);
                serde_json::to_string(&diffs).expect("diffs serialize");
            }
            let same = compare(&rules, a, &a.clone());
            assert!(same.is_empty(), "an outcome differs from itself under {rules:?}: {same:?}");
        }
    }
});
