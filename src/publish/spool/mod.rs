//! The spool: a bounded, checksummed on-disk log for events Kafka cannot take right now.
//!
//! The publisher [`Spool::append`]s an entry while Kafka is down; the replayer later reads the
//! oldest [`Spool::pending`] entries in order, publishes them and [`Spool::ack`]s them.
//!
//! # On disk
//!
//! - `dir/<first seq, 20 digits>.seg`: segments of frames `u32 LE len | u32 LE crc32 | payload`,
//!   payload = `u64 LE seq` + postcard of the [`Entry`]. Appends go to the newest
//!   segment; a new one starts when it would pass `clamp(max_bytes / 8, 4 KiB, 64 MiB)`.
//! - `dir/cursor`: JSON `{next_seq, acked_below, acked, replay_mark}`, replaced atomically.
//! - `dir/LOCK`: held with an exclusive advisory lock while a process has the spool open.
//!
//! # Durability
//!
//! An entry survives the death of the process once `append` returns (written straight to the
//! file). It survives power loss once synced: at once under [`Fsync::Always`], after the next
//! [`Spool::sync`] under [`Fsync::Every`]. On open, the first short, mis-checksummed or
//! undecodable frame of a segment is cut off with everything after it in that segment.
//!
//! A garbage cursor is logged as an error and replaced by a fresh one: every record still on
//! disk is then pending again. Duplicates are possible; loss is not.

mod cursor;
mod frame;
mod recover;
mod state;
#[cfg(test)]
mod tests;
mod wal;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use cursor::Offsets;
use state::State;
pub use wal::AckedAt;

/// One spooled event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub route: String,
    /// The event id.
    pub id: String,
    pub topic: String,
    pub key: String,
    pub headers: Vec<(String, String)>,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    /// Kafka may already hold it: the replayer checks before resending.
    pub possibly_persisted: bool,
    pub partition: Option<i32>,
    /// Unix epoch millis, set by the caller.
    pub spooled_at_ms: u64,
    /// The publisher's publish order, so a replay batch can restore it.
    pub order: u64,
}

/// Why [`Spool::health`] says the spool cannot take events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpoolHealth {
    /// At or above 95 % of `max_bytes`.
    Full,
    /// The last append failed, or the directory cannot be written.
    Unwritable,
}

/// When appended data is fsynced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fsync {
    /// After every append and cursor write.
    Always,
    /// Only by [`Spool::sync`], which the caller runs on this interval.
    Every(Duration),
}

/// What an append does when the spool is full.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WhenFull {
    /// Refuse the new entry with [`SpoolError::Full`].
    DropNewest,
    /// Delete the oldest segments until the new entry fits; their entries are returned as evicted.
    DropOldest,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub dir: PathBuf,
    /// Bound on the on-disk bytes of all segments.
    pub max_bytes: u64,
    pub fsync: Fsync,
    pub when_full: WhenFull,
    /// `spool.write_ahead`: every shadow event is appended before the sender is answered.
    pub write_ahead: bool,
}

/// What [`Spool::open`] found, after repair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    /// Pending (un-acked) records.
    pub records: u64,
    /// On-disk bytes of the segments.
    pub bytes: u64,
    /// Segments cut at a torn or corrupt frame.
    pub torn_tails: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Appended {
    pub seq: u64,
    /// Un-acked entries deleted to make room (`DropOldest` only), oldest first. They are lost.
    pub evicted: Vec<Entry>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// On-disk bytes of all segment files.
    pub bytes: u64,
    /// Un-acked entries.
    pub records: u64,
    /// `spooled_at_ms` of the oldest un-acked entry.
    pub oldest_spooled_at_ms: Option<u64>,
}

#[derive(thiserror::Error, Debug)]
pub enum SpoolError {
    #[error("spool full: a frame of {needed} bytes does not fit in max_bytes = {max_bytes}")]
    Full { needed: u64, max_bytes: u64 },
    #[error("spool i/o on {}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("spool entry cannot be encoded: {reason}")]
    Encode { reason: String },
    #[error("spool segment {} is corrupt: {reason}", .path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("spool directory {} is in use by another strangler process (each replica needs its own spool.dir)", .dir.display())]
    InUse { dir: PathBuf },
}

/// Creates `dir` if needed and takes its `LOCK` file exclusively, so two processes never share it.
fn lock_dir(dir: &Path) -> Result<std::fs::File, SpoolError> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let path = dir.join("LOCK");
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| io_err(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(SpoolError::InUse { dir: dir.to_path_buf() }),
        Err(std::fs::TryLockError::Error(e)) => Err(io_err(&path, e)),
    }
}

fn io_err(path: &Path, source: std::io::Error) -> SpoolError {
    SpoolError::Io { path: path.to_path_buf(), source }
}

/// The spool. All methods take `&self`; the lock is held only for bookkeeping and file I/O.
pub struct Spool {
    settings: Settings,
    segment_bytes: u64,
    state: Mutex<State>,
    /// Un-acked entries, for a lock-free [`Spool::is_empty`].
    records: AtomicU64,
    /// The last append failed on I/O (cleared by the next one that succeeds).
    write_failed: std::sync::atomic::AtomicBool,
    /// Held open with an exclusive advisory lock: one process per spool directory.
    _lock: std::fs::File,
}

impl Spool {
    /// Opens (creating if needed) the spool in `settings.dir`, repairing torn tails.
    pub fn open(settings: Settings) -> Result<(Spool, Opened), SpoolError> {
        let lock = lock_dir(&settings.dir)?;
        let (state, torn_tails) = recover::recover(&settings.dir, settings.fsync == Fsync::Always)?;
        let opened = Opened { records: state.records.len() as u64, bytes: state.bytes, torn_tails };
        let segment_bytes = (settings.max_bytes / 8).clamp(4096, 64 << 20);
        let records = AtomicU64::new(opened.records);
        let write_failed = Default::default();
        let spool = Spool { settings, segment_bytes, records, write_failed, state: Mutex::new(state), _lock: lock };
        Ok((spool, opened))
    }

    /// Appends `entry`; it survives the process's death once this returns.
    pub fn append(&self, entry: &Entry) -> Result<Appended, SpoolError> {
        let mut st = self.lock();
        let appended = self.append_locked(&mut st, entry, true);
        self.records.store(st.records.len() as u64, Ordering::Release);
        drop(st);
        self.write_failed.store(matches!(appended, Err(SpoolError::Io { .. })), Ordering::Release);
        appended
    }

    /// Appends one entry under the lock; with `sync_now` false a durable spool defers the fsync
    /// to the caller (group commit).
    fn append_locked(&self, st: &mut State, entry: &Entry, sync_now: bool) -> Result<Appended, SpoolError> {
        let mut frame = frame::encode(entry)?;
        let needed = frame.len();
        let max_bytes = self.settings.max_bytes;
        let full = SpoolError::Full { needed, max_bytes };
        if needed > max_bytes {
            return Err(full);
        }
        let mut evicted = Vec::new();
        let lost = |evicted: &[Entry]| {
            for lost in evicted {
                tracing::error!(route = %lost.route, event_id = %lost.id, "spool: entry evicted before a failed append");
            }
        };
        while st.bytes + needed > max_bytes {
            if self.settings.when_full == WhenFull::DropNewest || st.segments.is_empty() {
                return Err(full);
            }
            match st.evict_oldest() {
                Ok(gone) => evicted.extend(gone),
                Err(e) => {
                    lost(&evicted);
                    return Err(e);
                }
            }
        }
        match st.append_with(&mut frame, entry.spooled_at_ms, self.segment_bytes, sync_now) {
            Ok(seq) => Ok(Appended { seq, evicted }),
            Err(e) => {
                lost(&evicted);
                Err(e)
            }
        }
    }

    /// The oldest un-acked entries, in seq (append) order, at most `max`.
    pub fn pending(&self, max: usize) -> Result<Vec<(u64, Entry)>, SpoolError> {
        let frames = self.lock().read_frames(max)?;
        let mut out = Vec::with_capacity(frames.len());
        for (seq, segment, bytes) in frames {
            let corrupt = |reason: String| SpoolError::Corrupt {
                path: state::segment_path(&self.settings.dir, segment),
                reason: format!("record {seq}: {reason}"),
            };
            let (found, entry) = frame::decode(&bytes).map_err(corrupt)?;
            if found != seq {
                return Err(corrupt(format!("holds seq {found}")));
            }
            out.push((seq, entry));
        }
        Ok(out)
    }

    /// Acks `seqs` (any order; idempotent; unknown seqs are ignored) and persists the cursor.
    pub fn ack(&self, seqs: &[u64]) -> Result<(), SpoolError> {
        let mut st = self.lock();
        let acked = st.ack(seqs);
        self.records.store(st.records.len() as u64, Ordering::Release);
        acked.map(|_| ())
    }

    pub fn stats(&self) -> Stats {
        let st = self.lock();
        Stats {
            bytes: st.bytes,
            records: st.records.len() as u64,
            oldest_spooled_at_ms: st.records.front().map(|r| r.spooled_at_ms),
        }
    }

    /// No un-acked entries.
    pub fn is_empty(&self) -> bool {
        self.records.load(Ordering::Acquire) == 0
    }

    /// Fsyncs the active segment and the cursor if anything was written since the last sync.
    /// The lock is held only to find what to flush, so appends never wait for the disk.
    pub fn sync(&self) -> Result<(), SpoolError> {
        let (data, meta) = self.lock().take_sync()?;
        let flushed = data.map_or(Ok(()), |(path, file)| file.sync_data().map_err(|e| io_err(&path, e))).and_then(|()| {
            if meta {
                cursor::sync(&self.settings.dir)
            } else {
                Ok(())
            }
        });
        if flushed.is_err() {
            self.lock().redirty();
        }
        flushed
    }

    /// Why the spool could not take an event now, if it could not: filled to 95 % of
    /// `max_bytes`, its last append failed on I/O, or a probe file cannot be written in its
    /// directory. For readiness.
    pub fn health(&self) -> Result<(), SpoolHealth> {
        let bytes = self.lock().bytes;
        if bytes.saturating_mul(100) >= self.settings.max_bytes.saturating_mul(95) {
            return Err(SpoolHealth::Full);
        }
        if self.write_failed.load(Ordering::Acquire) {
            return Err(SpoolHealth::Unwritable);
        }
        let probe = self.settings.dir.join("probe");
        let written = std::fs::write(&probe, b"ok").and_then(|()| std::fs::remove_file(&probe));
        written.map_err(|e| {
            tracing::warn!(path = %probe.display(), error = %e, "spool directory not writable");
            SpoolHealth::Unwritable
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The highest seq a replay has handed to Kafka, in this run or an earlier one: un-acked
    /// entries at or below it may be on Kafka already.
    pub fn replay_mark(&self) -> Option<u64> {
        self.lock().replay_mark
    }

    /// Records, in the cursor, that entries up to `last` are about to be handed to Kafka.
    pub fn mark_replaying(&self, last: u64) -> Result<(), SpoolError> {
        let mut st = self.lock();
        if st.replay_mark.is_some_and(|m| m >= last) {
            return Ok(());
        }
        st.replay_mark = Some(last);
        st.store_cursor()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
