//! Traffic assignment as pure functions: which path owns an entity, given the route's mode and share.
//!
//! `owner = bucket(salt, key) < share ? new : legacy`, where `bucket` is a stable hash in
//! 0..10000. Sticky (same inputs, same owner, on every replica and version) and monotone
//! (raising the share only moves entities legacy → new).

use sha2::{Digest, Sha256};

use crate::event::Owner;

/// Basis points in a whole.
pub const WHOLE: u32 = 10_000;

/// How a route treats its traffic (ARCHITECTURE §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Forward only; nothing verified beyond the route match, nothing published.
    Passthrough,
    /// The monolith owns everything; events are published as `shadow`.
    Shadow,
    /// `share` of entities are owned by the new path.
    Split,
    /// The new path owns everything.
    Cutover,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Passthrough => "passthrough",
            Mode::Shadow => "shadow",
            Mode::Split => "split",
            Mode::Cutover => "cutover",
        }
    }
}

/// A share of entities in basis points (0–10000), configured as a percent with two decimals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Share(u32);

impl Share {
    pub const ZERO: Share = Share(0);
    pub const ALL: Share = Share(WHOLE);

    /// `25` or `12.5` or `0.01` percent; more than two decimals or outside 0–100 is an error.
    pub fn from_percent(percent: f64) -> Result<Self, String> {
        let bp = percent * 100.0;
        if !(0.0..=100.0).contains(&percent) || (bp - bp.round()).abs() > 1e-6 {
            return Err(format!("{percent}"));
        }
        Ok(Share(bp.round() as u32))
    }

    pub fn from_bp(bp: u32) -> Option<Self> {
        (bp <= WHOLE).then_some(Share(bp))
    }

    pub fn bp(self) -> u32 {
        self.0
    }

    pub fn percent(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

/// Stable bucket of an entity in 0..10000: SHA-256 of `salt`, a NUL, and `key`.
pub fn bucket(salt: &str, key: &str) -> u32 {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(WHOLE)) as u32
}

/// Who owns the entity `key` on a route in `mode` at `share`.
pub fn assign(mode: Mode, salt: &str, key: &str, share: Share) -> Owner {
    match mode {
        Mode::Passthrough | Mode::Shadow => Owner::Legacy,
        Mode::Cutover => Owner::New,
        Mode::Split if bucket(salt, key) < share.bp() => Owner::New,
        Mode::Split => Owner::Legacy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<String> {
        // Deterministic "random" keys: ULID-like strings from a simple LCG.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                format!("cust_{x:016x}")
            })
            .collect()
    }

    fn new_share(share: Share, keys: &[String]) -> f64 {
        let n = keys.iter().filter(|k| assign(Mode::Split, "route-salt", k, share) == Owner::New).count();
        n as f64 / keys.len() as f64
    }

    #[test]
    fn shares_hit_their_target_within_one_percent() {
        let keys = keys(10_000);
        for (percent, expected) in [(25.0, 0.25), (30.0, 0.30), (60.0, 0.60), (2.5, 0.025), (99.99, 0.9999)] {
            let got = new_share(Share::from_percent(percent).unwrap(), &keys);
            assert!((got - expected).abs() <= 0.01, "{percent}%: {got}");
        }
    }

    #[test]
    fn zero_and_all_are_exact() {
        let keys = keys(10_000);
        assert_eq!(new_share(Share::ZERO, &keys), 0.0);
        assert_eq!(new_share(Share::ALL, &keys), 1.0);
    }

    #[test]
    fn raising_the_share_only_moves_entities_from_legacy_to_new() {
        let keys = keys(10_000);
        let steps = [0.0, 1.0, 5.0, 25.0, 30.0, 60.0, 99.5, 100.0].map(|p| Share::from_percent(p).unwrap());
        for pair in steps.windows(2) {
            for k in &keys {
                let before = assign(Mode::Split, "s", k, pair[0]);
                let after = assign(Mode::Split, "s", k, pair[1]);
                assert!(!(before == Owner::New && after == Owner::Legacy), "{k} moved back at {:?}", pair);
            }
        }
    }

    #[test]
    fn assignment_is_sticky_and_depends_on_the_salt() {
        let keys = keys(1_000);
        let share = Share::from_percent(50.0).unwrap();
        for k in &keys {
            assert_eq!(assign(Mode::Split, "a", k, share), assign(Mode::Split, "a", k, share));
        }
        let differ = keys.iter().filter(|k| assign(Mode::Split, "a", k, share) != assign(Mode::Split, "b", k, share)).count();
        assert!(differ > 300, "another salt reshuffles entities: {differ}");
        assert_eq!(bucket("github", "acme/widgets"), bucket("github", "acme/widgets"));
    }

    #[test]
    fn modes_other_than_split_ignore_the_share() {
        for k in keys(100) {
            assert_eq!(assign(Mode::Shadow, "s", &k, Share::ALL), Owner::Legacy);
            assert_eq!(assign(Mode::Passthrough, "s", &k, Share::ALL), Owner::Legacy);
            assert_eq!(assign(Mode::Cutover, "s", &k, Share::ZERO), Owner::New);
        }
    }

    #[test]
    fn shares_parse_as_percent_with_two_decimals() {
        assert_eq!(Share::from_percent(25.0).unwrap().bp(), 2500);
        assert_eq!(Share::from_percent(12.34).unwrap().bp(), 1234);
        assert_eq!(Share::from_percent(0.01).unwrap().bp(), 1);
        for bad in [100.01, -1.0, 12.345, f64::NAN] {
            assert!(Share::from_percent(bad).is_err(), "{bad}");
        }
    }
}
