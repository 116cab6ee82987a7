//! Canonical request paths (RFC 3986 §6): the one spelling a route is matched on, the loose
//! reading that finds spellings too ambiguous to match, and case folding.
//!
//! `canonical` decodes percent-encoded unreserved characters (`ALPHA DIGIT - . _ ~`), writes the
//! other escapes with upper-case hex, strips `;` parameters from each segment, removes `.` and
//! `..` segments, and drops empty segments (repeated and trailing slashes). An already canonical
//! path is returned borrowed, without allocating.

#[cfg(test)]
mod tests;

use std::borrow::Cow;

/// A request path in canonical form, and whether its raw spelling was ambiguous.
#[derive(Debug, PartialEq, Eq)]
pub struct Canonical<'a> {
    pub path: Cow<'a, str>,
    /// The raw path holds an encoded `/` (`%2F`) or `\` (`%5C`), a NUL (`%00` or raw), an invalid
    /// escape (`%zz`, a truncated `%4`) or a raw `\`: frameworks disagree on what it means.
    pub ambiguous: bool,
}

/// The canonical form of `raw` (a request's path, without its query).
///
/// A path that does not start with `/` (`*`, an authority-form target) is returned as is.
pub fn canonical(raw: &str) -> Canonical<'_> {
    let ambiguous = is_ambiguous(raw);
    if !raw.starts_with('/') || is_canonical(raw) {
        return Canonical { path: Cow::Borrowed(raw), ambiguous };
    }
    Canonical { path: Cow::Owned(normalize(raw, Escapes::Unreserved)), ambiguous }
}

/// The loose reading used to find spellings near a route: every escape decoded (an invalid one
/// kept as written), `\` read as `/`, a NUL ending the path, then canonicalised and ASCII
/// case-folded.
pub fn loose(raw: &str) -> String {
    if !raw.bytes().any(|b| matches!(b, b'%' | b'\\' | 0)) {
        // Nothing to decode: the canonical path, folded.
        return fold(&canonical(raw).path).into_owned();
    }
    let bytes = decode_all(raw.as_bytes());
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    let text: String = String::from_utf8_lossy(&bytes[..end]).replace('\\', "/");
    let mut out = if text.starts_with('/') { normalize(&text, Escapes::Keep) } else { text };
    out.make_ascii_lowercase();
    out
}

/// Whether the loose reading can differ from the canonical path at all: it only does with an
/// escape, a `\`, a NUL or an upper-case letter.
pub fn loose_may_differ(raw: &str, canonical: &str) -> bool {
    raw.bytes().any(|b| matches!(b, b'%' | b'\\' | 0)) || canonical.bytes().any(|b| b.is_ascii_uppercase())
}

/// A capture, percent-decoded when the result is UTF-8; else kept in its canonical encoding.
pub fn decode_capture(segment: &str) -> String {
    if !segment.contains('%') {
        return segment.to_string();
    }
    String::from_utf8(decode_all(segment.as_bytes())).unwrap_or_else(|_| segment.to_string())
}

/// ASCII case folding, borrowing when there is nothing to fold.
pub fn fold(path: &str) -> Cow<'_, str> {
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(path.to_ascii_lowercase())
    } else {
        Cow::Borrowed(path)
    }
}

fn is_ambiguous(raw: &str) -> bool {
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' | 0 => return true,
            b'%' => {
                let (Some(hi), Some(lo)) = (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) else {
                    return true;
                };
                if matches!(hi << 4 | lo, b'/' | b'\\' | 0) {
                    return true;
                }
                i += 3;
            }
            _ => i += 1,
        }
    }
    false
}

/// True when `normalize` would return `raw` unchanged: the common case, checked without allocating.
fn is_canonical(raw: &str) -> bool {
    if raw == "/" {
        return true;
    }
    if raw.ends_with('/') || raw.bytes().any(|b| matches!(b, b'%' | b';' | b'\\')) {
        return false;
    }
    raw[1..].split('/').all(|seg| !matches!(seg, "" | "." | ".."))
}

#[derive(Clone, Copy, PartialEq)]
enum Escapes {
    /// Decode unreserved characters, upper-case the hex of the others.
    Unreserved,
    /// Leave escapes as they are (the input was decoded already).
    Keep,
}

/// Segment by segment: strip `;` parameters, treat escapes, drop empty and dot segments.
fn normalize(raw: &str, escapes: Escapes) -> String {
    let mut out = String::with_capacity(raw.len());
    for seg in raw.split('/') {
        let seg = seg.split(';').next().unwrap_or_default();
        let seg = match escapes {
            Escapes::Unreserved => unreserved(seg),
            Escapes::Keep => Cow::Borrowed(seg),
        };
        match seg.as_ref() {
            "" | "." => {}
            ".." => out.truncate(out.rfind('/').unwrap_or(0)),
            seg => {
                out.push('/');
                out.push_str(seg);
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Decodes escapes of unreserved characters; other valid escapes get upper-case hex; an invalid
/// escape is kept as written.
fn unreserved(seg: &str) -> Cow<'_, str> {
    if !seg.contains('%') {
        return Cow::Borrowed(seg);
    }
    let b = seg.as_bytes();
    let mut out = String::with_capacity(seg.len());
    let mut i = 0;
    while i < b.len() {
        let escaped =
            (b[i] == b'%').then(|| Some((b.get(i + 1).copied().and_then(hex)?, b.get(i + 2).copied().and_then(hex)?))).flatten();
        match escaped {
            Some((hi, lo)) => {
                let c = hi << 4 | lo;
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(c));
                } else {
                    out.push('%');
                    out.push(char::from(b"0123456789ABCDEF"[usize::from(hi)]));
                    out.push(char::from(b"0123456789ABCDEF"[usize::from(lo)]));
                }
                i += 3;
            }
            None => {
                // Not an escape: copy one whole UTF-8 character.
                let ch = seg[i..].chars().next().unwrap_or('%');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    Cow::Owned(out)
}

/// Every valid escape decoded; invalid ones kept as written.
fn decode_all(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(hi), Some(lo)) = (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}
