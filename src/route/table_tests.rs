//! The route table: what each spelling, method and template resolves to, and the `match.*`
//! validation rules with the key they name.

use http::Method;

use super::{Refusal, Resolved, RouteTable};
use crate::config::load_str;
use std::sync::Arc;

const HEAD: &str = "[legacy]\nurl = \"http://127.0.0.1:3000\"\n";

fn route(name: &str, matcher: &str, event: &str) -> String {
    format!("[[route]]\nname = \"{name}\"\nmatch = {{ {matcher} }}\ntopic = \"t\"\nsignature = {{ scheme = \"github\", mode = \"off\" }}\nevent = {{ {event} }}\n")
}

fn table(routes: &str) -> RouteTable {
    let cfg = load_str(&format!("{HEAD}{routes}"), "t.toml", &|_| None).unwrap_or_else(|e| panic!("{e}"));
    RouteTable::new(cfg.routes.into_iter().map(Arc::new).collect())
}

fn errors(routes: &str) -> String {
    load_str(&format!("{HEAD}{routes}"), "f.toml", &|_| None).err().map(|e| e.to_string()).unwrap_or_default()
}

/// `route:<name>`, `pass:<name or ->`, `400`, or `405 <Allow>`.
fn verdict(t: &RouteTable, method: &str, path: &str) -> String {
    match t.resolve(&Method::from_bytes(method.as_bytes()).unwrap(), path) {
        Resolved::Route(r) => format!("route:{}", r.name),
        Resolved::Pass(r) => format!("pass:{}", r.map_or("-".to_string(), |r| r.name.clone())),
        Resolved::Refuse(_, Refusal::AmbiguousPath) => "400".into(),
        Resolved::Refuse(_, Refusal::MethodNotAllowed(allow)) => format!("405 {}", allow.to_str().unwrap()),
    }
}

#[test]
fn every_spelling_of_the_issue_is_the_route_or_refused() {
    let t = table(&route("gh", "path = \"/webhooks/github\", aliases = [\"/webhooks/github.json\"]", ""));
    let route = [
        "/webhooks/github",
        "/webhooks/github/",
        "//webhooks/github",
        "/webhooks//github",
        "/webhooks/%67ithub",
        "/%77ebhooks/github",
        "/x/../webhooks/github",
        "/webhooks/./github",
        "/webhooks/%2e/github",
        "/webhooks/github/x/..",
        "/webhooks/github;x=1",
        "/webhooks/github/..;/github",
        "/webhooks/github.json",
        "/webhooks/github/x/%2E%2e/",
    ];
    for p in route {
        assert_eq!(verdict(&t, "POST", p), "route:gh", "{p}");
    }
    let ambiguous = [
        "/webhooks%2Fgithub",
        "/webhooks%5Cgithub",
        "/webhooks\\github",
        "/webhooks/github%00",
        "/webhooks/%zz/../github",
        "/webhooks/github/%4/..",
        "/WEBHOOKS/GITHUB",
        "/webhooks/github%3Bx=1",
    ];
    for p in ambiguous {
        assert_eq!(verdict(&t, "POST", p), "400", "{p}");
    }
    for m in ["PUT", "GET", "post", "DELETE"] {
        assert_eq!(verdict(&t, m, "/webhooks/github/"), "405 POST", "{m}");
    }
    for p in ["/webhooks/gitlab", "/other%2Fpath", "/webhooks/github/x", "/", "*", "/WEBHOOKS"] {
        assert_eq!(verdict(&t, "POST", p), "pass:-", "{p}");
    }
}

#[test]
fn other_methods_pass_through_and_are_in_allow() {
    let t = table(&route("gh", "path = \"/webhooks/github\", other_methods = [\"get\", \"HEAD\"]", ""));
    assert_eq!(verdict(&t, "GET", "/webhooks/github"), "pass:gh");
    assert_eq!(verdict(&t, "GET", "/webhooks//github/"), "pass:gh");
    assert_eq!(verdict(&t, "GET", "/webhooks%2Fgithub"), "pass:gh", "not the route's business in any spelling");
    assert_eq!(verdict(&t, "PUT", "/webhooks/github"), "405 POST, GET, HEAD");
}

#[test]
fn two_routes_on_one_path_differ_by_method() {
    let t = table(&format!("{}{}", route("a", "path = \"/p\"", ""), route("b", "path = \"/p\", method = \"PUT\"", "")));
    assert_eq!(verdict(&t, "POST", "/p/"), "route:a");
    assert_eq!(verdict(&t, "PUT", "/p"), "route:b");
    assert_eq!(verdict(&t, "GET", "/p"), "405 POST, PUT");
}

#[test]
fn case_insensitive_routes_fold_literals_and_keep_the_senders_case_in_captures() {
    let t = table(&route(
        "s",
        "path = \"/Hooks/{tenant}/stripe\", case_insensitive = true",
        "key_path = \"tenant\", path_extensions = [\"tenant\"]",
    ));
    assert_eq!(verdict(&t, "POST", "/hooks/Acme/STRIPE"), "route:s");
    assert_eq!(verdict(&t, "POST", "/HOOKS/acme/stripe/"), "route:s");
    assert_eq!(verdict(&t, "POST", "/hooks/acme%2Fx/stripe"), "400", "strictly the route, with an encoded slash");
    assert_eq!(verdict(&t, "POST", "/hooks/a%2Fb"), "pass:-", "loosely /hooks/a/b: not near either");
    assert_eq!(verdict(&t, "POST", "/hooks/a%2Fstripe"), "400", "loosely /hooks/a/stripe");
    let r = t.get("s").unwrap();
    assert_eq!(r.matching.captures("/HOOKS/Acme%20Co/Stripe").get("tenant"), Some("Acme Co"));
    assert_eq!(r.matching.captures("//hooks/ac%6De/stripe;x").get("tenant"), Some("acme"));
    assert_eq!(r.matching.captures("/other").get("tenant"), None);
}

#[test]
fn templates_capture_decoded_segments_and_refuse_encoded_slashes() {
    let t = table(&route("s", "path = \"/webhooks/{tenant}/stripe\"", "key_path = \"tenant\""));
    assert_eq!(verdict(&t, "POST", "/webhooks/acme/stripe"), "route:s");
    assert_eq!(verdict(&t, "POST", "/webhooks/acme/./stripe/"), "route:s");
    assert_eq!(verdict(&t, "POST", "/webhooks/a%2Fb/stripe"), "400", "an encoded slash in a capture");
    assert_eq!(verdict(&t, "POST", "/webhooks/acme/Stripe"), "400", "another case, case-sensitive route");
    assert_eq!(verdict(&t, "GET", "/webhooks/acme/stripe"), "405 POST");
    assert_eq!(verdict(&t, "POST", "/webhooks/stripe"), "pass:-");
    assert_eq!(t.get("s").unwrap().matching.captures("/webhooks/caf%C3%A9/stripe").get("tenant"), Some("café"));
}

#[test]
fn paths_with_escapes_are_compared_loosely_decoded() {
    let t = table(&route("sp", "path = \"/a%20b/{x}\"", ""));
    assert_eq!(verdict(&t, "POST", "/a%20b/1"), "route:sp");
    assert_eq!(verdict(&t, "POST", "/A%20B/1"), "400", "another case of an escaped path");
    assert_eq!(verdict(&t, "POST", "/a%20b/1%2F2"), "400");
    assert_eq!(verdict(&t, "POST", "/a%20c/1"), "pass:-");
}

#[test]
fn match_rules_name_their_key() {
    let cases = [
        (route("a", "path = \"/a/\"", ""), "route[0].match.path", "canonical path (here `/a`)"),
        (route("a", "path = \"/a/{x\"", ""), "route[0].match.path", "whole segment"),
        (route("a", "path = \"/a/{x}/{x}\"", ""), "route[0].match.path", "each placeholder once"),
        (route("a", "path = \"/a%2Fb\"", ""), "route[0].match.path", "encoded `/`"),
        (route("a", "path = \"/a b\"", ""), "route[0].match.path", "URI path characters"),
        (route("a", "path = \"/a\", aliases = [\"/A\"]", ""), "route[0].match.aliases[0]", "overlaps `/a`"),
        (route("a", "path = \"/a/{x}\", aliases = [\"/b/{y}\"]", ""), "route[0].match.aliases[0]", "same `{placeholders}`"),
        (route("a", "path = \"/a\", other_methods = [\"post\"]", ""), "route[0].match.other_methods[0]", "other than"),
        (route("a", "path = \"/a\", other_methods = [\"G T\"]", ""), "route[0].match.other_methods[0]", "HTTP method"),
        (route("a", "path = \"/a\"", "key_path = \"t\""), "route[0].event.key_path", "has none"),
        (route("a", "path = \"/a/{t}\"", "key_path = \"t\", key_header = \"X\""), "route[0].event.key_path", "at most one"),
        (route("a", "path = \"/a/{Tenant}\"", "path_extensions = [\"Tenant\"]"), "route[0].event.path_extensions[0]", "a-z"),
        (
            route("a", "path = \"/a/{id}\"", "path_extensions = [\"id\"]"),
            "route[0].event.path_extensions[0]",
            "context attribute",
        ),
        (route("a", "path = \"/a/{t}\"", "path_extensions = [\"u\"]"), "route[0].event.path_extensions[0]", "one of t"),
    ];
    for (src, key, text) in cases {
        let err = errors(&src);
        assert!(err.contains(&format!("key `{key}`")), "wants key {key} in: {err}\n{src}");
        assert!(err.contains(text), "wants `{text}` in: {err}");
    }
}

#[test]
fn overlapping_routes_are_refused_with_file_line_and_key() {
    let two = |a: &str, b: &str| format!("{}{}", route("a", a, ""), route("b", b, ""));
    let overlapping = [
        two("path = \"/webhooks/{tenant}/stripe\"", "path = \"/webhooks/acme/stripe\""),
        two("path = \"/webhooks/github\"", "path = \"/x\", aliases = [\"/Webhooks/GitHub\"]"),
        two("path = \"/a/{x}\"", "path = \"/a/{y}\", method = \"PUT\""),
        two("path = \"/p\"", "path = \"/p\""),
        two("path = \"/p\", other_methods = [\"PUT\"]", "path = \"/p\", method = \"PUT\""),
        two("path = \"/p\"", "path = \"/p\", method = \"PUT\", case_insensitive = true"),
        two("path = \"/a%20b\"", "path = \"/A%20B\""),
    ];
    for src in overlapping {
        let err = errors(&src);
        assert!(err.contains("overlaps"), "{err}\n{src}");
        assert!(err.contains("f.toml:") && err.contains("key `route[1].match."), "{err}");
    }
    assert_eq!(errors(&two("path = \"/a/{x}\"", "path = \"/a/{x}\", method = \"PUT\"")), "", "same template, other method");
    assert_eq!(errors(&two("path = \"/a/{x}\"", "path = \"/a/{x}/b\"")), "", "different lengths never overlap");
}
