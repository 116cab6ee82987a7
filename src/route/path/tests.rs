//! One test per canonicalisation rule, then properties over generated spellings.

use std::borrow::Cow;

use super::*;

fn canon(raw: &str) -> String {
    canonical(raw).path.into_owned()
}

#[test]
fn an_already_canonical_path_is_borrowed() {
    for raw in ["/", "/webhooks/github", "/a/b.json", "/a/~x/-_."] {
        let c = canonical(raw);
        assert!(matches!(c.path, Cow::Borrowed(_)), "{raw}");
        assert_eq!((c.path.as_ref(), c.ambiguous), (raw, false));
    }
}

#[test]
fn unreserved_escapes_are_decoded_in_either_hex_case() {
    assert_eq!(canon("/webhooks/%67ithub"), "/webhooks/github");
    assert_eq!(canon("/%77ebhooks/github"), "/webhooks/github");
    assert_eq!(canon("/%7e%7E%2d%5f%2E%41"), "/~~-_.A");
}

#[test]
fn other_escapes_stay_encoded_with_upper_case_hex() {
    assert_eq!(canon("/a%3bb/%40x/%c3%a9"), "/a%3Bb/%40x/%C3%A9");
    assert!(!canonical("/a%3bb").ambiguous);
}

#[test]
fn dot_segments_are_removed_also_when_encoded() {
    for raw in [
        "/x/../webhooks/github",
        "/webhooks/./github",
        "/webhooks/%2e/github",
        "/webhooks/github/x/..",
        "/webhooks/github/x/%2e%2e",
        "/webhooks/github/x/.%2E",
        "/webhooks/github/x/%2E.",
        "/../../webhooks/github",
        "/webhooks/x/y/../../github/.",
    ] {
        assert_eq!(canon(raw), "/webhooks/github", "{raw}");
    }
    assert_eq!(canon("/webhooks/..."), "/webhooks/...", "three dots are a name");
}

#[test]
fn repeated_and_trailing_slashes_collapse() {
    for raw in ["/webhooks/github/", "//webhooks/github", "/webhooks//github", "///webhooks///github//", "//..//webhooks/github"]
    {
        assert_eq!(canon(raw), "/webhooks/github", "{raw}");
    }
    assert_eq!(canon("//"), "/");
    assert_eq!(canon("/./"), "/");
}

#[test]
fn semicolon_parameters_are_stripped_from_every_segment() {
    assert_eq!(canon("/webhooks/github;x=1"), "/webhooks/github");
    assert_eq!(canon("/webhooks;jsessionid=1/github"), "/webhooks/github");
    assert_eq!(canon("/webhooks/github/..;/github"), "/webhooks/github");
    assert_eq!(canon("/webhooks/github/x/..;a=b"), "/webhooks/github");
}

#[test]
fn targets_without_a_leading_slash_are_left_alone() {
    for raw in ["*", "", "example.com:443"] {
        assert_eq!(canonical(raw).path.as_ref(), raw);
    }
}

#[test]
fn ambiguous_spellings_are_flagged() {
    for raw in [
        "/webhooks%2Fgithub",
        "/webhooks%2fgithub",
        "/webhooks%5Cgithub",
        "/webhooks%5cgithub",
        "/webhooks\\github",
        "/webhooks/github%00",
        "/webhooks/github\0",
        "/webhooks/%zzgithub",
        "/webhooks/github%4",
        "/webhooks/github%",
    ] {
        assert!(canonical(raw).ambiguous, "{raw:?}");
    }
    for raw in ["/webhooks/github", "/webhooks/%67ithub", "/a%20b", "/a%252F"] {
        assert!(!canonical(raw).ambiguous, "{raw:?}");
    }
}

#[test]
fn the_loose_reading_decodes_everything_reads_backslash_as_slash_stops_at_nul_and_folds_case() {
    for raw in [
        "/webhooks%2Fgithub",
        "/webhooks%5cgithub",
        "/webhooks\\github",
        "/webhooks/github%00.json",
        "/WEBHOOKS/GitHub",
        "/webhooks/github%3Bx",
        "/webhooks/%zz/../github",
    ] {
        assert_eq!(loose(raw), "/webhooks/github", "{raw:?}");
    }
    assert_eq!(loose("/webhooks/git%4"), "/webhooks/git%4", "an invalid escape stays as written");
}

#[test]
fn loose_reading_is_needed_only_for_escapes_backslashes_nuls_or_upper_case() {
    assert!(!loose_may_differ("/webhooks/github", "/webhooks/github"));
    assert!(loose_may_differ("/webhooks/GitHub", "/webhooks/GitHub"));
    assert!(loose_may_differ("/a%3B", "/a%3B"));
    assert!(loose_may_differ("/a\\b", "/a\\b"));
}

#[test]
fn captures_are_decoded_when_the_result_is_utf8() {
    assert_eq!(decode_capture("acme"), "acme");
    assert_eq!(decode_capture("caf%C3%A9"), "café");
    assert_eq!(decode_capture("a%40b"), "a@b");
    assert_eq!(decode_capture("bad%FF"), "bad%FF", "not UTF-8: kept encoded");
}

#[test]
fn folding_borrows_when_there_is_nothing_to_fold() {
    assert!(matches!(fold("/a/b"), Cow::Borrowed("/a/b")));
    assert_eq!(fold("/A/b"), "/a/b");
}

/// A small deterministic generator (no test-only dependency needed for this).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

/// Spells `path` differently with the transformations RFC 3986 §6 says mean the same path.
fn respell(path: &str, g: &mut Lcg) -> String {
    let mut out = String::new();
    if g.next(3) == 0 {
        out.push_str("/x/..");
    }
    for seg in path[1..].split('/') {
        out.push_str(["/", "//", "/./", "/%2e/", "/y/%2E%2e/"][g.next(5)]);
        for c in seg.chars() {
            match g.next(4) {
                0 => out.push_str(&format!("%{:02X}", c as u32)),
                1 => out.push_str(&format!("%{:02x}", c as u32)),
                _ => out.push(c),
            }
        }
        if g.next(4) == 0 {
            out.push_str(";p=1");
        }
    }
    if g.next(3) == 0 {
        out.push('/');
    }
    out
}

#[test]
fn property_every_respelling_canonicalises_to_the_same_path_and_canonical_is_idempotent() {
    let alphabet: Vec<char> = "abcXYZ019-._~".chars().collect();
    let mut g = Lcg(7);
    for _ in 0..2_000 {
        let segments = 1 + g.next(4);
        let path: String = (0..segments)
            .map(|_| {
                let len = 1 + g.next(6);
                let seg: String = (0..len).map(|_| alphabet[g.next(alphabet.len())]).collect();
                if seg == "." || seg == ".." {
                    "/s".to_string()
                } else {
                    format!("/{seg}")
                }
            })
            .collect();
        let path = canon(&path);
        let spelled = respell(&path, &mut g);
        let c = canonical(&spelled);
        assert_eq!((c.path.as_ref(), c.ambiguous), (path.as_str(), false), "{spelled}");
        assert_eq!(canon(&c.path), path, "idempotent");
        assert_eq!(loose(&spelled), path.to_ascii_lowercase(), "{spelled}");
    }
}

#[test]
fn property_canonical_never_panics_and_is_idempotent_on_arbitrary_bytes() {
    let alphabet: Vec<char> = "/%.;\\aA0fF2e5c~é\0".chars().collect();
    let mut g = Lcg(11);
    for _ in 0..5_000 {
        let len = g.next(16);
        let raw: String = std::iter::once('/').chain((0..len).map(|_| alphabet[g.next(alphabet.len())])).collect();
        let c = canonical(&raw);
        let once = c.path.into_owned();
        assert!(once.starts_with('/'), "{raw:?} → {once:?}");
        if !c.ambiguous {
            // An invalid escape followed by encoded hex digits decodes into a new escape; such
            // paths are ambiguous and never matched strictly.
            assert_eq!(canon(&once), once, "{raw:?}");
        }
        let _ = loose(&raw);
    }
}
