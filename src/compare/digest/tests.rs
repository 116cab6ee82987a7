//! Digests: equal exactly where the diff finds nothing (as far as a digest can tell), and never
//! equal where the diff finds a difference.

use serde_json::json;

use super::*;
use crate::compare::diff::compare;
use crate::compare::outcome::{EventMode, Source};
use crate::compare::rules::{PointerPattern, StatusRule};

fn o(body: &str) -> Outcome {
    Outcome::from_response("e", "r", Source::Legacy, EventMode::Shadow, 200, None, body.as_bytes(), 1.0, "t")
}

fn rules(ignore: &[&str], unordered: &[&str]) -> CompareRules {
    let p = |list: &[&str]| list.iter().map(|s| PointerPattern::parse(s).unwrap()).collect();
    CompareRules { ignore: p(ignore), unordered: p(unordered), ..CompareRules::default() }
}

fn same(r: &CompareRules, a: &str, b: &str) -> bool {
    BodyDigest::of(r, &o(a)).is_some() && BodyDigest::of(r, &o(a)) == BodyDigest::of(r, &o(b))
}

#[test]
fn bodies_the_diff_calls_equal_have_equal_digests() {
    let r = rules(&["/updated_at", "/items/*/id"], &["/tags"]);
    let cases = [
        (r#"{"a":1,"b":2}"#, r#"{"b":2,"a":1}"#),
        (r#"{"a":1,"updated_at":"x"}"#, r#"{"a":1,"updated_at":"y"}"#),
        (r#"{"a":1,"updated_at":"x"}"#, r#"{"a":1}"#),
        (r#"{"a":1,"n":null}"#, r#"{"a":1}"#),
        (r#"{"a":1}"#, r#"{"a":1.0}"#),
        (r#"{"a":-0.0}"#, r#"{"a":0}"#),
        (r#"{"items":[{"id":1,"q":2}]}"#, r#"{"items":[{"id":9,"q":2}]}"#),
        (r#"{"tags":["x","y","x"]}"#, r#"{"tags":["x","x","y"]}"#),
        (r#"{"tags":[{"k":1},{"k":2}]}"#, r#"{"tags":[{"k":2},{"k":1.0}]}"#),
    ];
    for (a, b) in cases {
        assert!(compare(&r, &o(a), &o(b)).is_empty(), "the diff calls {a} and {b} equal");
        assert!(same(&r, a, b), "{a} vs {b}");
    }
}

#[test]
fn bodies_the_diff_tells_apart_have_different_digests() {
    let r = rules(&["/updated_at", "/items/*/id"], &["/tags"]);
    let cases = [
        (r#"{"a":1}"#, r#"{"a":2}"#),
        (r#"{"a":1}"#, r#"{"a":"1"}"#),
        (r#"{"a":1}"#, r#"{"a":1,"b":0}"#),
        (r#"{"a":[1,2]}"#, r#"{"a":[2,1]}"#),
        (r#"{"a":[1]}"#, r#"{"a":[1,null]}"#),
        (r#"{"a":{}}"#, r#"{"a":[]}"#),
        (r#"{"a":null,"b":{}}"#, r#"{"a":{},"b":null}"#),
        (r#"{"tags":["x","y"]}"#, r#"{"tags":["x","y","y"]}"#),
        (r#"{"items":[{"id":1,"q":2}]}"#, r#"{"items":[{"id":1,"q":3}]}"#),
        (r#"{"a":0.5}"#, r#"{"a":0.25}"#),
        (r#"["ab","c"]"#, r#"["a","bc"]"#),
        ("plain text", "plain texT"),
    ];
    for (a, b) in cases {
        assert!(!compare(&r, &o(a), &o(b)).is_empty(), "the diff tells {a} from {b}");
        assert!(!same(&r, a, b), "{a} vs {b}");
    }
}

#[test]
fn rules_shape_the_digest() {
    // `body = "none"`: every body digests alike; the status is compared apart.
    let none = CompareRules { body: BodyRule::None, status: StatusRule::Class, ..CompareRules::default() };
    assert!(same(&none, r#"{"a":1}"#, "text"));
    // `body = "bytes"`: key order and spacing count as they do in the diff (compact re-encoding).
    let bytes = CompareRules { body: BodyRule::Bytes, ..CompareRules::default() };
    assert!(same(&bytes, r#"{"a": 1}"#, r#"{"a":1}"#));
    assert!(!same(&bytes, r#"{"a":1}"#, r#"{"a":1.0}"#));
    // A JSON body and a text body digest differently kinds apart: the pair is diffed in full.
    let json = CompareRules::default();
    assert_ne!(BodyDigest::of(&json, &o("{}")).unwrap().kind, BodyDigest::of(&json, &o("x")).unwrap().kind);
    // An ignored root ignores the whole body.
    assert!(same(&rules(&[""], &[]), r#"{"a":1}"#, "[2]"));
    // A literal index under an unordered array: digests cannot be trusted, none is made.
    assert_eq!(BodyDigest::of(&rules(&["/tags/0/id"], &["/tags"]), &o("{}")), None);
    assert!(BodyDigest::of(&rules(&["/tags/*/id"], &["/tags"]), &o("{}")).is_some());
}

#[test]
fn digests_do_not_depend_on_how_the_record_spelled_the_body() {
    let r = CompareRules::default();
    let a = BodyDigest::of(&r, &o(&json!({"z": [1, 2.5, "s"], "a": {"b": true}}).to_string()));
    let b = BodyDigest::of(&r, &o("{ \"a\" : { \"b\" : true }, \"z\" : [ 1.0, 2.5, \"s\" ] }"));
    assert_eq!(a, b);
}
