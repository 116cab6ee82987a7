//! One of strangler's CloudEvents as a consumer sees it, decoded from a Kafka record's headers
//! (CloudEvents Kafka binary mode, docs/consumer-protocol.md "Events topics").

use bytes::Bytes;
use rdkafka::message::{Headers, Message};
use serde::de::DeserializeOwned;

use crate::compare::outcome::EventMode;

/// A decoded event. `body` is the exact bytes the webhook sender sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// `ce_id`: deduplicate on it; the outcome is keyed by it.
    pub id: String,
    /// `ce_stranglerroute`: the route name.
    pub route: String,
    /// `ce_type`, e.g. `com.github.push`.
    pub event_type: String,
    /// `ce_source`, e.g. `strangler://github`.
    pub source: String,
    /// The record key (the partition key: the entity the event is about).
    pub key: String,
    /// `ce_stranglermode`: in `shadow`, cause no side effect.
    pub mode: EventMode,
    /// `ce_stranglerowner`: `legacy` or `new`, which path performs the side effects.
    pub owner: String,
    /// `ce_time`: when strangler received the webhook (RFC 3339).
    pub time: Option<String>,
    /// `ce_subject`.
    pub subject: Option<String>,
    /// `content-type`: the sender's content type.
    pub content_type: Option<String>,
    /// `ce_stranglersignature`: `valid`, `invalid` (treat as untrusted) or `unchecked`.
    pub signature: Option<String>,
    /// The record value: the webhook body, never re-serialized.
    pub body: Bytes,
    /// Every record header, in record order (including the `ce_*` ones above).
    pub headers: Vec<(String, String)>,
    /// Where the record was read from.
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl Event {
    /// The body parsed as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The first header called `name` (e.g. `traceparent`, `x-orig-user-agent`).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// True when the webhook's signature was checked and valid.
    pub fn is_signature_valid(&self) -> bool {
        self.signature.as_deref() == Some("valid")
    }
}

/// Why a record is not a usable strangler event. The record goes to the dead-letter topic with
/// this as its `dlq_reason`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A required header is absent or empty.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header value is not UTF-8.
    #[error("header {0} is not UTF-8")]
    NotUtf8(String),
    /// A header has a value the protocol does not allow.
    #[error("header {header} has unsupported value {value:?}")]
    BadValue { header: &'static str, value: String },
    /// The record key is not UTF-8.
    #[error("record key is not UTF-8")]
    KeyNotUtf8,
}

/// Decodes a Kafka record carrying one of strangler's events. Never panics: any record that does
/// not follow the protocol is an error naming what is wrong.
pub fn decode(msg: &impl Message) -> Result<Event, DecodeError> {
    decode_record(msg, Bytes::copy_from_slice(msg.payload().unwrap_or_default()))
}

/// [`decode`], with the record's value already copied out as `body`.
pub(super) fn decode_record(msg: &impl Message, body: Bytes) -> Result<Event, DecodeError> {
    let mut headers = Vec::new();
    if let Some(hs) = msg.headers() {
        headers.reserve(hs.count());
        for h in hs.iter() {
            let value = std::str::from_utf8(h.value.unwrap_or_default()).map_err(|_| DecodeError::NotUtf8(h.key.to_string()))?;
            headers.push((h.key.to_string(), value.to_string()));
        }
    }
    let optional = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let required = |name: &'static str| optional(name).ok_or(DecodeError::MissingHeader(name));

    let id = required("ce_id")?;
    let spec = headers.iter().find(|(k, _)| k == "ce_specversion").map(|(_, v)| v.as_str()).unwrap_or_default();
    if spec.is_empty() {
        return Err(DecodeError::MissingHeader("ce_specversion"));
    }
    if spec.split('.').next() != Some("1") {
        return Err(DecodeError::BadValue { header: "ce_specversion", value: spec.to_string() });
    }
    let mode = match headers.iter().find(|(k, _)| k == "ce_stranglermode").map(|(_, v)| v.as_str()).unwrap_or_default() {
        "" => return Err(DecodeError::MissingHeader("ce_stranglermode")),
        "shadow" => EventMode::Shadow,
        "live" => EventMode::Live,
        other => return Err(DecodeError::BadValue { header: "ce_stranglermode", value: other.to_string() }),
    };
    let key = match msg.key() {
        Some(k) if !k.is_empty() => std::str::from_utf8(k).map_err(|_| DecodeError::KeyNotUtf8)?.to_string(),
        _ => required("ce_partitionkey")?,
    };
    Ok(Event {
        id,
        route: required("ce_stranglerroute")?,
        event_type: required("ce_type")?,
        source: required("ce_source")?,
        key,
        mode,
        owner: required("ce_stranglerowner")?,
        time: optional("ce_time"),
        subject: optional("ce_subject"),
        content_type: optional("content-type"),
        signature: optional("ce_stranglersignature"),
        body,
        topic: msg.topic().to_string(),
        partition: msg.partition(),
        offset: msg.offset(),
        headers,
    })
}

#[cfg(test)]
mod tests {
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};

    use super::*;

    fn record(headers: &[(&str, &[u8])], key: Option<&[u8]>) -> OwnedMessage {
        let hs = headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| h.insert(Header { key: k, value: Some(*v) }));
        OwnedMessage::new(
            Some(b"{\"n\":1}".to_vec()),
            key.map(<[u8]>::to_vec),
            "t".into(),
            Timestamp::NotAvailable,
            2,
            7,
            Some(hs),
        )
    }

    const GOOD: [(&str, &[u8]); 9] = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"e1"),
        ("ce_source", b"strangler://gh"),
        ("ce_type", b"com.github.push"),
        ("ce_time", b"2026-01-01T00:00:00.000Z"),
        ("ce_partitionkey", b"repo-1"),
        ("ce_stranglerroute", b"gh"),
        ("ce_stranglermode", b"shadow"),
        ("ce_stranglerowner", b"legacy"),
    ];

    #[test]
    fn a_strangler_record_decodes() {
        let e = decode(&record(&GOOD, Some(b"repo-1"))).unwrap();
        assert_eq!((e.id.as_str(), e.route.as_str(), e.key.as_str(), e.mode), ("e1", "gh", "repo-1", EventMode::Shadow));
        assert_eq!((e.topic.as_str(), e.partition, e.offset, e.signature.as_deref()), ("t", 2, 7, None));
        assert_eq!(e.header("ce_type"), Some("com.github.push"));
        assert_eq!(e.json::<serde_json::Value>().unwrap()["n"], 1);
        // Without a record key, the partition key header stands in.
        assert_eq!(decode(&record(&GOOD, None)).unwrap().key, "repo-1");
    }

    #[test]
    fn bad_records_name_what_is_wrong() {
        let without = |name: &str| GOOD.iter().copied().filter(|(k, _)| *k != name).collect::<Vec<_>>();
        let with = |name: &'static str, v: &'static [u8]| {
            let mut hs = without(name);
            hs.push((name, v));
            hs
        };
        type HeaderList = Vec<(&'static str, &'static [u8])>;
        let cases: Vec<(HeaderList, DecodeError)> = vec![
            (without("ce_id"), DecodeError::MissingHeader("ce_id")),
            (with("ce_id", b""), DecodeError::MissingHeader("ce_id")),
            (without("ce_stranglermode"), DecodeError::MissingHeader("ce_stranglermode")),
            (with("ce_stranglermode", b"dry"), DecodeError::BadValue { header: "ce_stranglermode", value: "dry".into() }),
            (with("ce_specversion", b"2.0"), DecodeError::BadValue { header: "ce_specversion", value: "2.0".into() }),
            (with("ce_stranglerroute", b"\xff"), DecodeError::NotUtf8("ce_stranglerroute".into())),
            (vec![], DecodeError::MissingHeader("ce_id")),
        ];
        for (headers, want) in cases {
            assert_eq!(decode(&record(&headers, Some(b"k"))), Err(want.clone()), "{want}");
        }
        assert_eq!(decode(&record(&GOOD, Some(b"\xff"))), Err(DecodeError::KeyNotUtf8));
        assert_eq!(decode(&record(&without("ce_partitionkey"), None)), Err(DecodeError::MissingHeader("ce_partitionkey")));
    }
}
