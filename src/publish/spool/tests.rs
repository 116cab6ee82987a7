//! Tests of the spool: order, acks across reopen, torn tails, corruption, both full policies,
//! clean-up, the cursor and both fsync policies.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn entry(i: u64) -> Entry {
    Entry {
        route: "orders".into(),
        id: format!("ev-{i}"),
        topic: "shadow.orders".into(),
        key: format!("key-{i}"),
        headers: vec![("ce_type".into(), "order.created".into()), ("n".into(), i.to_string())],
        value: vec![(i % 251) as u8; 150],
        possibly_persisted: i.is_multiple_of(3),
        partition: i.is_multiple_of(2).then_some(i as i32),
        spooled_at_ms: 1_000 + i,
        order: 10 * i,
    }
}

fn settings(dir: &Path, max_bytes: u64, when_full: WhenFull) -> Settings {
    Settings { dir: dir.to_path_buf(), max_bytes, fsync: Fsync::Always, when_full, write_ahead: false }
}

fn open(s: &Settings) -> (Spool, Opened) {
    Spool::open(s.clone()).unwrap()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<PathBuf> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "seg")).collect();
    segs.sort();
    segs
}

fn pending_ids(spool: &Spool) -> Vec<String> {
    spool.pending(usize::MAX).unwrap().into_iter().map(|(_, e)| e.id).collect()
}

fn ids(range: impl Iterator<Item = u64>) -> Vec<String> {
    range.map(|i| entry(i).id).collect()
}

#[test]
fn is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Spool>();
}

#[test]
fn pending_in_order_acks_survive_reopen_and_seqs_keep_growing() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), 64 * 1024, WhenFull::DropNewest);
    let (spool, opened) = open(&s);
    assert_eq!(opened, Opened { records: 0, bytes: 0, torn_tails: 0 });
    for i in 0..60 {
        assert_eq!(spool.append(&entry(i)).unwrap(), Appended { seq: i, evicted: vec![] });
    }
    assert!(segments(dir.path()).len() > 1, "small segments: the log spans several files");
    let all = spool.pending(usize::MAX).unwrap();
    assert_eq!(all, (0..60).map(|i| (i, entry(i))).collect::<Vec<_>>());
    assert_eq!(spool.pending(3).unwrap(), (0..3).map(|i| (i, entry(i))).collect::<Vec<_>>());

    spool.ack(&[5, 1, 3, 3, 999]).unwrap();
    spool.ack(&[1]).unwrap();
    let left: Vec<u64> = (0..60).filter(|i| ![1, 3, 5].contains(i)).collect();
    assert_eq!(spool.pending(4).unwrap().iter().map(|(s, _)| *s).collect::<Vec<_>>(), [0, 2, 4, 6]);
    assert_eq!(spool.stats().records, 57);
    drop(spool);

    let (spool, opened) = open(&s);
    assert_eq!((opened.records, opened.torn_tails), (57, 0));
    assert_eq!(spool.pending(usize::MAX).unwrap().into_iter().map(|(s, _)| s).collect::<Vec<_>>(), left);
    assert_eq!(spool.append(&entry(60)).unwrap().seq, 60);
    let every: Vec<u64> = spool.pending(usize::MAX).unwrap().into_iter().map(|(s, _)| s).collect();
    spool.ack(&every).unwrap();
    assert!(segments(dir.path()).is_empty());
    drop(spool);

    // Every segment is gone, yet the next seq is not reused.
    let (spool, opened) = open(&s);
    assert_eq!(opened.records, 0);
    assert_eq!(spool.append(&entry(61)).unwrap().seq, 61);
}

/// A spool in `dir` holding entries 0, 1 and 2 in one segment, closed; returns its settings and
/// that segment's path.
fn three_records(dir: &Path) -> (Settings, PathBuf) {
    let s = settings(dir, 64 * 1024, WhenFull::DropNewest);
    let (spool, _) = open(&s);
    for i in 0..3 {
        spool.append(&entry(i)).unwrap();
    }
    drop(spool);
    (s, segments(dir).pop().unwrap())
}

#[test]
fn torn_tail_is_cut_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let (s, seg) = three_records(dir.path());
    let len = fs::metadata(&seg).unwrap().len();
    fs::OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 5).unwrap();

    let (spool, opened) = open(&s);
    assert_eq!((opened.torn_tails, opened.records), (1, 2));
    assert_eq!(pending_ids(&spool), ids(0..2));
    assert_eq!(opened.bytes, fs::metadata(&seg).unwrap().len(), "the file is cut at the torn frame");
    spool.append(&entry(7)).unwrap();
    drop(spool);

    let (spool, opened) = open(&s);
    assert_eq!((opened.torn_tails, opened.records), (0, 3));
    assert_eq!(pending_ids(&spool), [entry(0).id, entry(1).id, entry(7).id]);
}

#[test]
fn bad_checksum_mid_segment_drops_the_rest_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let (s, seg) = three_records(dir.path());
    let mut bytes = fs::read(&seg).unwrap();
    let second = 8 + u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    bytes[second + 8 + 20] ^= 0xff;
    fs::write(&seg, &bytes).unwrap();

    let (spool, opened) = open(&s);
    assert_eq!((opened.torn_tails, opened.records), (1, 1));
    assert_eq!(pending_ids(&spool), ids(0..1));
    assert_eq!(fs::metadata(&seg).unwrap().len(), second as u64);
}

#[test]
fn drop_newest_refuses_whole_frames_and_recovers_after_acks() {
    let dir = tempfile::tempdir().unwrap();
    let max = 4096;
    let s = settings(dir.path(), max, WhenFull::DropNewest);
    let (spool, _) = open(&s);
    let mut ok = 0;
    loop {
        match spool.append(&entry(ok)) {
            Ok(_) => ok += 1,
            Err(SpoolError::Full { needed, max_bytes }) => {
                assert_eq!(max_bytes, max);
                assert!(spool.stats().bytes + needed > max);
                break;
            }
            Err(e) => panic!("{e}"),
        }
        assert!(spool.stats().bytes <= max);
    }
    assert!(ok > 5);
    assert!(matches!(spool.append(&entry(999)), Err(SpoolError::Full { .. })));
    let bytes = spool.stats().bytes;
    drop(spool);

    let (spool, opened) = open(&s);
    assert_eq!((opened.records, opened.torn_tails, opened.bytes), (ok, 0, bytes));
    let seqs: Vec<u64> = spool.pending(usize::MAX).unwrap().into_iter().map(|(s, _)| s).collect();
    spool.ack(&seqs).unwrap();
    assert!(segments(dir.path()).is_empty());
    assert_eq!(spool.stats().bytes, 0);
    for i in 0..3 {
        spool.append(&entry(100 + i)).unwrap();
        assert!(spool.stats().bytes <= max);
    }
    let mut huge = entry(0);
    huge.value = vec![0; max as usize];
    assert!(matches!(spool.append(&huge), Err(SpoolError::Full { .. })), "bigger than the spool on its own");
}

#[test]
fn drop_oldest_evicts_the_oldest_unacked_in_order() {
    for max in [32 * 1024, 4096] {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path(), max, WhenFull::DropOldest);
        let (spool, _) = open(&s);
        let mut evicted = Vec::new();
        for i in 0..200 {
            if i == 5 {
                spool.ack(&[1, 3]).unwrap();
            }
            evicted.extend(spool.append(&entry(i)).unwrap().evicted);
            assert!(spool.stats().bytes <= max, "max {max}");
        }
        assert!(!evicted.is_empty());
        let expected: Vec<Entry> = (0..200).filter(|i| ![1, 3].contains(i)).map(entry).take(evicted.len()).collect();
        assert_eq!(evicted, expected, "max {max}");
        let pending = pending_ids(&spool);
        let first_left = 200 - pending.len() as u64;
        assert_eq!(pending, ids(first_left..200), "max {max}");
        assert_eq!(evicted.len() + pending.len(), 198);
        drop(spool);
        let (_, opened) = open(&s);
        assert_eq!(opened.records, pending.len() as u64);
    }
}

#[test]
fn acking_everything_empties_the_spool_and_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), 64 * 1024, WhenFull::DropNewest);
    let (spool, _) = open(&s);
    for i in 0..40 {
        spool.append(&entry(i)).unwrap();
    }
    assert!(!spool.is_empty());
    let mut seqs: Vec<u64> = (0..40).collect();
    seqs.reverse();
    spool.ack(&seqs[..20]).unwrap();
    assert!(!spool.is_empty());
    spool.ack(&seqs).unwrap();
    assert!(spool.is_empty());
    assert_eq!(spool.stats(), Stats { bytes: 0, records: 0, oldest_spooled_at_ms: None });
    assert!(segments(dir.path()).is_empty());
    assert!(spool.pending(10).unwrap().is_empty());
    drop(spool);
    let (spool, opened) = open(&s);
    assert_eq!(opened, Opened { records: 0, bytes: 0, torn_tails: 0 });
    assert!(spool.is_empty());
}

#[test]
fn oldest_spooled_at_is_the_oldest_unacked() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, _) = open(&settings(dir.path(), 64 * 1024, WhenFull::DropNewest));
    assert_eq!(spool.stats().oldest_spooled_at_ms, None);
    for (i, at) in [100, 200, 300].into_iter().enumerate() {
        spool.append(&Entry { spooled_at_ms: at, ..entry(i as u64) }).unwrap();
    }
    assert_eq!(spool.stats().oldest_spooled_at_ms, Some(100));
    spool.ack(&[0]).unwrap();
    assert_eq!(spool.stats().oldest_spooled_at_ms, Some(200));
    spool.ack(&[2]).unwrap();
    assert_eq!(spool.stats().oldest_spooled_at_ms, Some(200));
    spool.ack(&[1]).unwrap();
    assert_eq!(spool.stats().oldest_spooled_at_ms, None);
}

#[test]
fn garbage_cursor_replays_everything_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), 64 * 1024, WhenFull::DropNewest);
    let (spool, _) = open(&s);
    for i in 0..4 {
        spool.append(&entry(i)).unwrap();
    }
    spool.ack(&[1, 2]).unwrap();
    drop(spool);
    fs::write(dir.path().join("cursor"), b"\x00\xffnot a cursor").unwrap();
    fs::write(dir.path().join("cursor.tmp"), b"half").unwrap();

    let (spool, opened) = open(&s);
    assert_eq!((opened.records, opened.torn_tails), (4, 0));
    assert_eq!(pending_ids(&spool), ids(0..4));
    assert!(!dir.path().join("cursor.tmp").exists());
    assert_eq!(spool.append(&entry(4)).unwrap().seq, 4);
}

#[test]
fn replay_mark_persists() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), 64 * 1024, WhenFull::DropNewest);
    let (spool, _) = open(&s);
    assert_eq!(spool.replay_mark(), None);
    spool.append(&entry(0)).unwrap();
    spool.mark_replaying(7).unwrap();
    spool.mark_replaying(3).unwrap();
    assert_eq!(spool.replay_mark(), Some(7));
    drop(spool);
    assert_eq!(open(&s).0.replay_mark(), Some(7));
}

#[test]
fn both_fsync_policies_persist() {
    for fsync in [Fsync::Always, Fsync::Every(Duration::from_millis(50))] {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings { fsync, ..settings(dir.path(), 64 * 1024, WhenFull::DropOldest) };
        let (spool, _) = open(&s);
        for i in 0..30 {
            spool.append(&entry(i)).unwrap();
        }
        spool.sync().unwrap();
        spool.ack(&[0, 1]).unwrap();
        spool.sync().unwrap();
        spool.sync().unwrap();
        assert_eq!(spool.settings().fsync, fsync);
        drop(spool);
        let (spool, opened) = open(&s);
        assert_eq!((opened.records, opened.torn_tails), (28, 0), "{fsync:?}");
        assert_eq!(pending_ids(&spool), ids(2..30));
    }
}

#[test]
fn a_second_process_cannot_open_a_spool_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), 64 * 1024, WhenFull::DropNewest);
    let (spool, _) = open(&s);
    assert!(matches!(Spool::open(s.clone()), Err(SpoolError::InUse { .. })));
    drop(spool);
    assert!(Spool::open(s).is_ok(), "free again once the first one is gone");
}
