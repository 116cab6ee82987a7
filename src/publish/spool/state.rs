//! The spool's state behind its lock: segments, un-acked records and acks, and the file operations
//! that change them (append, rotate, evict, delete, sync).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::frame::{self, Pending};
use super::{cursor, io_err, Entry, SpoolError};

/// One segment file, `<first seq, 20 digits>.seg`.
pub(super) struct Segment {
    pub path: PathBuf,
    /// Bytes of valid frames in the file.
    pub bytes: u64,
    /// Un-acked records in it.
    pub pending: u64,
    /// Open for appending: only the newest segment, and only while it takes appends.
    pub file: Option<File>,
}

/// An un-acked record: where its frame is.
#[derive(Clone, Copy, Debug)]
pub(super) struct Record {
    pub seq: u64,
    /// The segment's key (its first seq).
    pub segment: u64,
    pub offset: u64,
    pub len: u64,
    pub spooled_at_ms: u64,
}

pub(super) struct State {
    pub dir: PathBuf,
    /// `Fsync::Always`: every write is synced before it returns.
    pub durable: bool,
    pub segments: BTreeMap<u64, Segment>,
    /// Un-acked records in seq order.
    pub records: VecDeque<Record>,
    pub next_seq: u64,
    /// Acked seqs at or above the oldest un-acked one.
    pub acked: BTreeSet<u64>,
    pub replay_mark: Option<u64>,
    /// Write-ahead: where recovery reads each partition from (see `cursor::Cursor::offsets`).
    pub offsets: cursor::Offsets,
    /// Sum of the segments' bytes.
    pub bytes: u64,
    /// The active segment was written since its last fsync.
    pub dirty_data: bool,
    /// The cursor or the directory changed since their last fsync.
    pub dirty_meta: bool,
}

pub(super) fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.seg"))
}

impl State {
    /// Every seq below this is acked (or gone).
    pub fn acked_below(&self) -> u64 {
        self.records.front().map_or(self.next_seq, |r| r.seq)
    }

    /// Writes the cursor (durably under `Fsync::Always`).
    pub fn store_cursor(&mut self) -> Result<(), SpoolError> {
        let below = self.acked_below();
        self.acked = self.acked.split_off(&below);
        let c = cursor::Cursor::of(self.next_seq, below, &self.acked, self.replay_mark, &self.offsets);
        cursor::store(&self.dir, &c, self.durable)?;
        self.dirty_meta |= !self.durable;
        Ok(())
    }

    fn active_mut(&mut self) -> Option<&mut Segment> {
        self.segments.values_mut().next_back().filter(|s| s.file.is_some())
    }

    /// Stops appending to the active segment, syncing what it has not synced yet.
    pub fn close_active(&mut self) -> Result<(), SpoolError> {
        let dirty = self.dirty_data;
        if let Some(seg) = self.active_mut() {
            if let Some(file) = seg.file.as_ref().filter(|_| dirty) {
                file.sync_data().map_err(|e| io_err(&seg.path, e))?;
            }
            seg.file = None;
        }
        self.dirty_data = false;
        Ok(())
    }

    fn create_active(&mut self, first: u64) -> Result<(), SpoolError> {
        let path = segment_path(&self.dir, first);
        let file = OpenOptions::new().create_new(true).append(true).open(&path).map_err(|e| io_err(&path, e))?;
        if self.durable {
            cursor::sync_dir(&self.dir)?;
        } else {
            self.dirty_meta = true;
        }
        self.segments.insert(first, Segment { path, bytes: 0, pending: 0, file: Some(file) });
        Ok(())
    }

    /// Appends a frame (the caller made room for it) and returns its seq. On failure the segment
    /// is cut back to its last good frame and abandoned: the next append starts a new one.
    /// With `sync_now` false a durable spool leaves the fsync to [`State::sync_active`] (group
    /// commit: one fsync for a batch).
    pub fn append_with(
        &mut self,
        frame: &mut Pending,
        spooled_at_ms: u64,
        segment_bytes: u64,
        sync_now: bool,
    ) -> Result<u64, SpoolError> {
        let len = frame.len();
        if self.active_mut().is_some_and(|s| s.bytes > 0 && s.bytes + len > segment_bytes) {
            self.close_active()?;
        }
        // Burnt even if the write fails, so a half-created segment's name is never reused.
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.active_mut().is_none() {
            self.create_active(seq)?;
        }
        let durable = self.durable && sync_now;
        let Some((&segment, seg)) = self.segments.iter_mut().next_back().filter(|(_, s)| s.file.is_some()) else {
            return Err(io_err(&self.dir, std::io::Error::other("the active segment disappeared")));
        };
        let offset = seg.bytes;
        let written = match seg.file.as_mut() {
            Some(file) => file.write_all(frame.seal(seq)).and_then(|()| if durable { file.sync_data() } else { Ok(()) }),
            None => Err(std::io::Error::other("the active segment is closed")),
        };
        if let Err(e) = written {
            let err = io_err(&seg.path, e);
            if let Some(file) = seg.file.take() {
                if let Err(cut) = file.set_len(offset).and_then(|()| file.sync_all()) {
                    tracing::error!(path = %seg.path.display(), error = %cut, "spool: cannot cut back a failed write");
                }
            }
            let empty = seg.pending == 0;
            self.dirty_data = false;
            if empty {
                if let Err(e) = self.remove_segment(segment) {
                    tracing::error!(error = %e, "spool: cannot remove an abandoned segment");
                }
            }
            return Err(err);
        }
        seg.bytes += len;
        seg.pending += 1;
        self.bytes += len;
        self.records.push_back(Record { seq, segment, offset, len, spooled_at_ms });
        self.dirty_data |= !durable;
        Ok(seq)
    }

    /// Fsyncs the active segment now if it was written since its last sync (durable spools).
    pub fn sync_active(&mut self) -> Result<(), SpoolError> {
        if !self.dirty_data {
            return Ok(());
        }
        if let Some(seg) = self.segments.values().next_back() {
            if let Some(file) = &seg.file {
                file.sync_data().map_err(|e| io_err(&seg.path, e))?;
            }
        }
        self.dirty_data = false;
        Ok(())
    }

    /// Deletes a segment file and forgets it (its records must already be out of `records`).
    pub fn remove_segment(&mut self, first: u64) -> Result<(), SpoolError> {
        let Some(seg) = self.segments.get(&first) else { return Ok(()) };
        match fs::remove_file(&seg.path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&seg.path, e)),
        }
        if seg.file.is_some() {
            self.dirty_data = false;
        }
        self.bytes = self.bytes.saturating_sub(seg.bytes);
        self.segments.remove(&first);
        self.dirty_meta |= !self.durable;
        Ok(())
    }

    /// Deletes the oldest segment (the active one too, when it is the only one: the next append
    /// then starts a new segment) and returns the un-acked entries it held, oldest first.
    pub fn evict_oldest(&mut self) -> Result<Vec<Entry>, SpoolError> {
        let Some(first) = self.segments.keys().next().copied() else { return Ok(Vec::new()) };
        let n = self.records.iter().take_while(|r| r.segment == first).count();
        let frames = self.read_frames(n)?;
        let mut entries = Vec::with_capacity(frames.len());
        for (seq, _, bytes) in frames {
            match frame::decode(&bytes) {
                Ok((_, entry)) => entries.push(entry),
                Err(reason) => tracing::error!(seq, reason, "spool: evicted record was unreadable"),
            }
        }
        self.records.drain(..n);
        self.remove_segment(first)?;
        let below = self.acked_below();
        self.acked = self.acked.split_off(&below);
        Ok(entries)
    }

    /// Reads the frames of the `max` oldest un-acked records: `(seq, segment, frame bytes)`.
    pub fn read_frames(&self, max: usize) -> Result<Vec<(u64, u64, Vec<u8>)>, SpoolError> {
        let mut out = Vec::with_capacity(max.min(self.records.len()));
        let mut open: Option<(u64, File)> = None;
        for r in self.records.iter().take(max) {
            let path = segment_path(&self.dir, r.segment);
            if open.as_ref().map(|(key, _)| *key) != Some(r.segment) {
                open = Some((r.segment, File::open(&path).map_err(|e| io_err(&path, e))?));
            }
            let Some((_, file)) = open.as_mut() else { continue };
            let len = usize::try_from(r.len).map_err(|_| io_err(&path, std::io::Error::other("frame too large")))?;
            let mut bytes = vec![0u8; len];
            file.seek(SeekFrom::Start(r.offset)).and_then(|_| file.read_exact(&mut bytes)).map_err(|e| io_err(&path, e))?;
            out.push((r.seq, r.segment, bytes));
        }
        Ok(out)
    }

    /// Acks `seqs`; returns whether any was pending. Writes the cursor, then deletes segments
    /// left with nothing pending (the active one only once nothing at all is pending).
    pub fn ack(&mut self, seqs: &[u64]) -> Result<bool, SpoolError> {
        let mut touched = BTreeSet::new();
        for &seq in seqs {
            let Ok(i) = self.records.binary_search_by_key(&seq, |r| r.seq) else { continue };
            let Some(r) = self.records.remove(i) else { continue };
            if let Some(seg) = self.segments.get_mut(&r.segment) {
                seg.pending = seg.pending.saturating_sub(1);
            }
            self.acked.insert(seq);
            touched.insert(r.segment);
        }
        if touched.is_empty() {
            return Ok(false);
        }
        self.store_cursor()?;
        let all_acked = self.records.is_empty();
        if all_acked {
            // The active segment may have been drained by an earlier call.
            touched.extend(self.segments.keys().copied());
        }
        for first in touched {
            let done = self.segments.get(&first).is_some_and(|s| s.pending == 0 && (s.file.is_none() || all_acked));
            if done {
                self.remove_segment(first)?;
            }
        }
        Ok(true)
    }

    /// Fsyncs the active segment and the cursor if they changed since the last sync.
    /// What [`super::Spool::sync`] must flush, taken under the lock so the flush itself runs
    /// outside it: a clone of the active segment's handle if data was written, and whether the
    /// directory changed. The dirty flags are cleared; [`State::redirty`] restores them on failure.
    pub fn take_sync(&mut self) -> Result<(Option<(PathBuf, File)>, bool), SpoolError> {
        let mut data = None;
        if self.dirty_data {
            if let Some(seg) = self.segments.values().next_back() {
                if let Some(file) = &seg.file {
                    data = Some((seg.path.clone(), file.try_clone().map_err(|e| io_err(&seg.path, e))?));
                }
            }
            self.dirty_data = false;
        }
        Ok((data, std::mem::take(&mut self.dirty_meta)))
    }

    /// Marks everything as needing a sync again (a sync failed).
    pub fn redirty(&mut self) {
        self.dirty_data = true;
        self.dirty_meta = true;
    }
}
