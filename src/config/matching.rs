//! Validation of a route's `match` table (path template, aliases, case, pass-through methods),
//! and of overlaps between routes: no path may be two routes' unless they differ only by method.

use http::Method;

use super::raw::RawMatch;
use super::ConfigError;
use crate::route::template::{Matching, Template};
use crate::route::Route;

/// The route's method and matching rules; `None` (with errors pushed) when something is wrong.
pub(super) fn matching(at: &str, m: &RawMatch, errs: &mut Vec<ConfigError>) -> Option<(Method, Matching)> {
    let before = errs.len();
    let own = method(&format!("{at}.match.method"), &m.method, errs);
    let template = |key: String, p: &str, errs: &mut Vec<ConfigError>| {
        Template::parse(p).map_err(|expected| errs.push(ConfigError::new(key, expected, format!("`{p}`")))).ok()
    };
    let path = template(format!("{at}.match.path"), &m.path, errs);
    let mut aliases: Vec<Template> = Vec::new();
    for (j, a) in m.aliases.iter().enumerate() {
        let key = format!("{at}.match.aliases[{j}]");
        let Some(t) = template(key.clone(), a, errs) else { continue };
        if let Some(p) = &path {
            let (mut mine, mut theirs): (Vec<&str>, Vec<&str>) = (t.params().collect(), p.params().collect());
            mine.sort_unstable();
            theirs.sort_unstable();
            if mine != theirs {
                errs.push(ConfigError::new(key.clone(), "the same `{placeholders}` as match.path", format!("`{a}`")));
            }
            let earlier = std::iter::once(p).chain(&aliases).find(|o| o.overlaps(&t));
            if let Some(o) = earlier {
                let found = format!("`{a}`, which overlaps `{}` of this route", o.text);
                errs.push(ConfigError::new(key, "a path no other path of the route matches", found));
            }
        }
        aliases.push(t);
    }
    let mut other_methods: Vec<Method> = Vec::new();
    for (j, raw) in m.other_methods.iter().enumerate() {
        let key = format!("{at}.match.other_methods[{j}]");
        let Some(other) = method(&key, raw, errs) else { continue };
        if Some(&other) == own.as_ref() || other_methods.contains(&other) {
            errs.push(ConfigError::new(key, "a method other than match.method, listed once", format!("`{raw}`")));
        }
        other_methods.push(other);
    }
    if errs.len() != before {
        return None;
    }
    Some((own?, Matching::new(path?, aliases, m.case_insensitive, other_methods)))
}

/// Method tokens are written in upper case as HTTP defines them; lower case is accepted and
/// upper-cased here.
fn method(key: &str, raw: &str, errs: &mut Vec<ConfigError>) -> Option<Method> {
    Method::from_bytes(raw.to_ascii_uppercase().as_bytes())
        .map_err(|_| errs.push(ConfigError::new(key, "an HTTP method such as POST", format!("`{raw}`"))))
        .ok()
}

/// Refuses templates of two routes that some path matches both (case folded), unless the two
/// templates are the same and the routes differ by method (and neither passes the other's
/// method through). `routes` pairs each route with its `route[i]` key.
pub(super) fn overlaps(routes: &[(String, &Route)], errs: &mut Vec<ConfigError>) {
    for (i, (at_a, a)) in routes.iter().enumerate() {
        for (at_b, b) in &routes[..i] {
            for (ja, ta) in a.matching.templates().enumerate() {
                for tb in b.matching.templates() {
                    if !ta.overlaps(tb) {
                        continue;
                    }
                    let same_endpoint_other_method = ta == tb
                        && a.matching.case_insensitive == b.matching.case_insensitive
                        && a.method != b.method
                        && !a.matching.other_methods.contains(&b.method)
                        && !b.matching.other_methods.contains(&a.method);
                    if same_endpoint_other_method {
                        continue;
                    }
                    let key = if ja == 0 { format!("{at_a}.match.path") } else { format!("{at_a}.match.aliases[{}]", ja - 1) };
                    let found = format!(
                        "`{} {}`, which overlaps `{} {}` of route `{}` ({at_b})",
                        a.method, ta.text, b.method, tb.text, b.name
                    );
                    errs.push(ConfigError::new(
                        key,
                        "a path no other route matches (case folded), or the same path with another method",
                        found,
                    ));
                }
            }
        }
    }
}
