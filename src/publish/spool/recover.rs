//! Opening a spool directory: read the cursor, scan every segment, cut torn tails, rebuild the
//! index of un-acked records and delete segments with nothing pending.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use super::state::{Record, Segment, State};
use super::{cursor, frame, io_err, SpoolError};

/// The recovered state and the number of torn tails cut off.
pub(super) fn recover(dir: &Path, durable: bool) -> Result<(State, u64), SpoolError> {
    fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    cursor::remove_stray_tmp(dir)?;
    let cursor = cursor::load(dir)?;
    let mut segments = BTreeMap::new();
    let mut records = VecDeque::new();
    let mut bytes = 0;
    let mut torn_tails = 0;
    let mut last_seq = None;
    for (first, path) in list_segments(dir)? {
        let scanned = frame::scan(&path, last_seq)?;
        if let Some(reason) = &scanned.torn {
            tracing::warn!(
                path = %path.display(),
                offset = scanned.valid_len,
                file_len = scanned.file_len,
                reason = reason.as_str(),
                "spool: torn or corrupt frame; truncating the segment there (later records in it are lost)"
            );
            truncate(&path, scanned.valid_len)?;
            torn_tails += 1;
        }
        let mut seg = Segment { path, bytes: scanned.valid_len, pending: 0, file: None };
        for f in scanned.frames {
            last_seq = Some(f.seq);
            if !cursor.is_acked(f.seq) {
                seg.pending += 1;
                records.push_back(Record {
                    seq: f.seq,
                    segment: first,
                    offset: f.offset,
                    len: f.len,
                    spooled_at_ms: f.spooled_at_ms,
                });
            }
        }
        bytes += seg.bytes;
        segments.insert(first, seg);
    }
    let next_seq = cursor.next_seq.max(last_seq.map_or(0, |s| s + 1));
    let mut state = State {
        dir: dir.to_path_buf(),
        durable,
        segments,
        records,
        next_seq,
        acked: cursor.acked.iter().copied().collect::<BTreeSet<u64>>(),
        replay_mark: cursor.replay_mark,
        offsets: cursor.offsets.clone(),
        bytes,
        dirty_data: false,
        dirty_meta: false,
    };
    // The cursor keeps next_seq, so it must be on disk before the segments that imply it go.
    state.store_cursor()?;
    let idle: Vec<u64> = state.segments.iter().filter(|(_, s)| s.pending == 0).map(|(k, _)| *k).collect();
    for first in idle {
        state.remove_segment(first)?;
    }
    // The newest segment left takes further appends.
    if let Some(seg) = state.segments.values_mut().next_back() {
        let file = OpenOptions::new().append(true).open(&seg.path).map_err(|e| io_err(&seg.path, e))?;
        seg.file = Some(file);
    }
    Ok((state, torn_tails))
}

/// The segment files in `dir`, oldest first. Other files are left alone.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SpoolError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else { continue };
        match stem.parse::<u64>() {
            Ok(first) if stem.len() == 20 => found.push((first, entry.path())),
            _ => tracing::warn!(path = %entry.path().display(), "spool: ignoring a file that is not a segment"),
        }
    }
    found.sort();
    Ok(found)
}

/// Cuts a segment at its last good frame, durably: the repair must not come undone.
fn truncate(path: &Path, len: u64) -> Result<(), SpoolError> {
    let file = OpenOptions::new().write(true).open(path).map_err(|e| io_err(path, e))?;
    file.set_len(len).and_then(|()| file.sync_all()).map_err(|e| io_err(path, e))
}
