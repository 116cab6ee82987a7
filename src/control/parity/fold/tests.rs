//! The fold walked through time by hand.

use super::*;

/// A bucket boundary, far from the epoch.
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn secs(s: u64) -> SystemTime {
    t0() + Duration::from_secs(s)
}

fn rfc(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn record(route: &str, id: &str, result: ParityResult, at: SystemTime, pointer: &str) -> Parity {
    let mismatch = result == ParityResult::Mismatch;
    let side = |status| Some(Side { status, body: serde_json::json!({}) });
    Parity {
        event_id: id.into(),
        route: route.into(),
        result,
        diff: if mismatch { vec![FieldDiff { pointer: pointer.into(), legacy: 1.into(), new: 2.into() }] } else { vec![] },
        legacy_status: Some(200),
        new_status: Some(200),
        at: rfc(at),
        legacy: if mismatch { side(200) } else { None },
        new: if mismatch { side(201) } else { None },
    }
}

#[test]
fn buckets_roll_over_after_an_hour_and_old_ones_drop_out_of_sums() {
    let mut b = Buckets::default();
    assert!(b.add(secs(0), ParityResult::Match, secs(0)));
    assert!(b.add(secs(9), ParityResult::Match, secs(9)));
    assert!(b.add(secs(10), ParityResult::Mismatch, secs(10)));
    let f = b.sum(UNIX_EPOCH, secs(10));
    assert_eq!((f.matched, f.mismatched), (2, 1));

    // An hour later the first bucket's slot is reused: its old counts are gone, not added to.
    assert!(b.add(secs(3600), ParityResult::LiveOk, secs(3600)));
    let f = b.sum(UNIX_EPOCH, secs(3600));
    assert_eq!((f.matched, f.mismatched, f.live_ok), (0, 1, 1));
    // Ten seconds on, the bucket of second 10 is past the hour even though nothing replaced it.
    let f = b.sum(UNIX_EPOCH, secs(3610));
    assert_eq!((f.mismatched, f.live_ok), (0, 1));
}

#[test]
fn records_an_hour_old_are_ignored_and_future_ones_count_now() {
    let now = secs(7200);
    let mut b = Buckets::default();
    assert!(!b.add(secs(3600), ParityResult::Match, now), "exactly an hour old");
    assert!(!b.add(secs(3609), ParityResult::Match, now), "same bucket as an hour ago");
    assert!(b.add(secs(3610), ParityResult::Match, now), "the oldest bucket still in the hour");
    assert!(b.add(secs(9000), ParityResult::Mismatch, now), "a clock ahead of ours");
    assert_eq!(b.sum(now, now).mismatched, 1, "counted in the current bucket");
    assert_eq!(b.sum(UNIX_EPOCH, now).samples(), 2);
}

#[test]
fn since_is_rounded_down_to_its_bucket() {
    let mut b = Buckets::default();
    b.add(secs(10), ParityResult::MissingNew, secs(30));
    b.add(secs(29), ParityResult::MissingLegacy, secs(30));
    assert_eq!(b.sum(secs(19), secs(30)).missing_new, 1, "second 19 is in the bucket starting at 10");
    assert_eq!(b.sum(secs(20), secs(30)), Figures { missing_legacy: 1, ..Figures::default() });
}

#[test]
fn truncated_events_are_counted_apart_from_the_samples() {
    let mut b = Buckets::default();
    b.add(secs(10), ParityResult::Match, secs(10));
    b.add(secs(10), ParityResult::Truncated, secs(10));
    let f = b.sum(secs(0), secs(10));
    assert_eq!((f.truncated, f.samples(), f.parity_ratio()), (1, 1, Some(1.0)));
}

#[test]
fn the_trend_is_every_bucket_of_the_hour_oldest_first() {
    let mut b = Buckets::default();
    let now = secs(5000);
    b.add(secs(4995), ParityResult::LiveError, now);
    b.add(secs(1405), ParityResult::LiveMissing, now);
    b.add(secs(1395), ParityResult::Match, now);
    let trend = b.trend(now);
    assert_eq!(trend.len(), 360);
    assert_eq!(trend[0].0, secs(1410), "the oldest bucket in the hour");
    assert_eq!(trend[359], (secs(5000), Figures::default()));
    assert_eq!(trend[358].1.live_error, 1);
    assert_eq!(trend.iter().map(|(_, f)| f.live()).sum::<u64>(), 1, "second 1405 is past the hour");
    assert!(trend.windows(2).all(|w| w[1].0.duration_since(w[0].0).unwrap() == BUCKET));
}

#[test]
fn sample_rings_are_bounded_newest_first_and_filter_by_pointer() {
    let mut fold = Fold::new(3, 10, 100);
    for (i, pointer) in ["/body/risk", "/status", "/body/risk/score", "/status", "/body/riskier"].iter().enumerate() {
        fold.add(record("r", &format!("m{i}"), ParityResult::Mismatch, secs(i as u64), pointer), secs(10));
    }
    for (i, result) in [ParityResult::MissingNew, ParityResult::LiveMissing].into_iter().enumerate() {
        fold.add(record("r", &format!("x{i}"), result, secs(5), ""), secs(10));
    }
    let route = fold.route("r").unwrap();
    let ids = |v: Vec<MismatchSample>| v.into_iter().map(|s| s.event_id).collect::<Vec<_>>();
    assert_eq!(ids(route.mismatches(None, 10)), ["m4", "m3", "m2"], "kept three, newest first");
    assert_eq!(ids(route.mismatches(Some("/body/risk"), 10)), ["m4", "m2"]);
    assert_eq!(ids(route.mismatches(Some("/body"), 1)), ["m4"]);
    let sample = &route.mismatches(None, 1)[0];
    assert_eq!(sample.new.as_ref().map(|s| s.status), Some(201), "both sides travel with the sample");
    let missing = route.missing(10);
    assert_eq!(
        missing.iter().map(|m| (m.event_id.as_str(), m.result)).collect::<Vec<_>>(),
        [("x1", ParityResult::LiveMissing), ("x0", ParityResult::MissingNew)]
    );
    assert_eq!(route.buckets.sum(UNIX_EPOCH, secs(10)).mismatched, 5, "samples are bounded, counts are not");
}

#[test]
fn an_event_counts_once_by_its_first_record_while_remembered() {
    let mut fold = Fold::new(5, 10, 2);
    let now = secs(100);
    fold.add(record("r", "a", ParityResult::Match, secs(1), ""), now);
    fold.add(record("r", "a", ParityResult::MissingLegacy, secs(2), ""), now);
    fold.add(record("other", "a", ParityResult::Match, secs(2), ""), now);
    assert_eq!(fold.skipped.duplicates, 1, "the same id on another route is another event");
    assert_eq!(fold.route("r").unwrap().buckets.sum(UNIX_EPOCH, now), Figures { matched: 1, ..Figures::default() });
    fold.add(record("r", "b", ParityResult::Match, secs(3), ""), now);
    fold.add(record("r", "a", ParityResult::Match, secs(4), ""), now);
    assert_eq!(fold.route("r").unwrap().buckets.sum(UNIX_EPOCH, now).matched, 3, "forgotten past the bound");
}

#[test]
fn routes_past_the_cap_and_old_records_are_counted_as_skipped() {
    let mut fold = Fold::new(5, 1, 100);
    let now = secs(7200);
    fold.add(record("r1", "a", ParityResult::Match, now, ""), now);
    fold.add(record("r2", "b", ParityResult::Match, now, ""), now);
    fold.add(record("r1", "c", ParityResult::Match, secs(0), ""), now);
    let mut undated = record("r1", "d", ParityResult::LiveOk, now, "");
    undated.at = "yesterday-ish".into();
    fold.add(undated, now);
    assert!(fold.route("r2").is_none());
    assert_eq!(fold.skipped, Skipped { over_route_cap: 1, too_old: 1, ..Skipped::default() });
    assert_eq!(fold.route("r1").unwrap().buckets.sum(now, now), Figures { matched: 1, live_ok: 1, ..Figures::default() });
}
