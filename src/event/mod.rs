//! `Verified<Webhook>` → [`CanonicalEvent`]: the CloudEvent (Kafka binary mode) for one delivery.
//!
//! The value is the exact bytes received, never re-serialized. The id is the provider's delivery
//! id where there is one, so a sender's retry maps to the same event; else a ULID.

pub mod spec;

use std::sync::OnceLock;
use std::time::SystemTime;

use bytes::Bytes;
use http::HeaderMap;

use crate::compare::outcome::EventMode;
use crate::route::template::Captures;
use crate::route::Route;
use crate::verify::{Verified, Webhook};
use spec::{Field, TypeSource, FALLBACK_TYPE};

/// Who performs the side effects for a request (ARCHITECTURE §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Legacy,
    New,
}

impl Owner {
    /// Every variant, for metrics that exist at zero before the first assignment.
    pub const ALL: [Owner; 2] = [Owner::Legacy, Owner::New];

    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Legacy => "legacy",
            Owner::New => "new",
        }
    }
}

/// The canonical event for one accepted delivery, ready for the producer.
#[derive(Clone, Debug)]
pub struct CanonicalEvent {
    pub id: String,
    pub topic: String,
    /// The partition key: the business entity, so per-entity order holds.
    pub key: String,
    /// The exact body bytes the sender sent.
    pub value: Bytes,
    /// Kafka record headers: `ce_*`, `content-type`, `traceparent`, `x-orig-*`.
    pub headers: Vec<(String, String)>,
}

impl CanonicalEvent {
    /// Records who owns the event: `live` for the new path, `shadow` for the monolith.
    pub fn assign(&mut self, owner: Owner) {
        let mode = match owner {
            Owner::New => EventMode::Live,
            Owner::Legacy => EventMode::Shadow,
        };
        self.headers.retain(|(k, _)| k != "ce_stranglermode" && k != "ce_stranglerowner");
        self.headers.push(("ce_stranglermode".into(), mode.as_str().into()));
        self.headers.push(("ce_stranglerowner".into(), owner.as_str().into()));
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Maps a verified webhook for `route`. The owner and mode headers come later, from
/// [`CanonicalEvent::assign`], since the owner depends on the key computed here.
///
/// Path captures are read from the request target the webhook carries, through the route's own
/// templates: the same canonical path the route table matched.
pub fn canonicalize(route: &Route, webhook: &Verified<Webhook>, now: SystemTime) -> CanonicalEvent {
    canonicalize_parsed(route, webhook, now).0
}

/// [`canonicalize`], with the body as JSON when a pointer had it parsed (so a contract need not
/// parse it again); `None` when no pointer asked or it is not JSON.
pub fn canonicalize_parsed(
    route: &Route,
    webhook: &Verified<Webhook>,
    now: SystemTime,
) -> (CanonicalEvent, Option<serde_json::Value>) {
    let body = Body::new(&webhook.get().body);
    let event = build(route, webhook, now, &body);
    (event, body.json.into_inner().flatten())
}

fn build(route: &Route, webhook: &Verified<Webhook>, now: SystemTime, body: &Body<'_>) -> CanonicalEvent {
    let w = webhook.get();
    let spec = &route.event;
    let captures = if spec.needs_captures() { route.matching.captures(w.uri.path()) } else { Captures::default() };
    let read = |f: &Field| match f {
        Field::Header(h) => header_str(&w.headers, h.as_str()),
        Field::Pointer(p) => body.pointer(p),
        Field::Capture(name) => captures.get(name).filter(|v| !v.is_empty()).map(str::to_string),
    };
    let id = spec
        .id
        .as_ref()
        .and_then(read)
        .or_else(|| route.verifier.scheme().delivery_id(&w.headers, &w.body))
        .unwrap_or_else(|| ulid::Ulid::new().to_string());
    let key = spec.key.as_ref().and_then(read).unwrap_or_else(|| id.clone());
    let ce_type = match &spec.type_source {
        TypeSource::Fixed(t) => t.clone(),
        TypeSource::Field(f) => read(f).unwrap_or_else(|| FALLBACK_TYPE.to_string()),
    };

    let mut headers = vec![
        ("ce_specversion".to_string(), "1.0".to_string()),
        ("ce_id".into(), id.clone()),
        ("ce_source".into(), spec.source.clone()),
        ("ce_type".into(), format!("{}{}", spec.type_prefix, ce_type)),
        ("ce_time".into(), humantime::format_rfc3339_millis(now).to_string()),
    ];
    if let Some(subject) = spec.subject_pointer.as_deref().and_then(|p| body.pointer(p)) {
        headers.push(("ce_subject".into(), subject));
    }
    if let Some(ct) = header_str(&w.headers, "content-type") {
        headers.push(("content-type".into(), ct));
    }
    headers.extend([
        ("ce_partitionkey".to_string(), key.clone()),
        ("ce_stranglerroute".into(), route.name.clone()),
        ("ce_stranglersignature".into(), webhook.status().label().to_string()),
    ]);
    for name in &spec.path_extensions {
        if let Some(v) = captures.get(name) {
            headers.push((format!("ce_{name}"), v.to_string()));
        }
    }
    for trace in ["traceparent", "tracestate"] {
        if let Some(v) = header_str(&w.headers, trace) {
            headers.push((trace.to_string(), v));
        }
    }
    for name in &spec.forward_headers {
        if let Some(v) = header_str(&w.headers, name.as_str()) {
            headers.push((format!("x-orig-{}", name.as_str()), v));
        }
    }
    CanonicalEvent { id, topic: route.topic.clone(), key, value: w.body.clone(), headers }
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    let v = headers.get(name)?.to_str().ok()?.trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// The body, parsed as JSON at most once and only if a pointer asks for it.
struct Body<'a> {
    raw: &'a [u8],
    json: OnceLock<Option<serde_json::Value>>,
}

impl<'a> Body<'a> {
    fn new(raw: &'a [u8]) -> Self {
        Self { raw, json: OnceLock::new() }
    }

    /// A scalar at `pointer` as text; objects and arrays as compact JSON; null or absent as `None`.
    fn pointer(&self, pointer: &str) -> Option<String> {
        let json = self.json.get_or_init(|| serde_json::from_slice(self.raw).ok()).as_ref()?;
        match json.pointer(pointer)? {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) if s.is_empty() => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use http::{HeaderMap, HeaderValue, Method, Uri};

    use super::*;
    use crate::config::load_str;
    use crate::verify::Webhook;

    type Headers = &'static [(&'static str, &'static str)];

    fn route(event: &str) -> Route {
        let src = format!(
            "[legacy]\nurl = \"http://127.0.0.1:1\"\n[[route]]\nname = \"r\"\nmatch = {{ path = \"/r\" }}\ntopic = \"t\"\nsignature = {{ scheme = \"github\", mode = \"off\" }}\nevent = {{ {event} }}\n"
        );
        load_str(&src, "t.toml", &|_| None).unwrap().routes.remove(0)
    }

    fn event(route: &Route, headers: &[(&'static str, &'static str)], body: &'static [u8]) -> CanonicalEvent {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, HeaderValue::from_static(v));
        }
        let w = Webhook { method: Method::POST, uri: Uri::from_static("/r"), headers: map, body: Bytes::from_static(body) };
        let verified = route.verifier.check(w, UNIX_EPOCH).unwrap();
        let mut e = canonicalize(route, &verified, UNIX_EPOCH + Duration::from_millis(1_700_000_000_123));
        e.assign(Owner::Legacy);
        e
    }

    #[test]
    fn id_type_and_key_come_from_configured_sources_with_scheme_fallbacks() {
        let body = br#"{"delivery":"D","kind":"created","account":{"id":42},"ref":null}"#;
        let cases: [(&str, Headers, &str, &str, &str); 6] = [
            // (event table, headers, id, key, type)
            ("", &[("x-github-delivery", "gh-1"), ("x-github-event", "push")], "gh-1", "gh-1", "com.github.push"),
            ("id_pointer = \"/delivery\"", &[("x-github-delivery", "gh-1")], "D", "D", "com.github.webhook"),
            (
                "key_pointer = \"/account/id\", type_pointer = \"/kind\", type_prefix = \"\"",
                &[("x-github-delivery", "g")],
                "g",
                "42",
                "created",
            ),
            ("key_pointer = \"/ref\"", &[("x-github-delivery", "g")], "g", "g", "com.github.webhook"),
            (
                "key_header = \"X-Tenant\", type = \"fixed\"",
                &[("x-github-delivery", "g"), ("x-tenant", "acme")],
                "g",
                "acme",
                "com.github.fixed",
            ),
            ("id_header = \"X-Id\"", &[("x-github-delivery", "fallback")], "fallback", "fallback", "com.github.webhook"),
        ];
        for (table, headers, id, key, ce_type) in cases {
            let e = event(&route(table), headers, body);
            assert_eq!((e.id.as_str(), e.key.as_str(), e.header("ce_type").unwrap()), (id, key, ce_type), "{table}");
        }
    }

    #[test]
    fn the_body_parsed_for_a_pointer_comes_back_for_the_contract() {
        let body = br#"{"delivery":"D"}"#;
        let check = |event: &str, raw: &'static [u8]| {
            let r = route(event);
            let w = Webhook {
                method: Method::POST,
                uri: Uri::from_static("/r"),
                headers: HeaderMap::new(),
                body: Bytes::from_static(raw),
            };
            canonicalize_parsed(&r, &r.verifier.check(w, UNIX_EPOCH).unwrap(), UNIX_EPOCH).1
        };
        assert_eq!(check("id_pointer = \"/delivery\"", body), Some(serde_json::json!({"delivery": "D"})));
        assert_eq!(check("", body), None, "no pointer: never parsed");
        assert_eq!(check("id_pointer = \"/delivery\"", b"not json"), None);
    }

    #[test]
    fn without_any_id_a_ulid_is_generated_and_the_body_is_untouched() {
        let body: &[u8] = b"not json \xff";
        let e = event(&route(""), &[], body);
        assert!(ulid::Ulid::from_string(&e.id).is_ok(), "{}", e.id);
        assert_eq!(e.key, e.id);
        assert_eq!(e.value.as_ref(), body);
        assert_eq!(e.header("ce_time"), Some("2023-11-14T22:13:20.123Z"));
        assert_eq!(e.header("ce_stranglersignature"), Some("unchecked"));
        assert_eq!(e.header("ce_subject"), None);
        assert_eq!((e.header("ce_stranglermode"), e.header("ce_stranglerowner")), (Some("shadow"), Some("legacy")));
        let mut live = e.clone();
        live.assign(Owner::New);
        assert_eq!((live.header("ce_stranglermode"), live.header("ce_stranglerowner")), (Some("live"), Some("new")));
        assert_eq!(live.headers.len(), e.headers.len());
    }

    #[test]
    fn a_path_capture_is_the_key_and_an_extension_attribute_decoded_in_the_senders_case() {
        let src = "[legacy]\nurl = \"http://127.0.0.1:1\"\n[[route]]\nname = \"r\"\nmatch = { path = \"/w/{tenant}/s\", case_insensitive = true }\ntopic = \"t\"\nsignature = { scheme = \"github\", mode = \"off\" }\nevent = { key_path = \"tenant\", path_extensions = [\"tenant\"] }\n";
        let r = load_str(src, "t.toml", &|_| None).unwrap().routes.remove(0);
        for (target, tenant) in [("/w/acme/s", "acme"), ("//W/Ac%6De/./S/?q=1", "Acme"), ("/w/caf%C3%A9/s;x", "café")] {
            let w =
                Webhook { method: Method::POST, uri: Uri::from_static(target), headers: HeaderMap::new(), body: Bytes::new() };
            let e = canonicalize(&r, &r.verifier.check(w, UNIX_EPOCH).unwrap(), UNIX_EPOCH);
            assert_eq!((e.key.as_str(), e.header("ce_tenant")), (tenant, Some(tenant)), "{target}");
        }
    }

    #[test]
    fn trace_and_allow_listed_headers_travel_and_others_do_not() {
        let r = route("forward_headers = [\"User-Agent\"], subject_pointer = \"/s\"");
        let e = event(
            &r,
            &[
                ("traceparent", "00-abc-def-01"),
                ("user-agent", "ua/1"),
                ("authorization", "secret"),
                ("content-type", "application/json"),
            ],
            br#"{"s":"subj"}"#,
        );
        assert_eq!(e.header("traceparent"), Some("00-abc-def-01"));
        assert_eq!(e.header("x-orig-user-agent"), Some("ua/1"));
        assert_eq!(e.header("content-type"), Some("application/json"));
        assert_eq!(e.header("ce_subject"), Some("subj"));
        assert!(e.headers.iter().all(|(k, v)| !k.contains("authorization") && v != "secret"));
    }
}
