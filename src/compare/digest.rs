//! Body digests: a 128-bit hash of an outcome's body in a canonical form under the route's rules,
//! so two outcomes whose digests are equal are known to match without a field-level diff.
//!
//! The canonical form mirrors `super::diff`: ignored locations leave no trace, an object key
//! holding `null` counts as absent, object keys are hashed in sorted order, an integral number
//! hashes like the integer it equals (1 and 1.0 alike), and an unordered array hashes its
//! elements' digests sorted. Equal digests therefore imply an empty diff (up to a 2^-128 chance of
//! collision); unequal digests only mean "diff in full", which also settles what the digest
//! cannot see (numbers within `numeric_tolerance`, a JSON body against a text one).

use serde_json::Value;
use xxhash_rust::xxh3::Xxh3;

use super::diff::{compact, raw_bytes, MAX_DEPTH};
use super::outcome::{BodyEncoding, Outcome};
use super::rules::{BodyRule, CompareRules};

/// How a body was hashed: its two sides compare only when both were hashed the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Structurally, under the rules (`body = "json"`, both bodies JSON).
    Structure,
    /// As bytes (`body = "bytes"`, or a body that is not JSON).
    Bytes,
    /// Not at all (`body = "none"`): only the status is compared.
    Skipped,
}

/// A body's digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyDigest {
    pub kind: Kind,
    pub hash: u128,
}

impl BodyDigest {
    /// The digest of `o`'s body under `rules`; `None` when the rules make digests unsound
    /// ([`CompareRules::digestible`]), so the pair is always diffed in full.
    pub fn of(rules: &CompareRules, o: &Outcome) -> Option<Self> {
        let structural = o.body_encoding == BodyEncoding::Json;
        let kind = match rules.body {
            BodyRule::None => return Some(Self { kind: Kind::Skipped, hash: 0 }),
            BodyRule::Json if structural && !rules.digestible() => return None,
            BodyRule::Json if structural => Kind::Structure,
            BodyRule::Json | BodyRule::Bytes => Kind::Bytes,
        };
        let mut h = Xxh3::new();
        match kind {
            Kind::Structure => {
                let track = !rules.ignore.is_empty() || !rules.unordered.is_empty();
                Canon { rules, track, depth: 0, segs: Vec::new(), h: &mut h }.value(&o.body)
            }
            _ => h.update(&raw_bytes(o)),
        }
        Some(Self { kind, hash: h.digest128() })
    }
}

/// Writes the canonical form of values into a hasher. With `track` (the rules name locations),
/// `segs` is the current body location; without, only the depth is followed.
struct Canon<'a> {
    rules: &'a CompareRules,
    track: bool,
    depth: usize,
    segs: Vec<String>,
    h: &'a mut Xxh3,
}

impl Canon<'_> {
    fn enter(&mut self, seg: impl std::fmt::Display) {
        self.depth += 1;
        if self.track {
            self.segs.push(seg.to_string());
        }
    }

    fn leave(&mut self) {
        self.depth -= 1;
        self.segs.pop();
    }

    fn ignored(&self) -> bool {
        self.track && self.rules.ignores(&self.segs)
    }

    fn value(&mut self, v: &Value) {
        if self.ignored() {
            self.h.update(b"i");
            return;
        }
        if self.depth >= MAX_DEPTH {
            // The diff compares this deep down without rules: identical text is equal.
            let text = compact(v);
            self.h.update(b"d");
            self.h.update(&(text.len() as u64).to_le_bytes());
            self.h.update(&text);
            return;
        }
        match v {
            Value::Null => self.h.update(b"n"),
            Value::Bool(b) => self.h.update(if *b { b"t" } else { b"f" }),
            Value::Number(n) => self.number(n),
            Value::String(s) => {
                self.h.update(b"s");
                self.h.update(&(s.len() as u64).to_le_bytes());
                self.h.update(s.as_bytes());
            }
            Value::Array(items) if self.track && self.rules.is_unordered(&self.segs) => {
                // A multiset: lengths must agree, elements pair up in any order.
                let mut digests: Vec<u128> = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let mut inner = Xxh3::new();
                        let (rules, depth, segs) = (self.rules, self.depth, self.segs.clone());
                        let mut canon = Canon { rules, track: true, depth, segs, h: &mut inner };
                        canon.enter(i);
                        canon.value(item);
                        inner.digest128()
                    })
                    .collect();
                digests.sort_unstable();
                self.h.update(b"u");
                self.h.update(&(digests.len() as u64).to_le_bytes());
                for d in digests {
                    self.h.update(&d.to_le_bytes());
                }
            }
            Value::Array(items) => {
                // Only the elements at locations not ignored: an ignored element may be absent.
                self.h.update(b"[");
                for (i, item) in items.iter().enumerate() {
                    self.enter(i);
                    if !self.ignored() {
                        self.h.update(&(i as u64).to_le_bytes());
                        self.value(item);
                    }
                    self.leave();
                }
                self.h.update(b"]");
            }
            Value::Object(map) => {
                // serde_json's map iterates its keys sorted (no `preserve_order`).
                self.h.update(b"{");
                for (k, item) in map {
                    if item.is_null() {
                        continue;
                    }
                    self.enter(k);
                    if !self.ignored() {
                        self.h.update(&(k.len() as u64).to_le_bytes());
                        self.h.update(k.as_bytes());
                        self.value(item);
                    }
                    self.leave();
                }
                self.h.update(b"}");
            }
        }
    }

    /// Integers exactly; a float that is integral like the integer it equals; others by bits.
    fn number(&mut self, n: &serde_json::Number) {
        let int = n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)).or_else(|| {
            let f = n.as_f64()?;
            (f.fract() == 0.0 && f.abs() < 1.7e38).then_some(f as i128)
        });
        match (int, n.as_f64()) {
            (Some(i), _) => {
                self.h.update(b"I");
                self.h.update(&i.to_le_bytes());
            }
            (None, Some(f)) => {
                self.h.update(b"F");
                self.h.update(&f.to_bits().to_le_bytes());
            }
            (None, None) => {
                self.h.update(b"?");
                self.h.update(n.to_string().as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests;
