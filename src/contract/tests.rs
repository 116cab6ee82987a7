//! The compatibility table: schema pairs, breaking and safe, in each mode, with the rules and
//! pointers each must report.

use serde_json::{json, Value};

use super::compat::{check, Mode};
use Mode::{Backward, Forward, Full};

/// (case, OLD, NEW, mode, the expected (pointer, rule) list; empty = compatible).
type Row = (&'static str, Value, Value, Mode, Vec<(&'static str, &'static str)>);

fn table() -> Vec<Row> {
    let order = |props: Value, required: Value| json!({"type": "object", "properties": props, "required": required});
    vec![
        (
            "identical",
            order(json!({"id": {"type": "string"}}), json!(["id"])),
            order(json!({"id": {"type": "string"}}), json!(["id"])),
            Full,
            vec![],
        ),
        (
            "required added",
            json!({"type": "object", "properties": {"a": {}}}),
            json!({"type": "object", "properties": {"a": {}}, "required": ["a"]}),
            Backward,
            vec![("/required", "required_added")],
        ),
        ("required removed, backward", json!({"required": ["a"]}), json!({}), Backward, vec![]),
        ("required removed, forward", json!({"required": ["a"]}), json!({}), Forward, vec![("/required", "required_added")]),
        (
            "type narrowed",
            json!({"properties": {"amount": {"type": "number"}}}),
            json!({"properties": {"amount": {"type": "integer"}}}),
            Backward,
            vec![("/properties/amount/type", "type_narrowed")],
        ),
        (
            "type widened integer→number",
            json!({"properties": {"amount": {"type": "integer"}}}),
            json!({"properties": {"amount": {"type": "number"}}}),
            Backward,
            vec![],
        ),
        (
            "type widened, forward breaks",
            json!({"type": "string"}),
            json!({"type": ["string", "null"]}),
            Forward,
            vec![("/type", "type_narrowed")],
        ),
        ("type added", json!({}), json!({"type": "object"}), Backward, vec![("/type", "type_narrowed")]),
        (
            "enum value removed",
            json!({"enum": ["a", "b"]}),
            json!({"enum": ["a"]}),
            Backward,
            vec![("/enum", "enum_value_removed")],
        ),
        ("enum value added", json!({"enum": ["a"]}), json!({"enum": ["a", "b"]}), Backward, vec![]),
        (
            "enum value added, full",
            json!({"enum": ["a"]}),
            json!({"enum": ["a", "b"]}),
            Full,
            vec![("/enum", "enum_value_removed")],
        ),
        ("const changed", json!({"const": 1}), json!({"const": 2}), Backward, vec![("/const", "const_changed")]),
        (
            "enum added",
            json!({"type": "string"}),
            json!({"type": "string", "enum": ["x"]}),
            Backward,
            vec![("/enum", "enum_added")],
        ),
        (
            "property removed, closed",
            json!({"properties": {"a": {}, "b": {}}, "additionalProperties": false}),
            json!({"properties": {"a": {}}, "additionalProperties": false}),
            Backward,
            vec![("/properties/b", "property_removed_closed")],
        ),
        (
            "property removed, open",
            json!({"properties": {"a": {}, "b": {"type": "string"}}}),
            json!({"properties": {"a": {}}}),
            Backward,
            vec![],
        ),
        (
            "property added to closed OLD",
            json!({"properties": {"a": {}}, "additionalProperties": false}),
            json!({"properties": {"a": {}, "b": {"type": "string"}}, "additionalProperties": false}),
            Backward,
            vec![],
        ),
        (
            "property added to open OLD",
            json!({"properties": {"a": {}}}),
            json!({"properties": {"a": {}, "b": {"type": "string"}}}),
            Backward,
            vec![("/properties/b", "property_added_open")],
        ),
        (
            "property added, unconstrained",
            json!({"properties": {"a": {}}}),
            json!({"properties": {"a": {}, "b": {"description": "any"}}}),
            Backward,
            vec![],
        ),
        (
            "additionalProperties closed",
            json!({"type": "object"}),
            json!({"type": "object", "additionalProperties": false}),
            Backward,
            vec![("/additionalProperties", "additional_properties_closed")],
        ),
        ("additionalProperties opened", json!({"additionalProperties": false}), json!({}), Backward, vec![]),
        (
            "additionalProperties schema narrowed",
            json!({"additionalProperties": {"type": ["string", "number"]}}),
            json!({"additionalProperties": {"type": "string"}}),
            Backward,
            vec![("/additionalProperties/type", "type_narrowed")],
        ),
        (
            "maxLength decreased",
            json!({"type": "string", "maxLength": 10}),
            json!({"type": "string", "maxLength": 5}),
            Backward,
            vec![("/maxLength", "max_length_decreased")],
        ),
        ("maxLength increased", json!({"maxLength": 5}), json!({"maxLength": 10}), Backward, vec![]),
        (
            "maxLength increased, forward",
            json!({"maxLength": 5}),
            json!({"maxLength": 10}),
            Forward,
            vec![("/maxLength", "max_length_decreased")],
        ),
        ("minimum increased", json!({"minimum": 0}), json!({"minimum": 1}), Backward, vec![("/minimum", "minimum_increased")]),
        ("minimum added", json!({}), json!({"minimum": 0}), Backward, vec![("/minimum", "minimum_increased")]),
        (
            "maximum lowered, exclusiveMaximum added",
            json!({"maximum": 10}),
            json!({"maximum": 9, "exclusiveMaximum": 9}),
            Backward,
            vec![("/exclusiveMaximum", "exclusive_maximum_decreased"), ("/maximum", "maximum_decreased")],
        ),
        ("minLength 0 added is no change", json!({}), json!({"minLength": 0}), Backward, vec![]),
        (
            "minItems increased",
            json!({"minItems": 1}),
            json!({"minItems": 2}),
            Backward,
            vec![("/minItems", "min_items_increased")],
        ),
        (
            "maxItems lowered, uniqueItems added",
            json!({"maxItems": 3}),
            json!({"maxItems": 2, "uniqueItems": true}),
            Backward,
            vec![("/maxItems", "max_items_decreased"), ("/uniqueItems", "unique_items_added")],
        ),
        (
            "multipleOf coarser",
            json!({"multipleOf": 2}),
            json!({"multipleOf": 4}),
            Backward,
            vec![("/multipleOf", "multiple_of_changed")],
        ),
        ("multipleOf finer", json!({"multipleOf": 4}), json!({"multipleOf": 2}), Backward, vec![]),
        ("pattern changed", json!({"pattern": "^a"}), json!({"pattern": "^b"}), Backward, vec![("/pattern", "pattern_changed")]),
        ("pattern removed", json!({"pattern": "^a"}), json!({}), Backward, vec![]),
        (
            "format added",
            json!({"type": "string"}),
            json!({"type": "string", "format": "date-time"}),
            Backward,
            vec![("/format", "format_added")],
        ),
        ("format removed, forward", json!({"format": "email"}), json!({}), Forward, vec![("/format", "format_added")]),
        (
            "nested object, deep narrowing",
            order(
                json!({"customer": {"type": "object", "properties": {"address": {"type": "object", "properties": {"zip": {"type": "string", "maxLength": 10}}}}}}),
                json!([]),
            ),
            order(
                json!({"customer": {"type": "object", "properties": {"address": {"type": "object", "properties": {"zip": {"type": "string", "maxLength": 5}}, "required": ["zip"]}}}}),
                json!([]),
            ),
            Backward,
            vec![
                ("/properties/customer/properties/address/properties/zip/maxLength", "max_length_decreased"),
                ("/properties/customer/properties/address/required", "required_added"),
            ],
        ),
        (
            "array items narrowed",
            json!({"type": "array", "items": {"type": ["string", "integer"]}}),
            json!({"type": "array", "items": {"type": "string"}}),
            Backward,
            vec![("/items/type", "type_narrowed")],
        ),
        (
            "array items added",
            json!({"type": "array"}),
            json!({"type": "array", "items": {"type": "string"}}),
            Backward,
            vec![("/items/type", "type_narrowed")],
        ),
        (
            "$ref resolved, forward breaks",
            json!({"$defs": {"money": {"type": "integer"}}, "properties": {"amount": {"$ref": "#/$defs/money"}}}),
            json!({"definitions": {"money": {"type": "number"}}, "properties": {"amount": {"$ref": "#/definitions/money"}}}),
            Full,
            vec![("/$defs/money/type", "type_narrowed")],
        ),
        (
            "$ref on one side",
            json!({"properties": {"amount": {"type": "integer", "minimum": 0}}}),
            json!({"$defs": {"m": {"type": "integer", "minimum": 1}}, "properties": {"amount": {"$ref": "#/$defs/m"}}}),
            Backward,
            vec![("/$defs/m/minimum", "minimum_increased")],
        ),
        (
            "$ref cycle terminates",
            json!({"$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}, "v": {"type": "string"}}}}, "$ref": "#/$defs/node"}),
            json!({"$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}, "v": {"type": "integer"}}}}, "$ref": "#/$defs/node"}),
            Backward,
            vec![("/$defs/node/properties/v/type", "type_narrowed")],
        ),
        (
            "$ref cycle, safe",
            json!({"$defs": {"n": {"properties": {"next": {"$ref": "#/$defs/n"}}}}, "$ref": "#/$defs/n"}),
            json!({"$defs": {"n": {"properties": {"next": {"$ref": "#"}}}}, "$ref": "#/$defs/n"}),
            Full,
            vec![],
        ),
        (
            "keyword beside $ref",
            json!({"$defs": {"s": {"type": "string"}}, "properties": {"c": {"$ref": "#/$defs/s", "maxLength": 5}}}),
            json!({"$defs": {"s": {"type": "string"}}, "properties": {"c": {"$ref": "#/$defs/s", "maxLength": 3}}}),
            Backward,
            vec![("/properties/c/maxLength", "max_length_decreased")],
        ),
        ("$ref remote", json!({}), json!({"$ref": "https://example.com/s.json"}), Backward, vec![("/$ref", "ref_unresolved")]),
        (
            "anyOf branch removed",
            json!({"anyOf": [{"type": "string"}, {"type": "integer"}]}),
            json!({"anyOf": [{"type": "string"}]}),
            Backward,
            vec![("/anyOf/1", "any_of_branch_removed")],
        ),
        (
            "anyOf branch added",
            json!({"anyOf": [{"type": "string"}]}),
            json!({"anyOf": [{"type": "string"}, {"type": "integer"}]}),
            Backward,
            vec![],
        ),
        (
            "oneOf branch added, forward",
            json!({"oneOf": [{"type": "string"}]}),
            json!({"oneOf": [{"type": "string"}, {"type": "null"}]}),
            Forward,
            vec![("/oneOf/1", "one_of_branch_removed")],
        ),
        (
            "anyOf added around OLD",
            json!({"type": "string"}),
            json!({"anyOf": [{"type": "string"}, {"type": "null"}]}),
            Backward,
            vec![],
        ),
        (
            "oneOf added, narrower",
            json!({"type": ["string", "integer"]}),
            json!({"oneOf": [{"type": "string"}]}),
            Backward,
            vec![("/oneOf", "one_of_added")],
        ),
        (
            "unknown keyword changed",
            json!({"not": {"type": "string"}}),
            json!({"not": {"type": "integer"}}),
            Backward,
            vec![("/not", "unsupported_keyword_changed")],
        ),
        (
            "unknown keyword unchanged",
            json!({"allOf": [{"type": "string"}]}),
            json!({"allOf": [{"type": "string"}], "title": "renamed"}),
            Full,
            vec![],
        ),
        ("annotations only", json!({"description": "a"}), json!({"description": "b", "examples": [1]}), Full, vec![]),
        ("schema closed", json!(true), json!(false), Backward, vec![("", "schema_closed")]),
        (
            "property name escaped",
            json!({"properties": {"a/b": {"type": "string"}}}),
            json!({"properties": {"a/b": {"type": "integer"}}}),
            Backward,
            vec![("/properties/a~1b/type", "type_narrowed")],
        ),
    ]
}

#[test]
fn every_pair_reports_exactly_its_breaking_changes() {
    let rows = table();
    assert!(rows.len() >= 24);
    for (case, old, new, mode, want) in rows {
        let mut got: Vec<(String, &str)> = check(&old, &new, mode).into_iter().map(|b| (b.pointer, b.rule)).collect();
        got.sort();
        let mut want: Vec<(String, &str)> = want.into_iter().map(|(p, r)| (p.to_string(), r)).collect();
        want.sort();
        assert_eq!(got, want, "case `{case}` ({mode})");
    }
}

#[test]
fn full_is_backward_and_forward() {
    let (old, new) = (json!({"type": "string", "maxLength": 5}), json!({"type": "string", "maxLength": 8}));
    assert!(check(&old, &new, Backward).is_empty());
    assert_eq!(check(&old, &new, Forward).len(), 1);
    assert_eq!(check(&old, &new, Full), check(&old, &new, Forward));
}

#[test]
fn messages_say_what_changed() {
    let b = check(&json!({"enum": ["paid", "refunded"]}), &json!({"enum": ["paid"]}), Backward);
    assert_eq!(b[0].message, "\"refunded\" accepted by OLD, not by NEW");
    let b = check(&json!({"maxLength": 10}), &json!({"maxLength": 5}), Backward);
    assert_eq!(b[0].message, "maxLength 10 in OLD, 5 in NEW");
    let b = check(&json!({"maxLength": 5}), &json!({"maxLength": 10}), Forward);
    assert_eq!(b[0].message, "maxLength 10 in NEW, 5 in OLD");
    let b = check(&json!({}), &json!({"$ref": "other.json#/x"}), Backward);
    let want = "NEW: `other.json#/x` is not a local reference (#, #/$defs/..., #/definitions/...) or its target is missing";
    assert_eq!(b[0].message, want);
    let b = check(&json!({"$ref": "#"}), &json!({}), Backward);
    assert_eq!(
        (b[0].rule, b[0].message.as_str()),
        ("ref_unresolved", "OLD: a chain of more than 32 `$ref`s (a reference to itself?)")
    );
}
