//! Path templates (`/webhooks/{tenant}/stripe`) and a route's matching rules: its path and
//! aliases, case sensitivity and pass-through methods, and the captures of one request.
//!
//! A `{name}` placeholder is a whole segment. Templates are matched by `matchit` on the canonical
//! path ([`super::path`]); captures are read from the canonical path and percent-decoded.

use http::Method;

use super::path::{canonical, decode_capture, fold};

/// One segment of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Param(String),
}

/// A validated path template in canonical form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// As configured (canonical), e.g. `/webhooks/{tenant}/stripe`.
    pub text: String,
    pub segments: Vec<Segment>,
    /// The segments read loosely ([`super::path::loose`]): what requests near it are compared with.
    pub loose: Vec<Segment>,
}

impl Template {
    /// Parses a configured path; the error says what is wrong with it.
    pub fn parse(path: &str) -> Result<Self, String> {
        if !path.starts_with('/') || path.contains('?') || path.contains('#') {
            return Err("an absolute path such as /webhooks/github, without a query".into());
        }
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%/{}".contains(&b);
        if let Some(c) = path.bytes().find(|b| !allowed(*b)) {
            return Err(format!(
                "a path of URI path characters (letters, digits, `-._~!$&'()*+,;=:@/`, `%` escapes, `{{placeholders}}`), not `{}`",
                char::from(c).escape_default()
            ));
        }
        let c = canonical(path);
        if c.ambiguous {
            return Err("a path without an encoded `/` or `\\`, a NUL, a raw `\\` or an invalid escape".into());
        }
        if c.path != path {
            return Err(format!(
                "a canonical path (here `{}`): no empty, `.`, `..` or `;` parts, no trailing `/`, no needless escapes",
                c.path
            ));
        }
        let mut segments = Vec::new();
        for seg in path.split('/').skip(1).filter(|s| !s.is_empty()) {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ok {
                    return Err(format!("a placeholder name of letters, digits and `_` (`{seg}`)"));
                }
                if segments.contains(&Segment::Param(name.to_string())) {
                    return Err(format!("each placeholder once (`{{{name}}}` twice)"));
                }
                segments.push(Segment::Param(name.to_string()));
            } else if seg.contains(['{', '}']) {
                return Err(format!("`{{name}}` placeholders that fill a whole segment (`{seg}`)"));
            } else {
                segments.push(Segment::Literal(seg.to_string()));
            }
        }
        let mut loose_segments = Vec::new();
        for seg in &segments {
            match seg {
                Segment::Param(p) => loose_segments.push(Segment::Param(p.clone())),
                Segment::Literal(l) => loose_segments.extend(
                    super::path::loose(&format!("/{l}")).split('/').filter(|s| !s.is_empty()).map(|s| Segment::Literal(s.into())),
                ),
            }
        }
        Ok(Self { text: path.to_string(), segments, loose: loose_segments })
    }

    /// The loose reading as a lookup pattern: literal paths as they are, templates in `matchit`'s
    /// syntax (a literal `{` or `}` doubled).
    pub fn loose_pattern(&self) -> String {
        let templated = self.params().next().is_some();
        let mut out = String::with_capacity(self.text.len());
        for seg in &self.loose {
            out.push('/');
            match seg {
                Segment::Literal(l) if templated => out.push_str(&l.replace('{', "{{").replace('}', "}}")),
                Segment::Literal(l) => out.push_str(l),
                Segment::Param(p) => {
                    out.push('{');
                    out.push_str(p);
                    out.push('}');
                }
            }
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }

    /// Placeholder names, in order.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Param(p) => Some(p.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// The template with its literal segments case-folded (placeholder names kept).
    pub fn folded(&self) -> String {
        let mut out = String::with_capacity(self.text.len());
        for seg in &self.segments {
            out.push('/');
            match seg {
                Segment::Literal(l) => out.push_str(&l.to_ascii_lowercase()),
                Segment::Param(p) => {
                    out.push('{');
                    out.push_str(p);
                    out.push('}');
                }
            }
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }

    /// Whether some path matches both templates read loosely (case folded, escapes decoded).
    pub fn overlaps(&self, other: &Template) -> bool {
        self.loose.len() == other.loose.len()
            && self.loose.iter().zip(&other.loose).all(|pair| match pair {
                (Segment::Literal(a), Segment::Literal(b)) => a == b,
                _ => true,
            })
    }
}

/// A route's validated `match` table.
#[derive(Clone, Debug)]
pub struct Matching {
    pub path: Template,
    /// More paths that are this route.
    pub aliases: Vec<Template>,
    /// Letters in literal segments match in either case; captures keep the sender's case.
    pub case_insensitive: bool,
    /// Methods on the route's paths forwarded untouched instead of refused with 405.
    pub other_methods: Vec<Method>,
    /// The route's own templates, for its captures.
    own: matchit::Router<()>,
}

impl Matching {
    pub fn new(path: Template, aliases: Vec<Template>, case_insensitive: bool, other_methods: Vec<Method>) -> Self {
        let mut own = matchit::Router::new();
        for t in std::iter::once(&path).chain(&aliases) {
            let pattern = if case_insensitive { t.folded() } else { t.text.clone() };
            // Overlaps within a route are refused by validation; a failure here only loses captures.
            if let Err(e) = own.insert(pattern, ()) {
                tracing::error!(path = %t.text, error = %e, "route template not indexed");
            }
        }
        Self { path, aliases, case_insensitive, other_methods, own }
    }

    /// Every template of the route: its path, then its aliases.
    pub fn templates(&self) -> impl Iterator<Item = &Template> {
        std::iter::once(&self.path).chain(&self.aliases)
    }

    /// Whether the route has placeholders at all (else a request has no captures to compute).
    pub fn has_params(&self) -> bool {
        self.path.params().next().is_some()
    }

    /// The captures of a request path that is this route (empty if it is not).
    pub fn captures(&self, raw_path: &str) -> Captures {
        let c = canonical(raw_path);
        let mut out = Captures::default();
        if !self.has_params() || c.ambiguous {
            return out;
        }
        let lookup = if self.case_insensitive { fold(&c.path) } else { std::borrow::Cow::Borrowed(c.path.as_ref()) };
        if let Ok(m) = self.own.at(&lookup) {
            for (name, value) in m.params.iter() {
                out.0.push((name.to_string(), decode_capture(same_span(&lookup, &c.path, value))));
            }
        }
        out
    }
}

/// The slice of `original` at the place `part` (a slice of `folded`) has in `folded`. ASCII case
/// folding keeps every byte in place, so captures keep the sender's case.
pub fn same_span<'a>(folded: &str, original: &'a str, part: &str) -> &'a str {
    let start = (part.as_ptr() as usize).wrapping_sub(folded.as_ptr() as usize);
    original.get(start..start + part.len()).unwrap_or_default()
}

/// Named segments captured from a request's canonical path, percent-decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Captures(pub Vec<(String, String)>);

impl Captures {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}
