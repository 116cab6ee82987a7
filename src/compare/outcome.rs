//! The outcome record: what one path (legacy or new) decided for one event. Wire format of the
//! outcomes topic (ARCHITECTURE §4, docs/consumer-protocol.md); key = event id, value = JSON.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Which path produced an outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Legacy,
    New,
}

/// Whether the event was a dry run (`shadow`) or the real thing (`live`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventMode {
    Shadow,
    Live,
}

impl Source {
    /// Every variant, for metrics that exist at zero before the first outcome.
    pub const ALL: [Source; 2] = [Source::Legacy, Source::New];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Legacy => "legacy",
            Source::New => "new",
        }
    }
}

impl EventMode {
    /// Every variant, for metrics that exist at zero before the first outcome.
    pub const ALL: [EventMode; 2] = [EventMode::Shadow, EventMode::Live];

    pub fn as_str(self) -> &'static str {
        match self {
            EventMode::Shadow => "shadow",
            EventMode::Live => "live",
        }
    }
}

/// How `body` is encoded in the record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyEncoding {
    /// `body` is the response parsed as JSON (`null` for an empty body).
    #[default]
    Json,
    /// `body` is a string holding the response text (UTF-8, not JSON).
    Text,
    /// `body` is a string holding the response bytes in standard base64.
    Base64,
}

/// One outcome record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub event_id: String,
    pub route: String,
    pub source: Source,
    pub mode: EventMode,
    /// HTTP status the path answered (or would have answered, in shadow).
    pub status: u16,
    #[serde(default)]
    pub body: serde_json::Value,
    #[serde(default)]
    pub body_encoding: BodyEncoding,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub latency_ms: f64,
    /// RFC 3339 time the outcome was produced.
    #[serde(default)]
    pub at: String,
    /// Who produced it: `strangler` for legacy outcomes, the service's name for new ones.
    #[serde(default)]
    pub consumer: Option<String>,
    /// `body` is only the first part of the answer: it was longer than strangler keeps
    /// (`ingress::proxy::OUTCOME_BODY_CAP`), or strangler did not see it to its end. Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl Outcome {
    /// Builds an outcome from raw response bytes: JSON when they parse as JSON, else text, else base64.
    #[allow(clippy::too_many_arguments)]
    pub fn from_response(
        event_id: &str,
        route: &str,
        source: Source,
        mode: EventMode,
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
        latency_ms: f64,
        consumer: &str,
    ) -> Self {
        let (body, body_encoding) = encode_body(body);
        Self {
            event_id: event_id.to_string(),
            route: route.to_string(),
            source,
            mode,
            status,
            body,
            body_encoding,
            content_type: content_type.map(str::to_string),
            latency_ms,
            at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            consumer: Some(consumer.to_string()),
            truncated: false,
        }
    }

    /// The body as raw bytes again (JSON re-serialized compactly).
    pub fn body_bytes(&self) -> Vec<u8> {
        use base64::Engine;
        match (self.body_encoding, &self.body) {
            (BodyEncoding::Json, serde_json::Value::Null) => Vec::new(),
            (BodyEncoding::Json, v) => v.to_string().into_bytes(),
            (BodyEncoding::Text, serde_json::Value::String(s)) => s.clone().into_bytes(),
            (BodyEncoding::Base64, serde_json::Value::String(s)) => {
                base64::engine::general_purpose::STANDARD.decode(s).unwrap_or_default()
            }
            (_, v) => v.to_string().into_bytes(),
        }
    }
}

/// What an outcome says besides its body: [`Answer::encode`] writes the record from these and
/// the raw answer.
pub struct Answer<'a> {
    pub event_id: &'a str,
    pub route: &'a str,
    pub source: Source,
    pub mode: EventMode,
    pub status: u16,
    pub content_type: Option<&'a str>,
    pub latency_ms: f64,
    pub consumer: &'a str,
    pub truncated: bool,
}

/// The record's layout, borrowed: the same fields, in the same order, as [`Outcome`].
#[derive(Serialize)]
struct Wire<'a> {
    event_id: &'a str,
    route: &'a str,
    source: Source,
    mode: EventMode,
    status: u16,
    body: WireBody<'a>,
    body_encoding: BodyEncoding,
    content_type: Option<&'a str>,
    latency_ms: f64,
    at: String,
    consumer: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    truncated: bool,
}

#[derive(Serialize)]
#[serde(untagged)]
enum WireBody<'a> {
    Json(Option<&'a RawValue>),
    Text(&'a str),
    Base64(String),
}

impl Answer<'_> {
    /// The outcome record for the answer `body`, without building a JSON tree of it: a JSON body
    /// is checked and written as it came (without the whitespace around it). As JSON, the record
    /// equals `serde_json::to_vec(&Outcome::from_response(..))`; this is the request path's
    /// encoder, the other is for callers that need the [`Outcome`].
    pub fn encode(&self, body: &[u8]) -> Vec<u8> {
        use base64::Engine;
        let (body, body_encoding) = if body.iter().all(u8::is_ascii_whitespace) {
            (WireBody::Json(None), BodyEncoding::Json)
        } else if let Ok(raw) = serde_json::from_slice::<&RawValue>(body) {
            (WireBody::Json(Some(raw)), BodyEncoding::Json)
        } else if let Ok(text) = std::str::from_utf8(body) {
            (WireBody::Text(text), BodyEncoding::Text)
        } else {
            (WireBody::Base64(base64::engine::general_purpose::STANDARD.encode(body)), BodyEncoding::Base64)
        };
        let wire = Wire {
            event_id: self.event_id,
            route: self.route,
            source: self.source,
            mode: self.mode,
            status: self.status,
            body,
            body_encoding,
            content_type: self.content_type,
            latency_ms: self.latency_ms,
            at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            consumer: Some(self.consumer),
            truncated: self.truncated,
        };
        serde_json::to_vec(&wire).expect("an outcome of strings and numbers always encodes")
    }
}

/// JSON when the bytes parse as JSON, else UTF-8 text, else base64.
pub fn encode_body(body: &[u8]) -> (serde_json::Value, BodyEncoding) {
    use base64::Engine;
    if body.iter().all(u8::is_ascii_whitespace) {
        return (serde_json::Value::Null, BodyEncoding::Json);
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        return (v, BodyEncoding::Json);
    }
    match std::str::from_utf8(body) {
        Ok(text) => (serde_json::Value::String(text.to_string()), BodyEncoding::Text),
        Err(_) => (serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(body)), BodyEncoding::Base64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_json_when_they_can_be_and_round_trip_otherwise() {
        for (raw, enc) in [
            (&br#"{"a":[1,2]}"#[..], BodyEncoding::Json),
            (b"plain text", BodyEncoding::Text),
            (b"\xff\x00\x01", BodyEncoding::Base64),
            (b"", BodyEncoding::Json),
        ] {
            let o = Outcome::from_response("e", "r", Source::Legacy, EventMode::Shadow, 200, None, raw, 1.0, "strangler");
            assert_eq!(o.body_encoding, enc);
            assert_eq!(o.body_bytes(), raw.to_vec());
            let wire = serde_json::to_string(&o).unwrap();
            assert_eq!(serde_json::from_str::<Outcome>(&wire).unwrap(), o);
        }
    }

    #[test]
    fn a_minimal_record_from_another_language_parses() {
        let o: Outcome =
            serde_json::from_str(r#"{"event_id":"x","route":"r","source":"new","mode":"shadow","status":202}"#).unwrap();
        assert_eq!((o.source, o.mode, o.status, o.body_encoding), (Source::New, EventMode::Shadow, 202, BodyEncoding::Json));
    }

    #[test]
    fn the_request_path_encoder_writes_what_from_response_would() {
        for raw in [
            &b"  {\"b\": [1, 2.5, \"x\"], \"a\": null}\n"[..],
            b"plain text",
            b"\xff\x00\x01",
            b"",
            b" \n",
            b"\"s\"",
            b"{\"a\":1} x",
        ] {
            for truncated in [false, true] {
                let a = Answer {
                    event_id: "e",
                    route: "r",
                    source: Source::Legacy,
                    mode: EventMode::Shadow,
                    status: 201,
                    content_type: Some("application/json"),
                    latency_ms: 1.5,
                    consumer: "strangler",
                    truncated,
                };
                let fast: Outcome = serde_json::from_slice(&a.encode(raw)).unwrap();
                let mut slow = Outcome::from_response(
                    "e",
                    "r",
                    Source::Legacy,
                    EventMode::Shadow,
                    201,
                    Some("application/json"),
                    raw,
                    1.5,
                    "strangler",
                );
                slow.truncated = truncated;
                slow.at.clone_from(&fast.at);
                assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(raw));
                assert_eq!(fast.body_bytes(), slow.body_bytes());
            }
        }
    }
}
