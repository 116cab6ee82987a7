//! Maps between byte offsets in a TOML file and dotted key paths such as `route[1].signature.scheme`.
//!
//! serde reports a byte span but no key; validation reports a key but no span. Both directions go
//! through one flat index of every key in the file, built with `toml_edit`, which keeps spans.

use std::ops::Range;

use toml_edit::{ImDocument, Item, Table, Value};

/// Every key (and array element) in a document with the span of its key and value.
pub struct KeyIndex {
    entries: Vec<(String, Range<usize>)>,
}

impl KeyIndex {
    /// Indexes `src`; a file that does not parse yields an empty index.
    pub fn new(src: &str) -> Self {
        let mut entries = Vec::new();
        if let Ok(doc) = ImDocument::parse(src) {
            walk_table(doc.as_table(), "", &mut entries);
        }
        Self { entries }
    }

    /// The innermost key whose key or value covers `offset`; else the table header just above it.
    pub fn key_at(&self, offset: usize) -> Option<&str> {
        let covering = self.entries.iter().filter(|(_, span)| span.contains(&offset)).min_by_key(|(_, span)| span.len());
        let before = || self.entries.iter().filter(|(_, span)| span.start <= offset).max_by_key(|(_, span)| span.start);
        covering.or_else(before).map(|(path, _)| path.as_str())
    }

    /// Where `path` (or its nearest existing parent) starts.
    pub fn offset_of(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some((_, span)) = self.entries.iter().find(|(k, _)| k == p) {
                return Some(span.start);
            }
            p = &p[..p.rfind(['.', '['])?];
        }
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..floor_char_boundary(src, offset.min(src.len()))];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.len(), |nl| before.len() - nl - 1) + 1;
    (line, col)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn span_union(a: Option<Range<usize>>, b: Option<Range<usize>>) -> Option<Range<usize>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.start.min(b.start)..a.end.max(b.end)),
        (a, b) => a.or(b),
    }
}

fn walk_table(table: &Table, prefix: &str, out: &mut Vec<(String, Range<usize>)>) {
    for (key, _) in table.iter() {
        let Some((k, item)) = table.get_key_value(key) else { continue };
        let path = join(prefix, key);
        match item {
            Item::Table(t) => {
                // A `[table]`'s span is its header only; its keys are indexed one by one below.
                if let Some(span) = span_union(k.span(), t.span()) {
                    out.push((path.clone(), span));
                }
                walk_table(t, &path, out);
            }
            Item::ArrayOfTables(tables) => {
                for (i, t) in tables.iter().enumerate() {
                    let elem = format!("{path}[{i}]");
                    if let Some(span) = t.span() {
                        out.push((elem.clone(), span));
                    }
                    walk_table(t, &elem, out);
                }
            }
            Item::Value(v) => {
                if let Some(span) = span_union(k.span(), v.span()) {
                    out.push((path.clone(), span));
                }
                walk_value(v, &path, out);
            }
            Item::None => {}
        }
    }
}

fn walk_value(v: &Value, path: &str, out: &mut Vec<(String, Range<usize>)>) {
    match v {
        Value::InlineTable(t) => {
            for (key, _) in t.iter() {
                let Some((k, item)) = t.get_key_value(key) else { continue };
                let sub = join(path, key);
                if let Some(val) = item.as_value() {
                    if let Some(span) = span_union(k.span(), val.span()) {
                        out.push((sub.clone(), span));
                    }
                    walk_value(val, &sub, out);
                }
            }
        }
        Value::Array(a) => {
            for (i, elem) in a.iter().enumerate() {
                let sub = format!("{path}[{i}]");
                if let Some(span) = elem.span() {
                    out.push((sub.clone(), span));
                }
                walk_value(elem, &sub, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "[server]\nlisten = \"x\"\n\n[[route]]\nname = \"a\"\n\n[[route]]\nname = \"b\"\nmatch = { method = \"POST\", path = \"/p\" }\nsignature = { scheme = \"github\", secrets_env = [\"A\", \"B\"] }\n";

    #[test]
    fn offsets_map_to_the_innermost_key() {
        let idx = KeyIndex::new(SRC);
        let at = |needle: &str| SRC.find(needle).unwrap();
        assert_eq!(idx.key_at(at("\"x\"")), Some("server.listen"));
        assert_eq!(idx.key_at(at("\"b\"")), Some("route[1].name"));
        assert_eq!(idx.key_at(at("\"/p\"")), Some("route[1].match.path"));
        assert_eq!(idx.key_at(at("\"B\"")), Some("route[1].signature.secrets_env[1]"));
    }

    #[test]
    fn paths_map_to_lines_falling_back_to_parents() {
        let idx = KeyIndex::new(SRC);
        let line = |p: &str| line_col(SRC, idx.offset_of(p).unwrap()).0;
        assert_eq!(line("server.listen"), 2);
        assert_eq!(line("route[1].signature.secrets_env[1]"), 10);
        assert_eq!(line("route[1].event.type"), 7, "missing key falls back to its route");
    }
}
