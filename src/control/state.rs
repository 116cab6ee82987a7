//! Route state: what an operator, the guard or a rollout dials, kept apart from the route's
//! configuration. One versioned value per route, swapped whole, loaded once per request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::route::assign::{Mode, Share};

/// Who made a change: a token's name, or `guard`, `rollout`, `reload`, `config`.
pub type Actor = String;

/// A route's dial: one value, replaced whole. `version` is 0 for the configuration's initial
/// state, else the control-topic offset (+1) of the record that set it, the same on every replica.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DialState {
    pub mode: Mode,
    #[serde(with = "share_percent", rename = "share_percent")]
    pub share: Share,
    pub version: u64,
    pub by: Actor,
    pub reason: String,
    #[serde(with = "rfc3339")]
    pub at: SystemTime,
    /// The progressive rollout is paused (a manual dial or a guard trip pauses it).
    #[serde(default)]
    pub rollout_paused: bool,
    /// The guard tripped and has not been cleared (a manual dial or `rollout/resume` clears it).
    #[serde(default)]
    pub guard_tripped: bool,
}

impl DialState {
    /// The state a route starts from when the control topic holds no record for it; `at` is
    /// when this process took it from the file (a rollout's first interval counts from there).
    pub fn initial(mode: Mode, share: Share) -> Self {
        Self {
            mode,
            share,
            version: 0,
            by: "config".into(),
            reason: "initial state from the configuration file".into(),
            at: SystemTime::now(),
            rollout_paused: false,
            guard_tripped: false,
        }
    }

    /// The share of entities the new path owns in effect: 0 in passthrough/shadow, all in cutover.
    pub fn effective_share(&self) -> Share {
        match self.mode {
            Mode::Passthrough | Mode::Shadow => Share::ZERO,
            Mode::Split => self.share,
            Mode::Cutover => Share::ALL,
        }
    }
}

/// A wanted change of one route's dial, as the API, the guard or the rollout asks for it.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub route: String,
    pub mode: Mode,
    pub share: Share,
    pub by: Actor,
    pub reason: String,
    /// Applied only if this is the version in force when the record is read back.
    pub expected_version: Option<u64>,
    pub rollout_paused: bool,
    pub guard_tripped: bool,
}

/// Every route's dial, shared by the request path, the API, the guard and the rollout.
#[derive(Default)]
pub struct Dials {
    by_route: ArcSwap<HashMap<String, Arc<DialState>>>,
}

impl Dials {
    /// The state of `route`, if it has one.
    pub fn get(&self, route: &str) -> Option<Arc<DialState>> {
        self.by_route.load().get(route).cloned()
    }

    /// Replaces one route's state (copy-on-write of the small map; writes are rare).
    pub fn set(&self, route: &str, state: DialState) {
        let state = Arc::new(state);
        self.by_route.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.insert(route.to_string(), state.clone());
            map
        });
    }

    /// Gives `route` its initial state unless it already has one (a reload never resets a dial).
    pub fn init(&self, route: &str, initial: DialState) {
        if self.get(route).is_none() {
            self.set(route, initial);
        }
    }

    /// All routes' states.
    pub fn all(&self) -> Arc<HashMap<String, Arc<DialState>>> {
        self.by_route.load_full()
    }
}

/// `Duration` helper for specs that print as humantime (`"5m"`).
pub fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

pub(crate) mod share_percent {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::route::assign::Share;

    pub fn serialize<S: Serializer>(share: &Share, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(share.percent())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Share, D::Error> {
        let percent = f64::deserialize(d)?;
        Share::from_percent(percent).map_err(|found| serde::de::Error::custom(format!("share_percent {found} out of range")))
    }
}

pub(crate) mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_rfc3339_millis(*at).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }
}
