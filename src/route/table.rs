//! The route table in force: which route a request is for, by method and canonical path, and
//! which requests near a route are refused rather than passed through.
//!
//! Three indexes: case-sensitive routes' paths, case-insensitive routes' folded paths, and every
//! path folded (the loose index, for spellings too ambiguous to match). Each holds literal paths
//! in a hash map (the common case: one lookup, no allocation) and templates in a `matchit` router.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderValue, Method};

use super::path::{canonical, fold, loose, loose_may_differ};
use super::template::Template;
use super::Route;

/// What to do with a request, by its method and path.
#[derive(Debug)]
pub enum Resolved {
    /// The request is this route's: verify, publish, assign.
    Route(Arc<Route>),
    /// Forward untouched: to the default upstream, or (a method in `match.other_methods`) to the
    /// route's upstream.
    Pass(Option<Arc<Route>>),
    /// Answer with an error instead (the route is the metric label).
    Refuse(Arc<Route>, Refusal),
}

/// Why a request near a route is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `400 ambiguous_path`.
    AmbiguousPath,
    /// `405 method_not_allowed`, with this `Allow` value.
    MethodNotAllowed(HeaderValue),
}

/// Routes sharing one template (they differ by method).
#[derive(Debug)]
struct Entry {
    routes: Vec<Arc<Route>>,
}

/// Paths to entries: literal paths by hash, templates by `matchit`.
#[derive(Debug, Default)]
struct Index {
    literal: HashMap<String, usize>,
    templates: matchit::Router<usize>,
    has_templates: bool,
}

impl Index {
    fn insert(&mut self, template: &Template, pattern: String, entry: usize) -> Result<(), matchit::InsertError> {
        if template.params().next().is_none() {
            self.literal.insert(pattern, entry);
            return Ok(());
        }
        self.has_templates = true;
        self.templates.insert(pattern, entry)
    }

    fn at(&self, path: &str) -> Option<usize> {
        if let Some(&i) = self.literal.get(path) {
            return Some(i);
        }
        if !self.has_templates {
            return None;
        }
        self.templates.at(path).ok().map(|m| *m.value)
    }

    fn is_empty(&self) -> bool {
        self.literal.is_empty() && !self.has_templates
    }
}

/// Lookup of routes by method and canonical path.
#[derive(Debug, Default)]
pub struct RouteTable {
    in_order: Vec<Arc<Route>>,
    entries: Vec<Entry>,
    strict: Index,
    folded: Index,
    loose: Index,
    /// Some path reads differently loosely (upper case, escapes): every path needs the loose lookup.
    loose_differs: bool,
}

impl RouteTable {
    /// Builds the table; config validation has already refused overlapping templates.
    pub fn new(routes: Vec<Arc<Route>>) -> Self {
        let mut table = Self { in_order: routes.clone(), ..Self::default() };
        let mut by_pattern: HashMap<(bool, String), usize> = HashMap::new();
        for r in &routes {
            let m = &r.matching;
            for t in m.templates() {
                let pattern = if m.case_insensitive { t.folded() } else { t.text.clone() };
                let key = (m.case_insensitive, pattern.clone());
                if let Some(&i) = by_pattern.get(&key) {
                    table.entries[i].routes.push(r.clone());
                    continue;
                }
                let i = table.entries.len();
                table.entries.push(Entry { routes: vec![r.clone()] });
                by_pattern.insert(key, i);
                let index = if m.case_insensitive { &mut table.folded } else { &mut table.strict };
                let loose = t.loose_pattern();
                table.loose_differs |= loose != pattern;
                let inserted = index.insert(t, pattern, i).and_then(|()| table.loose.insert(t, loose, i));
                if let Err(e) = inserted {
                    tracing::error!(route = %r.name, path = %t.text, error = %e, "route path not indexed");
                }
            }
        }
        table
    }

    /// What to do with a request for `method` and `path` (the path of the request target,
    /// whatever its form; the query is not part of it).
    pub fn resolve(&self, method: &Method, path: &str) -> Resolved {
        let c = canonical(path);
        let strict = self.strict_entry(&c.path);
        match strict {
            Some(entry) if !c.ambiguous => return by_method(entry, method),
            // Read strictly it is a route's path, but with e.g. an encoded `/` inside a capture.
            Some(entry) => return ambiguous(entry, method),
            None if !c.ambiguous && !self.loose_differs && !loose_may_differ(path, &c.path) => {
                return Resolved::Pass(None);
            }
            None => {}
        }
        let read_loosely = if c.ambiguous || path.contains('%') { Cow::Owned(loose(path)) } else { fold(&c.path) };
        match self.loose.at(&read_loosely) {
            Some(i) => ambiguous(&self.entries[i], method),
            None => Resolved::Pass(None),
        }
    }

    fn strict_entry(&self, canonical: &str) -> Option<&Entry> {
        let i =
            self.strict.at(canonical).or_else(|| if self.folded.is_empty() { None } else { self.folded.at(&fold(canonical)) })?;
        Some(&self.entries[i])
    }

    /// The route called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Route>> {
        self.in_order.iter().find(|r| r.name == name)
    }

    /// Routes in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.in_order.iter()
    }
}

/// An ambiguous spelling near `entry`: 400, unless the method is passed through anyway.
fn ambiguous(entry: &Entry, method: &Method) -> Resolved {
    match entry.routes.iter().find(|r| r.matching.other_methods.contains(method)) {
        Some(r) => Resolved::Pass(Some(r.clone())),
        None => Resolved::Refuse(entry.routes[0].clone(), Refusal::AmbiguousPath),
    }
}

/// The route for this method on a matched path; else pass through or 405.
fn by_method(entry: &Entry, method: &Method) -> Resolved {
    if let Some(r) = entry.routes.iter().find(|r| r.method == method) {
        return Resolved::Route(r.clone());
    }
    if let Some(r) = entry.routes.iter().find(|r| r.matching.other_methods.contains(method)) {
        return Resolved::Pass(Some(r.clone()));
    }
    let mut allow: Vec<&str> = Vec::new();
    for r in &entry.routes {
        for m in std::iter::once(&r.method).chain(&r.matching.other_methods) {
            if !allow.contains(&m.as_str()) {
                allow.push(m.as_str());
            }
        }
    }
    let allow = HeaderValue::from_str(&allow.join(", ")).unwrap_or_else(|_| HeaderValue::from_static("POST"));
    Resolved::Refuse(entry.routes[0].clone(), Refusal::MethodNotAllowed(allow))
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
