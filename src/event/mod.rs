//! `Verified<Webhook>` → [`CanonicalEvent`]: the CloudEvent (Kafka binary mode) for one delivery.
//!
//! The value is the exact bytes received, never re-serialized. The id is the provider's delivery
//! id where there is one, so a sender's retry maps to the same event; else a ULID.

pub mod spec;

use std::sync::OnceLock;
use std::time::SystemTime;

use bytes::Bytes;
use http::HeaderMap;

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
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Maps a verified webhook for `route`. `mode` is `shadow` or `live`.
pub fn canonicalize(route: &Route, webhook: &Verified<Webhook>, owner: Owner, mode: &str, now: SystemTime) -> CanonicalEvent {
    let w = webhook.get();
    let spec = &route.event;
    let body = Body::new(&w.body);
    let read = |f: &Field| match f {
        Field::Header(h) => header_str(&w.headers, h.as_str()),
        Field::Pointer(p) => body.pointer(p),
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
        ("ce_stranglermode".into(), mode.to_string()),
        ("ce_stranglerowner".into(), owner.as_str().to_string()),
        ("ce_stranglersignature".into(), webhook.status().label().to_string()),
    ]);
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
