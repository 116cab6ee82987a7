//! Table tests of the field-level diff.

use serde_json::json;

use super::*;
use crate::compare::outcome::{EventMode, Source};
use crate::compare::rules::{PointerPattern, StatusRule};

fn outcome(source: Source, status: u16, body: Value, body_encoding: BodyEncoding) -> Outcome {
    Outcome {
        event_id: "evt_1".into(),
        route: "orders".into(),
        source,
        mode: EventMode::Shadow,
        status,
        body,
        body_encoding,
        content_type: None,
        latency_ms: 1.0,
        at: String::new(),
        consumer: None,
        truncated: false,
    }
}

fn json_pair(legacy: Value, new: Value) -> (Outcome, Outcome) {
    (outcome(Source::Legacy, 200, legacy, BodyEncoding::Json), outcome(Source::New, 200, new, BodyEncoding::Json))
}

fn rules(ignore: &[&str], unordered: &[&str], numeric_tolerance: f64) -> CompareRules {
    let parse = |ps: &[&str]| ps.iter().map(|p| PointerPattern::parse(p).unwrap()).collect();
    CompareRules { ignore: parse(ignore), unordered: parse(unordered), numeric_tolerance, ..CompareRules::default() }
}

fn triples(diffs: &[FieldDiff]) -> Vec<(&str, &Value, &Value)> {
    diffs.iter().map(|d| (d.pointer.as_str(), &d.legacy, &d.new)).collect()
}

/// Tears a value down without recursion (the derived drop of a 10,000-deep value would not fit a test stack).
fn dismantle(v: Value) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.into_iter().map(|(_, x)| x)),
            _ => {}
        }
    }
}

type JsonCase = (&'static str, CompareRules, Value, Value, Vec<(&'static str, Value, Value)>);
type BodyCase = (&'static str, BodyRule, (Value, BodyEncoding), (Value, BodyEncoding), bool);

#[test]
fn json_bodies_compare_field_by_field() {
    let items = |id1, id2, price2| json!({"items": [{"id": id1, "price": 5}, {"id": id2, "price": price2}]});
    #[rustfmt::skip]
    let cases: Vec<JsonCase> = vec![
        ("equal", rules(&[], &[], 0.0), json!({"a": 1, "b": [true, null, "x"]}), json!({"b": [true, null, "x"], "a": 1}), vec![]),
        ("nested field", rules(&[], &[], 0.0), json!({"a": {"b": 1, "c": 2}}), json!({"a": {"b": 2, "c": 2}}), vec![("/body/a/b", json!(1), json!(2))]),
        ("missing on new", rules(&[], &[], 0.0), json!({"a": 1, "b": {"c": 2}}), json!({"a": 1}), vec![("/body/b", json!({"c": 2}), json!(null))]),
        ("missing on legacy", rules(&[], &[], 0.0), json!({}), json!({"z": "hi"}), vec![("/body/z", json!(null), json!("hi"))]),
        ("null equals absent", rules(&[], &[], 0.0), json!({"a": null}), json!({}), vec![]),
        ("type differs", rules(&[], &[], 0.0), json!({"a": [1]}), json!({"a": {"0": 1}}), vec![("/body/a", json!([1]), json!({"0": 1}))]),
        ("string vs number", rules(&[], &[], 0.0), json!(["1"]), json!([1]), vec![("/body/0", json!("1"), json!(1))]),
        ("empty body vs json", rules(&[], &[], 0.0), json!(null), json!({"ok": true}), vec![("/body", json!(null), json!({"ok": true}))]),
        ("new array shorter", rules(&[], &[], 0.0), json!([1, 2, 3]), json!([1, 2]), vec![("/body/2", json!(3), json!(null))]),
        ("new array longer", rules(&[], &[], 0.0), json!({"a": [1]}), json!({"a": [1, null, 3]}),
            vec![("/body/a/1", json!(null), json!(null)), ("/body/a/2", json!(null), json!(3))]),
        ("document order, keys sorted", rules(&[], &[], 0.0), json!({"z": 1, "a": [0, 1], "m": 1}), json!({"z": 2, "a": [0, 2], "m": 1}),
            vec![("/body/a/1", json!(1), json!(2)), ("/body/z", json!(1), json!(2))]),
        ("wildcard ignore", rules(&["/items/*/id"], &[], 0.0), items(1, 2, 7), items(8, 9, 6), vec![("/body/items/1/price", json!(7), json!(6))]),
        ("ignore one-sided key", rules(&["/updated_at"], &[], 0.0), json!({"a": 1, "updated_at": "t"}), json!({"a": 1}), vec![]),
        ("ignore subtree", rules(&["/meta"], &[], 0.0), json!({"meta": {"x": [1]}}), json!({"meta": 3}), vec![]),
        ("ignore extra elements", rules(&["/a/*"], &[], 0.0), json!({"a": [1, 2]}), json!({"a": []}), vec![]),
        ("ignore the whole body", rules(&[""], &[], 0.0), json!({"a": 1}), json!([2]), vec![]),
        ("1 equals 1.0", rules(&[], &[], 0.0), json!({"n": 1}), json!({"n": 1.0}), vec![]),
        ("outside exact", rules(&[], &[], 0.0), json!({"n": 10.0}), json!({"n": 10.005}), vec![("/body/n", json!(10.0), json!(10.005))]),
        ("within tolerance", rules(&[], &[], 0.01), json!({"n": 10.00}), json!({"n": 10.005}), vec![]),
        ("outside tolerance", rules(&[], &[], 0.01), json!({"n": 10.0}), json!({"n": 10.02}), vec![("/body/n", json!(10.0), json!(10.02))]),
        ("unordered equal", rules(&[], &["/tags"], 0.0), json!({"tags": ["a", "b", "c"]}), json!({"tags": ["c", "a", "b"]}), vec![]),
        ("unordered multisets differ", rules(&[], &["/tags"], 0.0), json!({"tags": [1, 2, 2]}), json!({"tags": [2, 1, 1]}),
            vec![("/body/tags", json!([1, 2, 2]), json!([2, 1, 1]))]),
        ("unordered lengths differ", rules(&[], &["/tags"], 0.0), json!({"tags": [1]}), json!({"tags": [1, 1]}),
            vec![("/body/tags", json!([1]), json!([1, 1]))]),
        ("unordered with ignore and tolerance inside", rules(&["/items/*/id"], &["/items"], 0.01),
            json!({"items": [{"id": 1, "p": 5.0}, {"id": 2, "p": 6.0}]}), json!({"items": [{"id": 9, "p": 6.001}, {"id": 8, "p": 5}]}), vec![]),
        ("nested unordered by wildcard", rules(&[], &["/groups/*/members"], 0.0),
            json!({"groups": [{"members": [1, 2]}, {"members": [3, 4]}]}), json!({"groups": [{"members": [2, 1]}, {"members": [4, 3]}]}), vec![]),
        ("ordered arrays stay ordered", rules(&[], &["/other"], 0.0), json!({"tags": [1, 2]}), json!({"tags": [2, 1]}),
            vec![("/body/tags/0", json!(1), json!(2)), ("/body/tags/1", json!(2), json!(1))]),
        ("pointer escaping", rules(&[], &[], 0.0), json!({"a/b": {"c~d": 1}}), json!({"a/b": {"c~d": 2}}), vec![("/body/a~1b/c~0d", json!(1), json!(2))]),
        ("escaped ignore", rules(&["/a~1b/c~0d"], &[], 0.0), json!({"a/b": {"c~d": 1}}), json!({"a/b": {"c~d": 2}}), vec![]),
    ];
    for (name, rules, legacy, new, expected) in cases {
        let (l, n) = json_pair(legacy, new);
        let diffs = compare(&rules, &l, &n);
        let expected: Vec<(&str, &Value, &Value)> = expected.iter().map(|(p, a, b)| (*p, a, b)).collect();
        assert_eq!(triples(&diffs), expected, "{name}");
    }
}

#[test]
fn status_is_compared_first_under_its_rule() {
    let cases = [
        (StatusRule::Exact, 200, 200, false),
        (StatusRule::Exact, 200, 201, true),
        (StatusRule::Class, 200, 201, false),
        (StatusRule::Class, 200, 404, true),
        (StatusRule::Class, 502, 500, false),
    ];
    for (status, a, b, differs) in cases {
        let r = CompareRules { status, ..CompareRules::default() };
        let l = outcome(Source::Legacy, a, json!({"x": 1}), BodyEncoding::Json);
        let n = outcome(Source::New, b, json!({"x": 2}), BodyEncoding::Json);
        let diffs = compare(&r, &l, &n);
        let mut expected = vec![("/body/x", json!(1), json!(2))];
        if differs {
            expected.insert(0, ("/status", json!(a), json!(b)));
        }
        let expected: Vec<(&str, &Value, &Value)> = expected.iter().map(|(p, a, b)| (*p, a, b)).collect();
        assert_eq!(triples(&diffs), expected, "{status:?} {a} {b}");
    }
}

#[test]
fn body_modes_and_the_bytes_fallback() {
    use BodyEncoding::{Base64, Json, Text};
    #[rustfmt::skip]
    let cases: Vec<BodyCase> = vec![
        ("none ignores bodies", BodyRule::None, (json!({"a": 1}), Json), (json!("x"), Text), false),
        ("bytes equal", BodyRule::Bytes, (json!({"a": [1, 2]}), Json), (json!({"a": [1, 2]}), Json), false),
        ("bytes see 1 vs 1.0", BodyRule::Bytes, (json!({"a": 1}), Json), (json!({"a": 1.0}), Json), true),
        ("bytes: json equals its text", BodyRule::Bytes, (json!({"a": 1}), Json), (json!("{\"a\":1}"), Text), false),
        ("json: text equal", BodyRule::Json, (json!("ok"), Text), (json!("ok"), Text), false),
        ("json: text differs", BodyRule::Json, (json!("ok"), Text), (json!("no"), Text), true),
        ("json: json vs same text", BodyRule::Json, (json!([1]), Json), (json!("[1]"), Text), false),
        ("json: text vs base64 of same bytes", BodyRule::Json, (json!("hi"), Text), (json!("aGk="), Base64), false),
        ("json: base64 differs", BodyRule::Json, (json!("/wA="), Base64), (json!("/wE="), Base64), true),
    ];
    for (name, body, (lb, le), (nb, ne), differs) in cases {
        let r = CompareRules { body, ..CompareRules::default() };
        let diffs = compare(&r, &outcome(Source::Legacy, 200, lb.clone(), le), &outcome(Source::New, 200, nb.clone(), ne));
        let expected = if differs { vec![("/body", &lb, &nb)] } else { vec![] };
        assert_eq!(triples(&diffs), expected, "{name}");
    }
}

#[test]
fn hostile_depth_neither_overflows_nor_bloats_the_diff() {
    let nest = |leaf: Value, depth: usize| (0..depth).fold(leaf, |v, _| Value::Array(vec![v]));
    for (body, leaf_l, leaf_r, differs) in [
        (BodyRule::Json, 1, 1, false),
        (BodyRule::Json, 1, 2, true),
        (BodyRule::Bytes, 1, 1, false),
        (BodyRule::Bytes, 1, 2, true),
    ] {
        let r = CompareRules { body, ..CompareRules::default() };
        let mut l = outcome(Source::Legacy, 200, nest(json!({"k": leaf_l}), 10_000), BodyEncoding::Json);
        let mut n = outcome(Source::New, 200, nest(json!({"k": leaf_r}), 10_000), BodyEncoding::Json);
        let diffs = compare(&r, &l, &n);
        assert_eq!(diffs.len(), usize::from(differs), "{body:?} {leaf_l} {leaf_r}");
        for d in &diffs {
            let expected = if body == BodyRule::Json { format!("/body{}", "/0".repeat(MAX_DEPTH)) } else { "/body".into() };
            assert_eq!(d.pointer, expected);
            assert!(!nested_deeper_than(&d.legacy, MAX_VALUE_DEPTH) && !nested_deeper_than(&d.new, MAX_VALUE_DEPTH));
            assert!(d.legacy.to_string().contains(TRUNCATED));
        }
        dismantle(std::mem::take(&mut l.body));
        dismantle(std::mem::take(&mut n.body));
    }
}

#[test]
fn the_iterative_serializer_matches_serde_json() {
    let nested = (0..MAX_DEPTH + 5).fold(json!({"x": "\u{1}\"é"}), |v, i| json!({"a/b": v, "n": i, "f": -0.5e-7}));
    let cases =
        [json!(null), json!(1.5), json!("q\"\\\n"), json!([]), json!({}), json!([1, [2, {"b": null, "a": [true]}]]), nested];
    for v in cases {
        assert_eq!(String::from_utf8(compact(&v)).unwrap(), v.to_string());
    }
}

#[test]
fn unordered_matching_of_thousands_of_elements_is_tolerable() {
    let items: Vec<Value> = (0..1500).map(|i| json!({"id": i, "v": [i, "x"]})).collect();
    let reversed: Vec<Value> = items.iter().rev().cloned().collect();
    let r = rules(&[], &[""], 0.0);
    let (l, n) = json_pair(Value::Array(items), Value::Array(reversed));
    let started = std::time::Instant::now();
    assert_eq!(compare(&r, &l, &n), vec![]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
}

#[test]
fn field_diffs_have_the_parity_record_wire_shape() {
    let d = FieldDiff { pointer: "/body/a".into(), legacy: json!(1), new: json!(null) };
    let wire = serde_json::to_value(&d).unwrap();
    assert_eq!(wire, json!({"pointer": "/body/a", "legacy": 1, "new": null}));
    assert_eq!(serde_json::from_value::<FieldDiff>(wire).unwrap(), d);
}

#[test]
fn unordered_arrays_find_a_pairing_greedy_matching_would_miss() {
    // With a tolerance of 0.5, 1.0 matches both 1.5 and 0.5, but 2.0 only 1.5: greedy pairs
    // 1.0 with 1.5 and then fails; the right pairing is 1.0-0.5, 2.0-1.5.
    let rules = rules(&[], &["/items"], 0.5);
    let (a, b) = json_pair(json!({"items": [1.0, 2.0]}), json!({"items": [1.5, 0.5]}));
    assert!(compare(&rules, &a, &b).is_empty());
    let (a, c) = json_pair(json!({"items": [1.0, 2.0]}), json!({"items": [1.5, 3.0]}));
    assert_eq!(triples(&compare(&rules, &a, &c)), [("/body/items", &json!([1.0, 2.0]), &json!([1.5, 3.0]))], "no pairing exists");
}
