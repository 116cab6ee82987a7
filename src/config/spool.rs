//! Validation of `[spool]`: a directory, a size bound, an fsync policy and what to do when full.

use std::path::PathBuf;
use std::time::Duration;

use super::raw::RawSpool;
use super::ConfigError;
use crate::publish::spool::{Fsync, Settings, WhenFull};

/// The smallest spool worth having: a few events of typical size.
const MIN_BYTES: u64 = 64 * 1024;

/// Checks `[spool]`; pushes one error per bad key.
pub(super) fn validate(raw: &RawSpool, errs: &mut Vec<ConfigError>) -> Option<Settings> {
    let before = errs.len();
    if raw.dir.trim().is_empty() {
        errs.push(ConfigError::new("spool.dir", "a directory path", "an empty string"));
    }
    if raw.max_bytes < MIN_BYTES {
        errs.push(ConfigError::new("spool.max_bytes", format!("at least {MIN_BYTES} bytes"), raw.max_bytes.to_string()));
    }
    let fsync = fsync(&raw.fsync);
    if fsync.is_none() {
        let expected = "\"always\", or an interval in milliseconds such as \"100ms\" (1 to 60000)";
        errs.push(ConfigError::new("spool.fsync", expected, format!("`{}`", raw.fsync)));
    }
    let when_full = match raw.when_full.as_str() {
        "drop_newest" => Some(WhenFull::DropNewest),
        "drop_oldest" => Some(WhenFull::DropOldest),
        other => {
            errs.push(ConfigError::new("spool.when_full", "\"drop_newest\" or \"drop_oldest\"", format!("`{other}`")));
            None
        }
    };
    if errs.len() > before {
        return None;
    }
    Some(Settings {
        dir: PathBuf::from(&raw.dir),
        max_bytes: raw.max_bytes,
        fsync: fsync?,
        when_full: when_full?,
        write_ahead: raw.write_ahead,
    })
}

fn fsync(s: &str) -> Option<Fsync> {
    if s == "always" {
        return Some(Fsync::Always);
    }
    let ms: u64 = s.strip_suffix("ms")?.parse().ok()?;
    (1..=60_000).contains(&ms).then(|| Fsync::Every(Duration::from_millis(ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(fsync: &str, when_full: &str, max_bytes: u64) -> RawSpool {
        RawSpool {
            dir: "/var/lib/strangler/spool".into(),
            max_bytes,
            fsync: fsync.into(),
            when_full: when_full.into(),
            write_ahead: false,
        }
    }

    #[test]
    fn accepts_both_fsync_policies_and_both_full_policies() {
        let mut errs = Vec::new();
        let s = validate(&raw("always", "drop_oldest", 1 << 20), &mut errs).unwrap();
        assert_eq!((s.fsync, s.when_full), (Fsync::Always, WhenFull::DropOldest));
        let s = validate(&raw("250ms", "drop_newest", 1 << 20), &mut errs).unwrap();
        assert_eq!((s.fsync, s.when_full), (Fsync::Every(Duration::from_millis(250)), WhenFull::DropNewest));
        assert!(errs.is_empty());
    }

    #[test]
    fn names_each_bad_key() {
        let mut errs = Vec::new();
        assert!(validate(&raw("sometimes", "block", 10), &mut errs).is_none());
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["spool.max_bytes", "spool.fsync", "spool.when_full"]);
        for bad in ["0ms", "100", "100s", "61000ms"] {
            assert_eq!(fsync(bad), None, "{bad}");
        }
    }
}
