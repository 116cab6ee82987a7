//! The cursor file: the next seq and which seqs are acked, written atomically (tmp file + rename).
//!
//! JSON, so an operator can read it. A cursor that is unreadable or inconsistent is reported and
//! replaced by a fresh one: every record on disk is then pending again. Duplicates are possible,
//! loss is not.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{io_err, SpoolError};

const NAME: &str = "cursor";
const TMP: &str = "cursor.tmp";

/// The ack state as persisted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Cursor {
    /// The seq the next append gets; never reused.
    pub next_seq: u64,
    /// Every seq below this is acked.
    pub acked_below: u64,
    /// Acked seqs at or above `acked_below`, sorted.
    pub acked: Vec<u64>,
    /// The highest seq a replay has handed to Kafka (see `Spool::mark_replaying`).
    #[serde(default)]
    pub replay_mark: Option<u64>,
    /// Write-ahead mode: per topic and partition, an offset at or below that of every event
    /// acknowledged by Kafka but not yet acked here; recovery reads from there.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub offsets: Offsets,
}

/// Topic → partition → offset.
pub type Offsets = BTreeMap<String, BTreeMap<i32, i64>>;

impl Cursor {
    /// Whether `seq` is acked according to this cursor.
    pub fn is_acked(&self, seq: u64) -> bool {
        seq < self.acked_below || self.acked.binary_search(&seq).is_ok()
    }

    /// Builds the cursor for the given state; `acked` is trimmed to seqs at or above `acked_below`.
    pub fn of(next_seq: u64, acked_below: u64, acked: &BTreeSet<u64>, replay_mark: Option<u64>, offsets: &Offsets) -> Cursor {
        let acked = acked.range(acked_below..).copied().collect();
        Cursor { next_seq, acked_below, acked, replay_mark, offsets: offsets.clone() }
    }

    fn check(&self) -> Result<(), String> {
        if self.acked_below > self.next_seq {
            return Err(format!("acked_below {} is above next_seq {}", self.acked_below, self.next_seq));
        }
        if !self.acked.windows(2).all(|w| w[0] < w[1]) {
            return Err("acked is not strictly increasing".into());
        }
        match (self.acked.first(), self.acked.last()) {
            (Some(&lo), Some(&hi)) if lo < self.acked_below || hi >= self.next_seq => {
                Err(format!("acked runs from {lo} to {hi}, outside {}..{}", self.acked_below, self.next_seq))
            }
            _ => Ok(()),
        }
    }
}

pub(super) fn path(dir: &Path) -> PathBuf {
    dir.join(NAME)
}

/// Removes a `cursor.tmp` left by a crash between write and rename.
pub(super) fn remove_stray_tmp(dir: &Path) -> Result<(), SpoolError> {
    let tmp = dir.join(TMP);
    match fs::remove_file(&tmp) {
        Ok(()) => {
            tracing::warn!(path = %tmp.display(), "spool: removed a stray cursor.tmp");
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(&tmp, e)),
    }
}

/// Reads the cursor; a missing one is fresh, and so (logged as an error) is a garbage one.
pub(super) fn load(dir: &Path) -> Result<Cursor, SpoolError> {
    let path = path(dir);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Cursor::default()),
        Err(e) => return Err(io_err(&path, e)),
    };
    let parsed = serde_json::from_slice::<Cursor>(&bytes).map_err(|e| e.to_string());
    match parsed.and_then(|c| c.check().map(|()| c)) {
        Ok(cursor) => Ok(cursor),
        Err(reason) => {
            tracing::error!(
                path = %path.display(),
                reason,
                "spool: cursor file is corrupt; treating every record on disk as pending (duplicates possible)"
            );
            Ok(Cursor::default())
        }
    }
}

/// Writes the cursor atomically; with `durable`, fsyncs the file before and the directory after
/// the rename.
pub(super) fn store(dir: &Path, cursor: &Cursor, durable: bool) -> Result<(), SpoolError> {
    let tmp = dir.join(TMP);
    let bytes = serde_json::to_vec(cursor).map_err(|e| SpoolError::Encode { reason: e.to_string() })?;
    let mut file = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    file.write_all(&bytes).map_err(|e| io_err(&tmp, e))?;
    if durable {
        file.sync_all().map_err(|e| io_err(&tmp, e))?;
    }
    drop(file);
    let path = path(dir);
    fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
    if durable {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Fsyncs the cursor file and the directory (for `Fsync::Every`, after non-durable stores).
pub(super) fn sync(dir: &Path) -> Result<(), SpoolError> {
    let path = path(dir);
    match File::open(&path) {
        Ok(file) => file.sync_all().map_err(|e| io_err(&path, e))?,
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&path, e)),
    }
    sync_dir(dir)
}

/// Fsyncs a directory, so creations, renames and deletions in it survive power loss.
pub(super) fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_err(dir, e))
}
