//! A route's comparison rules: status, body mode, ignored pointers, tolerance, unordered arrays.

use serde::Deserialize;
use serde_json::Number;

/// How the two status codes are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusRule {
    /// The codes must be identical.
    Exact,
    /// Only the class must agree: any 2xx equals any 2xx (`status / 100` equal).
    Class,
}

impl StatusRule {
    /// Whether `legacy` and `new` agree under this rule.
    pub fn agrees(self, legacy: u16, new: u16) -> bool {
        match self {
            StatusRule::Exact => legacy == new,
            StatusRule::Class => legacy / 100 == new / 100,
        }
    }
}

/// How the two bodies are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyRule {
    /// Structurally, field by field (falls back to bytes when either body is not JSON).
    Json,
    /// Byte for byte.
    Bytes,
    /// Not at all.
    None,
}

/// One segment of a [`PointerPattern`].
#[derive(Clone, Debug, PartialEq)]
enum Segment {
    /// `*`: any array index or object key.
    Any,
    /// A literal key or index, already unescaped.
    Literal(String),
}

/// A JSON pointer pattern relative to the BODY root, where a segment `*` matches any array index
/// (or any object key). RFC 6901 escaping (~0 ~1) applies to literal segments; a segment that is
/// exactly `*` is always the wildcard.
#[derive(Clone, Debug, PartialEq)]
pub struct PointerPattern {
    raw: String,
    segments: Vec<Segment>,
}

impl PointerPattern {
    /// Parses a pattern: it must start with `/`, or be empty for the whole body.
    pub fn parse(s: &str) -> Result<Self, String> {
        const EXPECTED: &str = "expected a JSON pointer such as /items/*/id (starting with '/', or empty for the whole body)";
        if s.is_empty() {
            return Ok(Self { raw: String::new(), segments: Vec::new() });
        }
        let Some(rest) = s.strip_prefix('/') else {
            return Err(format!("{EXPECTED}, got {s:?}"));
        };
        let segments = rest
            .split('/')
            .map(|seg| if seg == "*" { Ok(Segment::Any) } else { unescape(seg).map(Segment::Literal) })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{e} in {s:?}: {EXPECTED}"))?;
        Ok(Self { raw: s.to_string(), segments })
    }

    /// Whether the pattern names exactly this location; `path` holds the unescaped segments of a
    /// concrete location in the body (array indices as decimal strings).
    pub fn matches(&self, path: &[String]) -> bool {
        self.segments.len() == path.len()
            && self.segments.iter().zip(path).all(|(pat, seg)| match pat {
                Segment::Any => true,
                Segment::Literal(lit) => lit == seg,
            })
    }

    /// The pattern as it was written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

/// RFC 6901 unescaping of one segment: `~0` → `~`, `~1` → `/`; any other `~` is an error.
fn unescape(seg: &str) -> Result<String, String> {
    let mut out = String::with_capacity(seg.len());
    let mut chars = seg.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('~'),
            Some('1') => out.push('/'),
            Some(other) => return Err(format!("invalid escape ~{other} (only ~0 and ~1 are allowed)")),
            None => return Err("dangling ~ (write ~0 for a literal ~)".to_string()),
        }
    }
    Ok(out)
}

/// How one route's legacy and new outcomes are compared.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareRules {
    /// How status codes are compared (default `Exact`).
    pub status: StatusRule,
    /// How bodies are compared (default `Json`).
    pub body: BodyRule,
    /// Locations (and everything under them) never compared.
    pub ignore: Vec<PointerPattern>,
    /// Absolute: numbers a, b are equal if |a - b| <= tolerance (default 0.0; 1 == 1.0 always).
    /// A negative or NaN tolerance means exact comparison.
    pub numeric_tolerance: f64,
    /// Arrays at these locations compare as multisets.
    pub unordered: Vec<PointerPattern>,
}

impl Default for CompareRules {
    fn default() -> Self {
        Self {
            status: StatusRule::Exact,
            body: BodyRule::Json,
            ignore: Vec::new(),
            numeric_tolerance: 0.0,
            unordered: Vec::new(),
        }
    }
}

impl CompareRules {
    /// Whether the body location `path` is ignored (matched by an `ignore` pattern).
    pub fn ignores(&self, path: &[String]) -> bool {
        self.ignore.iter().any(|p| p.matches(path))
    }

    /// Whether an array at the body location `path` compares as a multiset.
    pub fn is_unordered(&self, path: &[String]) -> bool {
        self.unordered.iter().any(|p| p.matches(path))
    }

    /// Whether equal body digests (`super::digest`) prove equal bodies under these rules. Not when
    /// an unordered array is declared and some pattern names a literal array index: inside a
    /// multiset the diff walks an element at its counterpart's index, which a digest cannot know.
    pub fn digestible(&self) -> bool {
        let indexed =
            |p: &PointerPattern| p.segments.iter().any(|s| matches!(s, Segment::Literal(l) if l.parse::<usize>().is_ok()));
        self.unordered.is_empty() || !self.ignore.iter().chain(&self.unordered).any(indexed)
    }

    /// Whether two JSON numbers are equal under the tolerance. Two integers are compared exactly
    /// (no rounding through f64); otherwise both are compared as f64, so 1 and 1.0 are equal.
    pub fn numbers_agree(&self, a: &Number, b: &Number) -> bool {
        if a == b {
            return true;
        }
        let tol = self.numeric_tolerance;
        if let (Some(x), Some(y)) = (as_integer(a), as_integer(b)) {
            return x.abs_diff(y) as f64 <= tol;
        }
        match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= tol,
            _ => false,
        }
    }
}

/// The number as an exact integer, when it is one.
fn as_integer(n: &Number) -> Option<i128> {
    n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(segs: &[&str]) -> Vec<String> {
        segs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn patterns_parse_and_match_concrete_locations() {
        let cases: &[(&str, &[&str], bool)] = &[
            ("", &[], true),
            ("", &["a"], false),
            ("/a", &["a"], true),
            ("/a", &["a", "b"], false),
            ("/a/b", &["a"], false),
            ("/items/*/id", &["items", "0", "id"], true),
            ("/items/*/id", &["items", "17", "id"], true),
            ("/items/*/id", &["items", "17", "price"], false),
            ("/*", &["anything"], true),
            ("/a~1b/c~0d", &["a/b", "c~d"], true),
            ("/a~1b", &["a~1b"], false),
            ("/~01", &["~1"], true),
            ("/", &[""], true),
            ("/a//b", &["a", "", "b"], true),
        ];
        for (pattern, segs, expected) in cases {
            let p = PointerPattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
            assert_eq!(p.as_str(), *pattern);
            assert_eq!(p.matches(&path(segs)), *expected, "{pattern} vs {segs:?}");
        }
    }

    #[test]
    fn malformed_patterns_say_what_is_expected() {
        let cases: &[(&str, &str)] = &[
            ("items/*/id", "a JSON pointer such as /items/*/id"),
            ("*", "starting with '/'"),
            ("/a~2", "invalid escape ~2"),
            ("/a~", "dangling ~"),
            ("#/a", "got \"#/a\""),
        ];
        for (pattern, needle) in cases {
            let err = PointerPattern::parse(pattern).expect_err(pattern);
            assert!(err.contains(needle), "{pattern}: {err}");
        }
    }

    #[test]
    fn status_rules() {
        let cases = [
            (StatusRule::Exact, 200, 200, true),
            (StatusRule::Exact, 200, 201, false),
            (StatusRule::Class, 200, 204, true),
            (StatusRule::Class, 500, 503, true),
            (StatusRule::Class, 200, 404, false),
            (StatusRule::Class, 399, 400, false),
        ];
        for (rule, a, b, expected) in cases {
            assert_eq!(rule.agrees(a, b), expected, "{rule:?} {a} {b}");
        }
    }

    #[test]
    fn numbers_compare_with_the_tolerance() {
        let n = |s: &str| serde_json::from_str::<Number>(s).unwrap();
        let cases = [
            (0.0, "1", "1.0", true),
            (0.0, "1", "2", false),
            (0.0, "-0.0", "0", true),
            (0.0, "10.00", "10.005", false),
            (0.01, "10.00", "10.005", true),
            (0.01, "10.0", "10.02", false),
            (0.0, "9007199254740993", "9007199254740992", false),
            (1.0, "9007199254740993", "9007199254740992", true),
            (0.0, "18446744073709551615", "-9223372036854775808", false),
            (f64::NAN, "1", "1", true),
            (f64::NAN, "1.5", "1.6", false),
            (-1.0, "2", "2.0", true),
            (f64::INFINITY, "1", "1e300", true),
        ];
        for (tol, a, b, expected) in cases {
            let rules = CompareRules { numeric_tolerance: tol, ..CompareRules::default() };
            assert_eq!(rules.numbers_agree(&n(a), &n(b)), expected, "tol {tol}: {a} vs {b}");
            assert_eq!(rules.numbers_agree(&n(b), &n(a)), expected, "tol {tol}: {b} vs {a}");
        }
    }

    #[test]
    fn defaults_and_wire_names() {
        let d = CompareRules::default();
        assert_eq!((d.status, d.body, d.numeric_tolerance), (StatusRule::Exact, BodyRule::Json, 0.0));
        assert!(d.ignore.is_empty() && d.unordered.is_empty());
        for (wire, rule) in [("\"exact\"", StatusRule::Exact), ("\"class\"", StatusRule::Class)] {
            assert_eq!(serde_json::from_str::<StatusRule>(wire).unwrap(), rule);
        }
        for (wire, rule) in [("\"json\"", BodyRule::Json), ("\"bytes\"", BodyRule::Bytes), ("\"none\"", BodyRule::None)] {
            assert_eq!(serde_json::from_str::<BodyRule>(wire).unwrap(), rule);
        }
        assert!(serde_json::from_str::<BodyRule>("\"Json\"").is_err());
    }

    #[test]
    fn rules_look_up_ignored_and_unordered_locations() {
        let p = |s: &str| PointerPattern::parse(s).unwrap();
        let rules =
            CompareRules { ignore: vec![p("/updated_at"), p("/items/*/id")], unordered: vec![p("/tags")], ..Default::default() };
        assert!(rules.ignores(&path(&["updated_at"])));
        assert!(rules.ignores(&path(&["items", "3", "id"])));
        assert!(!rules.ignores(&path(&["items", "3"])));
        assert!(rules.is_unordered(&path(&["tags"])));
        assert!(!rules.is_unordered(&path(&["items"])));
    }
}
