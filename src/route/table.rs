//! The route table in force: which route a request is for, by method and canonical path, and
//! which requests near a route are refused rather than passed through.
//!
//! Three `matchit` routers: case-sensitive routes' templates, case-insensitive routes' folded
//! templates, and every template folded (the loose index, for spellings too ambiguous to match).

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderValue, Method};

use super::path::{canonical, fold, loose, loose_may_differ};
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

/// Lookup of routes by method and canonical path.
#[derive(Debug, Default)]
pub struct RouteTable {
    in_order: Vec<Arc<Route>>,
    entries: Vec<Entry>,
    strict: matchit::Router<usize>,
    folded: matchit::Router<usize>,
    any_folded: bool,
    loose: matchit::Router<usize>,
    /// Some template has an upper-case letter: every path needs the loose lookup.
    upper_in_templates: bool,
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
                let router = if m.case_insensitive { &mut table.folded } else { &mut table.strict };
                let inserted = router.insert(pattern, i).and_then(|()| table.loose.insert(t.folded(), i));
                if let Err(e) = inserted {
                    tracing::error!(route = %r.name, path = %t.text, error = %e, "route path not indexed");
                }
                table.any_folded |= m.case_insensitive;
                table.upper_in_templates |= t.text.bytes().any(|b| b.is_ascii_uppercase());
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
            None if !c.ambiguous && !self.upper_in_templates && !loose_may_differ(path, &c.path) => {
                return Resolved::Pass(None);
            }
            None => {}
        }
        match self.loose.at(&loose(path)) {
            Ok(m) => ambiguous(&self.entries[*m.value], method),
            Err(_) => Resolved::Pass(None),
        }
    }

    fn strict_entry(&self, canonical: &str) -> Option<&Entry> {
        if let Ok(m) = self.strict.at(canonical) {
            return Some(&self.entries[*m.value]);
        }
        if self.any_folded {
            if let Ok(m) = self.folded.at(&fold(canonical)) {
                return Some(&self.entries[*m.value]);
            }
        }
        None
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
