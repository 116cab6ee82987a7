//! Routes: which legacy webhook endpoint a request is for, and how that endpoint is handled.
//!
//! Matching is exact on method and path (the query string is ignored). Anything unmatched passes
//! through to the default upstream untouched. Every matched route runs in shadow mode for now:
//! the monolith answers, and the event is published off the response path.

use std::collections::HashMap;
use std::sync::Arc;

use http::{Method, Uri};

use crate::event::spec::EventSpec;
use crate::verify::Verifier;

/// One validated `[[route]]`.
#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub method: Method,
    pub path: String,
    pub topic: String,
    /// Base URL of the monolith for this route (`http://host:port`).
    pub upstream: Uri,
    pub verifier: Verifier,
    pub event: EventSpec,
}

/// Lookup of routes by method and path.
#[derive(Debug, Default)]
pub struct RouteTable {
    by_path: HashMap<String, Vec<Arc<Route>>>,
    in_order: Vec<Arc<Route>>,
}

impl RouteTable {
    /// Builds the table; config validation has already refused duplicate endpoints.
    pub fn new(routes: Vec<Route>) -> Self {
        let in_order: Vec<Arc<Route>> = routes.into_iter().map(Arc::new).collect();
        let mut by_path: HashMap<String, Vec<Arc<Route>>> = HashMap::new();
        for r in &in_order {
            by_path.entry(r.path.clone()).or_default().push(r.clone());
        }
        Self { by_path, in_order }
    }

    /// The route for this request, if any.
    pub fn find(&self, method: &Method, path: &str) -> Option<&Arc<Route>> {
        self.by_path.get(path)?.iter().find(|r| r.method == method)
    }

    /// Routes in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.in_order.iter()
    }
}
