//! One method per family of JSON Schema keywords, each reporting what a reader using NEW would
//! refuse of the data a writer using OLD may send.

use serde_json::{Map, Value};

use super::compat::{child, Checker, ANY};

type Obj = Map<String, Value>;

/// Keywords that constrain nothing: changing them never breaks a reader.
pub(super) const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "$defs",
    "definitions",
    "title",
    "description",
    "examples",
    "default",
    "readOnly",
    "writeOnly",
    "deprecated",
];

/// Keywords this check compares.
const KNOWN: &[&str] = &[
    "$ref",
    "type",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
    "uniqueItems",
    "pattern",
    "format",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "anyOf",
    "oneOf",
];

/// (keyword, rule, is a lower bound, the value when absent).
const BOUNDS: &[(&str, &str, bool, Option<f64>)] = &[
    ("minimum", "minimum_increased", true, None),
    ("exclusiveMinimum", "exclusive_minimum_increased", true, None),
    ("minLength", "min_length_increased", true, Some(0.0)),
    ("minItems", "min_items_increased", true, Some(0.0)),
    ("minProperties", "min_properties_increased", true, Some(0.0)),
    ("maximum", "maximum_decreased", false, None),
    ("exclusiveMaximum", "exclusive_maximum_decreased", false, None),
    ("maxLength", "max_length_decreased", false, None),
    ("maxItems", "max_items_decreased", false, None),
    ("maxProperties", "max_properties_decreased", false, None),
];

fn types(m: &Obj) -> Option<Vec<&str>> {
    match m.get("type")? {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(a) => Some(a.iter().filter_map(Value::as_str).collect()),
        _ => Some(Vec::new()),
    }
}

/// The values a schema is limited to by `const` or `enum`, with the keyword that limits them.
fn allowed(m: &Obj) -> Option<(&'static str, Vec<&Value>)> {
    if let Some(c) = m.get("const") {
        return Some(("const", vec![c]));
    }
    m.get("enum").map(|e| ("enum", e.as_array().map(|a| a.iter().collect()).unwrap_or_default()))
}

fn names(m: &Obj, key: &str) -> Vec<String> {
    let list = m.get(key).and_then(Value::as_array);
    list.map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

fn is_schema(v: &Value) -> bool {
    v.is_object() || v.is_boolean()
}

impl<'a> Checker<'a> {
    pub(super) fn types(&mut self, o: &Obj, n: &Obj, at: &str) {
        let [wn, rn] = self.names;
        let Some(nt) = types(n) else { return };
        let covered = |t: &str| nt.contains(&t) || (t == "integer" && nt.contains(&"number"));
        let message = match types(o) {
            None => format!("{rn} requires a type ({}); {wn} accepted any", nt.join(", ")),
            Some(ot) => {
                let lost: Vec<&str> = ot.into_iter().filter(|t| !covered(t)).collect();
                if lost.is_empty() {
                    return;
                }
                format!("{} accepted by {wn}, not by {rn}", lost.join(", "))
            }
        };
        self.push(child(at, "type"), "type_narrowed", message);
    }

    pub(super) fn values(&mut self, o: &Obj, n: &Obj, at: &str) {
        let [wn, rn] = self.names;
        let Some((key, nv)) = allowed(n) else { return };
        match allowed(o) {
            None => {
                let rule = if key == "const" { "const_added" } else { "enum_added" };
                self.push(child(at, key), rule, format!("{rn} accepts only {}", list(&nv)));
            }
            Some((_, ov)) => {
                let rule = if key == "const" { "const_changed" } else { "enum_value_removed" };
                for v in ov.into_iter().filter(|v| !nv.contains(v)) {
                    self.push(child(at, key), rule, format!("{v} accepted by {wn}, not by {rn}"));
                }
            }
        }
    }

    pub(super) fn bounds(&mut self, o: &Obj, n: &Obj, at: &str) {
        let [wn, rn] = self.names;
        for &(key, rule, lower, absent) in BOUNDS {
            let (ov, nv) = (o.get(key), n.get(key));
            if ov.is_some_and(|v| !v.is_number()) || nv.is_some_and(|v| !v.is_number()) {
                self.unknown_one(key, ov, nv, at);
                continue;
            }
            let Some(b) = nv.and_then(Value::as_f64) else { continue };
            let a = ov.and_then(Value::as_f64).or(absent);
            let tighter = match a {
                None => true,
                Some(a) => (lower && b > a) || (!lower && b < a),
            };
            if tighter {
                let was = a.map_or("none".to_string(), |a| a.to_string());
                self.push(child(at, key), rule, format!("{key} {was} in {wn}, {b} in {rn}"));
            }
        }
        if let Some(m2) = n.get("multipleOf").and_then(Value::as_f64) {
            let m1 = o.get("multipleOf").and_then(Value::as_f64);
            if m1.is_none_or(|m1| m2 == 0.0 || (m1 / m2).fract() != 0.0) {
                let was = m1.map_or("none".to_string(), |m| m.to_string());
                self.push(child(at, "multipleOf"), "multiple_of_changed", format!("multipleOf {was} in {wn}, {m2} in {rn}"));
            }
        }
        if n.get("uniqueItems") == Some(&Value::Bool(true)) && o.get("uniqueItems") != Some(&Value::Bool(true)) {
            self.push(child(at, "uniqueItems"), "unique_items_added", format!("{rn} requires unique items"));
        }
    }

    pub(super) fn strings(&mut self, o: &Obj, n: &Obj, at: &str) {
        let [wn, rn] = self.names;
        for (key, added, changed) in
            [("pattern", "pattern_added", "pattern_changed"), ("format", "format_added", "format_changed")]
        {
            let Some(nv) = n.get(key) else { continue };
            match o.get(key) {
                None => self.push(child(at, key), added, format!("{key} {nv} in {rn}, none in {wn}")),
                Some(ov) if ov != nv => self.push(child(at, key), changed, format!("{key} {ov} in {wn}, {nv} in {rn}")),
                Some(_) => {}
            }
        }
    }

    pub(super) fn object(&mut self, o: &'a Obj, n: &'a Obj, at: &str) {
        let [wn, rn] = self.names;
        let old_required = names(o, "required");
        for r in names(n, "required").into_iter().filter(|r| !old_required.contains(r)) {
            self.push(child(at, "required"), "required_added", format!("`{r}` is required by {rn}, not by {wn}"));
        }
        let empty = ANY.as_object().expect("an object");
        let op = o.get("properties").and_then(Value::as_object).unwrap_or(empty);
        let np = n.get("properties").and_then(Value::as_object).unwrap_or(empty);
        let (oa, na) = (o.get("additionalProperties"), n.get("additionalProperties"));
        let add_path = child(at, "additionalProperties");
        for (name, os) in op {
            let p = child(&child(at, "properties"), name);
            match (np.get(name), na) {
                (Some(ns), _) => self.schema(os, ns, p),
                (None, Some(Value::Bool(false))) => self.push(
                    p,
                    "property_removed_closed",
                    format!("`{name}` is not in {rn}, whose additionalProperties is false"),
                ),
                (None, Some(ns)) if is_schema(ns) => self.schema(os, ns, add_path.clone()),
                (None, _) => {}
            }
        }
        for (name, ns) in np.iter().filter(|(k, _)| !op.contains_key(*k)) {
            let p = child(&child(at, "properties"), name);
            match oa {
                Some(Value::Bool(false)) => {}
                Some(os) if os.is_object() => self.schema(os, ns, p),
                _ => {
                    if !self.accepts(&ANY, ns, &p) {
                        let m = format!("`{name}` is constrained in {rn} while {wn} is open (any value was allowed)");
                        self.push(p, "property_added_open", m);
                    }
                }
            }
        }
        match (oa, na) {
            (_, None | Some(Value::Bool(true))) | (Some(Value::Bool(false)), _) => {}
            (_, Some(Value::Bool(false))) => {
                self.push(add_path, "additional_properties_closed", format!("additionalProperties is false in {rn}"))
            }
            (None | Some(Value::Bool(true)), Some(ns)) => {
                if !self.accepts(&ANY, ns, &add_path) {
                    let m = format!("additionalProperties is constrained in {rn}; {wn} allowed any");
                    self.push(add_path, "additional_properties_narrowed", m);
                }
            }
            (Some(os), Some(ns)) => self.schema(os, ns, add_path),
        }
    }

    pub(super) fn items(&mut self, o: &'a Obj, n: &'a Obj, at: &str) {
        let Some(ni) = n.get("items") else { return };
        match o.get("items") {
            _ if !is_schema(ni) => self.unknown_one("items", o.get("items"), Some(ni), at),
            Some(oi) if !is_schema(oi) => self.unknown_one("items", Some(oi), Some(ni), at),
            Some(oi) => self.schema(oi, ni, child(at, "items")),
            None => self.schema(&ANY, ni, child(at, "items")),
        }
    }

    pub(super) fn unions(&mut self, old: &'a Value, o: &'a Obj, n: &'a Obj, at: &str) {
        let [wn, rn] = self.names;
        for (key, removed, added) in
            [("anyOf", "any_of_branch_removed", "any_of_added"), ("oneOf", "one_of_branch_removed", "one_of_added")]
        {
            let Some(nb) = n.get(key).and_then(Value::as_array) else { continue };
            let fits = |c: &Checker<'a>, b: &'a Value| {
                nb.iter().enumerate().any(|(j, s)| c.accepts(b, s, &child(&child(at, key), &j.to_string())))
            };
            match o.get(key).and_then(Value::as_array) {
                Some(ob) => {
                    for (i, b) in ob.iter().enumerate() {
                        if !fits(self, b) {
                            let m = format!("{wn}'s branch {i} accepts data no branch of {rn} accepts");
                            self.push(child(&child(at, key), &i.to_string()), removed, m);
                        }
                    }
                }
                None => {
                    if !fits(self, old) {
                        self.push(child(at, key), added, format!("{key} in {rn} and no branch accepts all {wn} accepted"));
                    }
                }
            }
        }
    }

    pub(super) fn unknown(&mut self, o: &Obj, n: &Obj, at: &str) {
        let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            if !KNOWN.contains(&k.as_str()) && !ANNOTATIONS.contains(&k.as_str()) {
                self.unknown_one(k, o.get(k), n.get(k), at);
            }
        }
    }

    fn unknown_one(&mut self, key: &str, ov: Option<&Value>, nv: Option<&Value>, at: &str) {
        if ov != nv {
            let m = format!("`{key}` changed and this check does not understand it here (assumed breaking)");
            self.push(child(at, key), "unsupported_keyword_changed", m);
        }
    }
}

fn list(values: &[&Value]) -> String {
    values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
}
