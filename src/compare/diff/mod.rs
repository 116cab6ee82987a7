//! Field-level diff of two outcomes under a route's comparison rules.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::outcome::{BodyEncoding, Outcome};
use super::rules::{BodyRule, CompareRules};

/// Body locations deeper than this are not walked field by field: the subtree there is compared
/// whole (iteratively) and reported as one diff at that depth.
pub const MAX_DEPTH: usize = 128;

/// Values carried in a [`FieldDiff`] are cut off below this many levels of nesting; a deeper array
/// or object is replaced by [`TRUNCATED`], so a diff stays cheap to clone, drop and serialize.
pub const MAX_VALUE_DEPTH: usize = 32;

/// Stands in for a container nested deeper than [`MAX_VALUE_DEPTH`] inside a diff value.
pub const TRUNCATED: &str = "(truncated: nested too deeply)";

static NULL: Value = Value::Null;

/// One difference: where (`/status`, or `/body` + an RFC 6901 pointer into the body) and the two
/// values there (`null` when absent on one side). Wire format of a parity record's `diff` entries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldDiff {
    /// `/status`, `/body`, or `/body` followed by the RFC 6901 pointer of the differing location.
    pub pointer: String,
    /// The legacy value there (`null` when absent).
    pub legacy: Value,
    /// The new value there (`null` when absent).
    pub new: Value,
}

/// The differences between two outcomes under `rules`; empty = the outcomes match. Pure.
///
/// Status comes first, then body diffs in document order (object keys sorted). A key holding
/// `null` on one side and absent on the other counts as equal (the record could not tell them apart).
pub fn compare(rules: &CompareRules, legacy: &Outcome, new: &Outcome) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    if !rules.status.agrees(legacy.status, new.status) {
        out.push(FieldDiff { pointer: "/status".to_string(), legacy: legacy.status.into(), new: new.status.into() });
    }
    let structural = legacy.body_encoding == BodyEncoding::Json && new.body_encoding == BodyEncoding::Json;
    match rules.body {
        BodyRule::None => {}
        BodyRule::Json if structural => {
            let mut walk = Walk { rules, segs: Vec::new(), depth: 0, out, collect: true };
            walk.value(&legacy.body, &new.body);
            out = walk.out;
        }
        BodyRule::Json | BodyRule::Bytes => {
            if raw_bytes(legacy) != raw_bytes(new) {
                out.push(FieldDiff { pointer: "/body".to_string(), legacy: clip(&legacy.body, 0), new: clip(&new.body, 0) });
            }
        }
    }
    out
}

/// The recursive structural comparison. `segs[..depth]` is the current body location (buffers
/// past `depth` are kept for reuse); when `collect` is false the walk only answers "equal?" and
/// stops at the first difference.
struct Walk<'r> {
    rules: &'r CompareRules,
    segs: Vec<String>,
    depth: usize,
    out: Vec<FieldDiff>,
    collect: bool,
}

impl Walk<'_> {
    fn path(&self) -> &[String] {
        &self.segs[..self.depth]
    }

    /// Descends into key or index `seg`, reusing a segment buffer when there is one.
    fn enter(&mut self, seg: impl std::fmt::Display) {
        use std::fmt::Write;
        match self.segs.get_mut(self.depth) {
            Some(buf) => {
                buf.clear();
                let _ = write!(buf, "{seg}");
            }
            None => self.segs.push(seg.to_string()),
        }
        self.depth += 1;
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Compares the values at the current location; returns whether they agree.
    fn value(&mut self, a: &Value, b: &Value) -> bool {
        if self.rules.ignores(self.path()) {
            return true;
        }
        let equal = match (a, b) {
            _ if self.depth >= MAX_DEPTH => deep_equal(self.rules, a, b),
            (Value::Object(x), Value::Object(y)) => return self.objects(x, y),
            (Value::Array(x), Value::Array(y)) if self.rules.is_unordered(self.path()) => self.multiset(x, y),
            (Value::Array(x), Value::Array(y)) => return self.arrays(x, y),
            (Value::Number(x), Value::Number(y)) => self.rules.numbers_agree(x, y),
            // Containers of different kinds differ by discriminant: this never recurses.
            _ => a == b,
        };
        if !equal {
            self.report(a, b);
        }
        equal
    }

    fn objects(&mut self, x: &Map<String, Value>, y: &Map<String, Value>) -> bool {
        if !self.collect {
            // Order does not matter when only asking "equal?": skip sorting the key union.
            let pairs = x.iter().map(|(k, v)| (k, v, y.get(k).unwrap_or(&NULL)));
            let only_y = y.iter().filter(|(k, _)| !x.contains_key(*k)).map(|(k, w)| (k, &NULL, w));
            return pairs.chain(only_y).all(|(k, a, b)| self.entry(k, a, b));
        }
        let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
        let mut equal = true;
        for key in keys {
            equal &= self.entry(key, x.get(key).unwrap_or(&NULL), y.get(key).unwrap_or(&NULL));
        }
        equal
    }

    fn entry(&mut self, key: &str, a: &Value, b: &Value) -> bool {
        self.enter(key);
        let equal = self.value(a, b);
        self.leave();
        equal
    }

    fn arrays(&mut self, x: &[Value], y: &[Value]) -> bool {
        let mut equal = true;
        for i in 0..x.len().max(y.len()) {
            self.enter(i);
            equal &= match (x.get(i), y.get(i)) {
                (Some(a), Some(b)) => self.value(a, b),
                // An element on one side only: a difference even when it is `null`.
                (a, b) if !self.rules.ignores(self.path()) => {
                    self.report(a.unwrap_or(&NULL), b.unwrap_or(&NULL));
                    false
                }
                _ => true,
            };
            self.leave();
            if !equal && !self.collect {
                return false;
            }
        }
        equal
    }

    /// Multiset equality: each legacy element is paired with an unused equal new element (trying
    /// the same index first). Paths inside elements use the legacy index. O(n²) comparisons at worst.
    /// Multiset equality: a perfect matching of equal elements. Greedy first (the same index,
    /// then the first free equal element); when that fails, augmenting paths re-pair earlier
    /// elements, since equality with a tolerance is not transitive and greedy can miss a pairing.
    fn multiset(&mut self, x: &[Value], y: &[Value]) -> bool {
        if x.len() != y.len() {
            return false;
        }
        let collect = std::mem::replace(&mut self.collect, false);
        let mut pairs = Pairing { owner: vec![None; y.len()], memo: HashMap::new() };
        let mut equal = true;
        for i in 0..x.len() {
            let mut visited = vec![false; y.len()];
            if !self.augment(i, x, y, &mut pairs, &mut visited) {
                equal = false;
                break;
            }
        }
        self.collect = collect;
        equal
    }

    /// Kuhn's augmenting path from legacy element `i`.
    fn augment(&mut self, i: usize, x: &[Value], y: &[Value], pairs: &mut Pairing, visited: &mut [bool]) -> bool {
        let order = || std::iter::once(i).filter(|&j| j < y.len()).chain((0..y.len()).filter(move |&j| j != i));
        // A free equal element first: the common case never re-pairs anything or remembers
        // comparisons.
        for j in order() {
            if !visited[j] && pairs.owner[j].is_none() && self.equal_at(i, j, x, y, None) {
                visited[j] = true;
                pairs.owner[j] = Some(i);
                return true;
            }
        }
        for j in order() {
            if visited[j] || !self.equal_at(i, j, x, y, Some(&mut pairs.memo)) {
                continue;
            }
            visited[j] = true;
            if let Some(k) = pairs.owner[j] {
                if self.augment(k, x, y, pairs, visited) {
                    pairs.owner[j] = Some(i);
                    return true;
                }
            }
        }
        false
    }

    fn equal_at(
        &mut self,
        i: usize,
        j: usize,
        x: &[Value],
        y: &[Value],
        memo: Option<&mut HashMap<(usize, usize), bool>>,
    ) -> bool {
        if let Some(known) = memo.as_ref().and_then(|m| m.get(&(i, j))) {
            return *known;
        }
        self.enter(i);
        let equal = self.value(&x[i], &y[j]);
        self.leave();
        if let Some(m) = memo {
            m.insert((i, j), equal);
        }
        equal
    }

    fn report(&mut self, a: &Value, b: &Value) {
        if self.collect {
            let mut pointer = String::from("/body");
            for seg in self.path() {
                pointer.push('/');
                pointer.push_str(&seg.replace('~', "~0").replace('/', "~1"));
            }
            self.out.push(FieldDiff { pointer, legacy: clip(a, 0), new: clip(b, 0) });
        }
    }
}

/// Matching state of one unordered comparison: which legacy element holds each new element,
/// and the element comparisons already made.
struct Pairing {
    owner: Vec<Option<usize>>,
    memo: HashMap<(usize, usize), bool>,
}

/// Structural equality without recursion (for subtrees below [`MAX_DEPTH`]): numbers use the
/// tolerance and an absent key equals `null`; ignore and unordered rules do not apply down here.
fn deep_equal(rules: &CompareRules, a: &Value, b: &Value) -> bool {
    let mut stack = vec![(a, b)];
    while let Some((a, b)) = stack.pop() {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                stack.extend(x.iter().map(|(k, v)| (v, y.get(k).unwrap_or(&NULL))));
                stack.extend(y.iter().filter(|(k, _)| !x.contains_key(*k)).map(|(_, w)| (&NULL, w)));
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => stack.extend(x.iter().zip(y)),
            (Value::Number(x), Value::Number(y)) if rules.numbers_agree(x, y) => {}
            (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => return false,
            _ if a == b => {}
            _ => return false,
        }
    }
    true
}

/// A copy of `v` with containers nested deeper than [`MAX_VALUE_DEPTH`] replaced by [`TRUNCATED`].
fn clip(v: &Value, depth: usize) -> Value {
    match v {
        Value::Array(_) | Value::Object(_) if depth >= MAX_VALUE_DEPTH => Value::String(TRUNCATED.to_string()),
        Value::Array(items) => Value::Array(items.iter().map(|x| clip(x, depth + 1)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, x)| (k.clone(), clip(x, depth + 1))).collect()),
        scalar => scalar.clone(),
    }
}

/// `Outcome::body_bytes()`, except that a JSON body nested deeper than [`MAX_DEPTH`] is serialized
/// without recursion (the same compact form), so hostile depth cannot overflow the stack.
pub(crate) fn raw_bytes(o: &Outcome) -> Vec<u8> {
    if o.body_encoding == BodyEncoding::Json && nested_deeper_than(&o.body, MAX_DEPTH) {
        compact(&o.body)
    } else {
        o.body_bytes()
    }
}

fn nested_deeper_than(v: &Value, limit: usize) -> bool {
    let mut stack = vec![(v, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        match v {
            Value::Array(_) | Value::Object(_) if depth >= limit => return true,
            Value::Array(items) => stack.extend(items.iter().map(|c| (c, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|c| (c, depth + 1))),
            _ => {}
        }
    }
    false
}

/// Compact JSON text of `v`, byte-identical to `v.to_string()`, built with an explicit stack.
pub(crate) fn compact(v: &Value) -> Vec<u8> {
    enum Step<'a> {
        Value(&'a Value),
        Key(&'a str),
        Raw(&'static str),
    }
    let mut out = String::new();
    let mut stack = vec![Step::Value(v)];
    while let Some(step) = stack.pop() {
        match step {
            Step::Raw(s) => out.push_str(s),
            Step::Key(k) => {
                out.push_str(&Value::String(k.to_string()).to_string());
                out.push(':');
            }
            Step::Value(Value::Array(items)) => {
                out.push('[');
                stack.push(Step::Raw("]"));
                for (i, item) in items.iter().enumerate().rev() {
                    stack.push(Step::Value(item));
                    if i > 0 {
                        stack.push(Step::Raw(","));
                    }
                }
            }
            Step::Value(Value::Object(map)) => {
                out.push('{');
                stack.push(Step::Raw("}"));
                for (i, (k, item)) in map.iter().enumerate().rev() {
                    stack.push(Step::Value(item));
                    stack.push(Step::Key(k));
                    if i > 0 {
                        stack.push(Step::Raw(","));
                    }
                }
            }
            Step::Value(scalar) => out.push_str(&scalar.to_string()),
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests;
