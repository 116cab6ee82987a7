//! Schema compatibility: which changes between two JSON Schemas break readers, per mode
//! (backward, forward, full), as schema registries define them.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::keywords::ANNOTATIONS;

/// Which side must keep reading what the other writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Consumers using NEW read data written with OLD: NEW accepts everything OLD accepted.
    Backward,
    /// Consumers using OLD read data written with NEW: OLD accepts everything NEW accepts.
    Forward,
    /// Both.
    Full,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Backward => "backward",
            Mode::Forward => "forward",
            Mode::Full => "full",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "backward" => Ok(Mode::Backward),
            "forward" => Ok(Mode::Forward),
            "full" => Ok(Mode::Full),
            other => Err(format!("unknown mode `{other}` (expected backward, forward or full)")),
        }
    }
}

/// One breaking change: where (a JSON pointer into the reader's schema), which rule, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breaking {
    pub pointer: String,
    pub rule: &'static str,
    pub message: String,
}

/// The breaking changes from `old` to `new` in `mode`; empty when compatible.
pub fn check(old: &Value, new: &Value, mode: Mode) -> Vec<Breaking> {
    match mode {
        Mode::Backward => backward(old, new, ["OLD", "NEW"]),
        Mode::Forward => backward(new, old, ["NEW", "OLD"]),
        Mode::Full => {
            let mut out = backward(old, new, ["OLD", "NEW"]);
            out.extend(backward(new, old, ["NEW", "OLD"]));
            out
        }
    }
}

/// Does `reader` accept everything `writer` accepts? Every way it may not, conservatively.
fn backward(writer: &Value, reader: &Value, names: [&'static str; 2]) -> Vec<Breaking> {
    let mut c = Checker { writer_root: writer, reader_root: reader, names, seen: HashSet::new(), out: Vec::new() };
    c.schema(writer, reader, String::new());
    c.out
}

/// The schema that accepts everything (`{}`), for a side that says nothing.
pub(super) static ANY: LazyLock<Value> = LazyLock::new(|| Value::Object(Map::new()));

pub(super) struct Checker<'a> {
    writer_root: &'a Value,
    reader_root: &'a Value,
    /// What messages call the writer's and the reader's schema: OLD and NEW, or NEW and OLD.
    pub(super) names: [&'static str; 2],
    /// Pairs of (writer, reader) schema nodes already entered through a `$ref`: a cycle is
    /// assumed compatible, the rest of the walk finds any break.
    seen: HashSet<(usize, usize)>,
    pub(super) out: Vec<Breaking>,
}

impl<'a> Checker<'a> {
    pub(super) fn push(&mut self, pointer: String, rule: &'static str, message: String) {
        self.out.push(Breaking { pointer, rule, message });
    }

    /// A checker over the same schemas and `$ref` pairs seen so far, with nothing reported yet.
    fn fork<'b>(&self) -> Checker<'b>
    where
        'a: 'b,
    {
        Checker {
            writer_root: self.writer_root,
            reader_root: self.reader_root,
            names: self.names,
            seen: self.seen.clone(),
            out: Vec::new(),
        }
    }

    /// Would `reader` accept everything `old` accepts? Without reporting anything.
    pub(super) fn accepts(&self, old: &'a Value, new: &'a Value, at: &str) -> bool {
        let mut c = self.fork();
        c.schema(old, new, at.to_string());
        c.out.is_empty()
    }

    /// Compares two (sub)schemas; `at` is the pointer to the reader's one.
    pub(super) fn schema(&mut self, old: &'a Value, new: &'a Value, mut at: String) {
        let (old, old_ref) = match resolve(self.writer_root, old) {
            Ok(r) => r,
            Err(r) => return self.push(at + "/$ref", "ref_unresolved", format!("{}: {r}", self.names[0])),
        };
        if let Some(siblings) = beside_ref(new) {
            // Keywords beside a `$ref` constrain too (2019-09 and later): NEW must accept OLD there as well.
            let siblings = Value::Object(siblings);
            let mut c = self.fork();
            c.schema(old, &siblings, at.clone());
            self.out.extend(c.out);
        }
        let (new, new_ref) = match resolve(self.reader_root, new) {
            Ok(r) => r,
            Err(r) => return self.push(at + "/$ref", "ref_unresolved", format!("{}: {r}", self.names[1])),
        };
        if let Some(target) = &new_ref {
            at = target.clone();
        }
        if (old_ref.is_some() || new_ref.is_some())
            && !self.seen.insert((old as *const Value as usize, new as *const Value as usize))
        {
            return;
        }
        let o = match old {
            Value::Bool(false) => return,
            Value::Bool(true) => ANY.as_object().expect("an object"),
            Value::Object(o) => o,
            _ => return self.unsupported(old, new, &at),
        };
        match new {
            Value::Bool(true) => {}
            Value::Bool(false) => self.push(at, "schema_closed", format!("{} accepts nothing here (`false`)", self.names[1])),
            Value::Object(n) => self.keywords(old, o, n, &at),
            _ => self.unsupported(old, new, &at),
        }
    }

    fn unsupported(&mut self, old: &Value, new: &Value, at: &str) {
        if old != new {
            self.push(
                at.to_string(),
                "unsupported_keyword_changed",
                "not a schema this check understands, and it changed".into(),
            );
        }
    }

    fn keywords(&mut self, old: &'a Value, o: &'a Map<String, Value>, n: &'a Map<String, Value>, at: &str) {
        self.types(o, n, at);
        self.values(o, n, at);
        self.bounds(o, n, at);
        self.strings(o, n, at);
        self.object(o, n, at);
        self.items(o, n, at);
        self.unions(old, o, n, at);
        self.unknown(o, n, at);
    }
}

/// Follows `$ref`s to local pointers: the node and, when a `$ref` was followed, its pointer; or
/// why it cannot.
fn resolve<'a>(root: &'a Value, mut v: &'a Value) -> Result<(&'a Value, Option<String>), String> {
    let mut target = None;
    for _ in 0..32 {
        let Some(r) = v.get("$ref") else { return Ok((v, target)) };
        let r = r.as_str().unwrap_or_default();
        let local = r.strip_prefix('#').filter(|p| p.is_empty() || p.starts_with("/$defs/") || p.starts_with("/definitions/"));
        let found = local.and_then(|p| root.pointer(p).map(|node| (p, node)));
        let Some((p, node)) = found else {
            return Err(format!("`{r}` is not a local reference (#, #/$defs/..., #/definitions/...) or its target is missing"));
        };
        target = Some(p.to_string());
        v = node;
    }
    Err("a chain of more than 32 `$ref`s (a reference to itself?)".into())
}

/// The keywords beside a `$ref` that constrain something, if any.
fn beside_ref(v: &Value) -> Option<Map<String, Value>> {
    let o = v.as_object().filter(|o| o.contains_key("$ref"))?;
    let rest: Map<String, Value> = o
        .iter()
        .filter(|(k, _)| *k != "$ref" && !ANNOTATIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!rest.is_empty()).then_some(rest)
}

/// `at` + `/` + `token`, escaped as JSON pointers want (`~` → `~0`, `/` → `~1`).
pub(super) fn child(at: &str, token: &str) -> String {
    format!("{at}/{}", token.replace('~', "~0").replace('/', "~1"))
}
