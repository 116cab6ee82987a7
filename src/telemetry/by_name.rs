//! Handles kept per name (a route's metric handles): built once per name, then read without a
//! lock from a copy-on-write map.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

/// Per-name handles, built on first [`ByName::get_or_build`] of each name.
pub struct ByName<T> {
    built: ArcSwap<HashMap<Arc<str>, Arc<T>>>,
    /// Serialises building (rare); lookups never take it.
    building: Mutex<()>,
}

impl<T> Default for ByName<T> {
    fn default() -> Self {
        Self { built: ArcSwap::default(), building: Mutex::new(()) }
    }
}

impl<T> ByName<T> {
    /// The handles of `name`, built by `build` if it has none yet.
    pub fn get_or_build(&self, name: &str, build: impl FnOnce() -> T) -> Arc<T> {
        if let Some(h) = self.built.load().get(name) {
            return h.clone();
        }
        let _building = self.building.lock().unwrap_or_else(|p| p.into_inner());
        let mut map = HashMap::clone(&self.built.load());
        let h = map.entry(name.into()).or_insert_with(|| Arc::new(build())).clone();
        self.built.store(Arc::new(map));
        h
    }

    /// True when `name` has its handles.
    pub fn contains(&self, name: &str) -> bool {
        self.built.load().contains_key(name)
    }
}
