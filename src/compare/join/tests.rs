//! The joiner: pairing, windows, late and duplicate sides, and the bounds on waiting events.

use super::*;

fn w(source: Source) -> Waiting {
    Waiting {
        route: Arc::from("r"),
        source,
        mode: EventMode::Shadow,
        status: 200,
        truncated: false,
        digest: None,
        encoding: BodyEncoding::Json,
        kept: None,
        at: None,
    }
}

const W: Duration = Duration::from_secs(10);
const ROOMY: Limits = Limits { max_pending: 1_000, max_pending_bytes: 1 << 20 };

/// Offers one side: `Some(first)` when it completed a pair.
fn offer(j: &mut Joiner, id: &str, source: Source, now: Instant) -> Result<Option<Waiting>, Refused> {
    match j.peek_other(id, source)? {
        Some(_) => Ok(j.take(id)),
        None => {
            assert!(j.wait(id, w(source), W, now).is_empty(), "nothing evicted");
            Ok(None)
        }
    }
}

#[test]
fn both_sides_in_either_order_make_a_pair() {
    let t = Instant::now();
    let mut j = Joiner::new(100, ROOMY);
    assert_eq!(offer(&mut j, "a", Source::Legacy, t), Ok(None));
    assert_eq!(offer(&mut j, "a", Source::New, t).unwrap().map(|w| w.source), Some(Source::Legacy));
    assert_eq!(offer(&mut j, "b", Source::New, t), Ok(None));
    assert_eq!(offer(&mut j, "b", Source::Legacy, t).unwrap().map(|w| w.source), Some(Source::New));
    assert_eq!((j.pending(), j.pending_bytes()), (0, 0));
    assert_eq!(j.next_deadline(), None);
}

#[test]
fn a_lone_side_expires_at_the_window_and_not_before() {
    let t = Instant::now();
    let mut j = Joiner::new(100, ROOMY);
    offer(&mut j, "a", Source::Legacy, t).unwrap();
    offer(&mut j, "b", Source::New, t + Duration::from_secs(1)).unwrap();
    assert!(j.expire(t + W - Duration::from_millis(1)).is_empty());
    let first = j.expire(t + W);
    assert!(matches!(&first[..], [(id, w)] if &**id == "a" && w.source == Source::Legacy));
    let second = j.expire(t + W + Duration::from_secs(1));
    assert!(matches!(&second[..], [(id, w)] if &**id == "b" && w.source == Source::New));
    assert_eq!((j.pending(), j.pending_bytes()), (0, 0));
}

#[test]
fn late_and_duplicate_records_are_refused() {
    let t = Instant::now();
    let mut j = Joiner::new(100, ROOMY);
    offer(&mut j, "a", Source::Legacy, t).unwrap();
    assert_eq!(offer(&mut j, "a", Source::Legacy, t), Err(Refused::Duplicate));
    j.expire(t + W);
    assert_eq!(offer(&mut j, "a", Source::New, t + W), Err(Refused::Late), "counted once, as missing_new");
    assert_eq!(offer(&mut j, "a", Source::Legacy, t + W), Err(Refused::Duplicate));
    // Compared, then repeated: a consumer that crashed before committing publishes again.
    offer(&mut j, "b", Source::Legacy, t).unwrap();
    offer(&mut j, "b", Source::New, t).unwrap();
    assert_eq!(offer(&mut j, "b", Source::New, t), Err(Refused::Duplicate));
    assert_eq!(offer(&mut j, "b", Source::Legacy, t + W * 2), Err(Refused::Duplicate));
}

#[test]
fn decided_ids_are_remembered_only_up_to_the_bound() {
    let t = Instant::now();
    let mut j = Joiner::new(2, ROOMY);
    for id in ["a", "b", "c"] {
        offer(&mut j, id, Source::Legacy, t).unwrap();
        offer(&mut j, id, Source::New, t).unwrap();
    }
    assert_eq!(offer(&mut j, "c", Source::New, t), Err(Refused::Duplicate));
    assert_eq!(offer(&mut j, "a", Source::New, t), Ok(None), "forgotten after the bound");
}

#[test]
fn past_max_pending_the_oldest_are_evicted_first() {
    let t = Instant::now();
    let mut j = Joiner::new(100, Limits { max_pending: 3, max_pending_bytes: 1 << 20 });
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        assert!(j.wait(id, w(Source::Legacy), W, t + Duration::from_millis(i as u64)).is_empty());
    }
    let evicted = j.wait("d", w(Source::New), W, t);
    assert!(matches!(&evicted[..], [(id, _)] if &**id == "a"), "the oldest by arrival");
    assert_eq!(j.pending(), 3);
    assert_eq!(j.peek_other("a", Source::New), Err(Refused::Late), "an evicted event is decided");
    assert_eq!(j.expire(t + W + Duration::from_secs(1)).len(), 3, "the others keep their windows");
}

#[test]
fn past_max_pending_bytes_the_oldest_are_evicted_until_the_bytes_fit() {
    let t = Instant::now();
    let kept = |n: usize| Waiting { kept: Some("x".repeat(n).into_boxed_str()), ..w(Source::Legacy) };
    let one = kept(100).bytes("a");
    let mut j = Joiner::new(100, Limits { max_pending: 1_000, max_pending_bytes: 3 * one });
    for id in ["a", "b", "c"] {
        assert!(j.wait(id, kept(100), W, t).is_empty());
    }
    assert_eq!(j.pending_bytes(), 3 * one);
    let evicted: Vec<String> = j.wait("d", kept(100 + 2 * one), W, t).into_iter().map(|(id, _)| id.to_string()).collect();
    assert_eq!(evicted, ["a", "b", "c"], "oldest first, until the newcomer fits");
    assert_eq!((j.pending(), j.pending_bytes()), (1, kept(100 + 2 * one).bytes("d")));
    assert!(j.pending_bytes() <= 3 * one);
}
