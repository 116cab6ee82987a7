//! A record copied out of librdkafka's buffer where it is received, cheaply (its key and headers
//! into one buffer, its value into another, nothing checked yet), so that decoding it, which costs
//! many allocations, runs in the lanes, side by side, not in the one loop that receives.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use rdkafka::message::{Header, Headers, Message, Timestamp};

/// A received record, as it came (key, value, headers in order, where it was read from).
#[derive(Clone, Debug)]
pub(super) struct Raw {
    key: Option<Range<usize>>,
    payload: Option<Bytes>,
    headers: RawHeaders,
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    timestamp: Timestamp,
}

/// A record's headers: names and values in one buffer (the record's key too, first).
#[derive(Clone, Debug, Default)]
pub(super) struct RawHeaders {
    buf: Vec<u8>,
    /// Name and value (`None`: no value) of each header, in order, as ranges of `buf`.
    list: Vec<(Range<usize>, Option<Range<usize>>)>,
}

impl Raw {
    /// Copies `msg`, read from `topic` (its name shared, not copied per record).
    pub(super) fn copy(msg: &impl Message, topic: Arc<str>) -> Self {
        let mut headers = RawHeaders::default();
        let hs = msg.headers();
        let count = hs.map_or(0, |h| h.count());
        headers.list.reserve_exact(count);
        let push = |buf: &mut Vec<u8>, bytes: &[u8]| {
            buf.extend_from_slice(bytes);
            buf.len() - bytes.len()..buf.len()
        };
        let key = msg.key().map(|k| push(&mut headers.buf, k));
        for h in hs.into_iter().flat_map(|hs| hs.iter()) {
            let name = push(&mut headers.buf, h.key.as_bytes());
            let value = h.value.map(|v| push(&mut headers.buf, v));
            headers.list.push((name, value));
        }
        Self {
            key,
            payload: msg.payload().map(Bytes::copy_from_slice),
            headers,
            topic,
            partition: msg.partition(),
            offset: msg.offset(),
            timestamp: msg.timestamp(),
        }
    }

    /// The topic's shared name.
    pub(super) fn topic_name(&self) -> &Arc<str> {
        &self.topic
    }

    /// The value, shared, not copied.
    pub(super) fn body(&self) -> Bytes {
        self.payload.clone().unwrap_or_default()
    }
}

impl Headers for RawHeaders {
    fn count(&self) -> usize {
        self.list.len()
    }

    fn try_get(&self, idx: usize) -> Option<Header<'_, &[u8]>> {
        let (name, value) = self.list.get(idx)?;
        // Copied from a `&str`, so always UTF-8.
        let key = std::str::from_utf8(&self.buf[name.clone()]).unwrap_or_default();
        Some(Header { key, value: value.clone().map(|v| &self.buf[v]) })
    }
}

impl Message for Raw {
    type Headers = RawHeaders;

    fn key(&self) -> Option<&[u8]> {
        self.key.clone().map(|k| &self.headers.buf[k])
    }

    fn payload(&self) -> Option<&[u8]> {
        self.payload.as_deref()
    }

    /// Never needed: the kit does not change a record's value.
    unsafe fn payload_mut(&mut self) -> Option<&mut [u8]> {
        None
    }

    fn topic(&self) -> &str {
        &self.topic
    }

    fn partition(&self) -> i32 {
        self.partition
    }

    fn offset(&self) -> i64 {
        self.offset
    }

    fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    fn headers(&self) -> Option<&RawHeaders> {
        (!self.headers.list.is_empty()).then_some(&self.headers)
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::{OwnedHeaders, OwnedMessage};

    use super::*;

    type Parts = (Option<Vec<u8>>, Option<Vec<u8>>, Vec<(String, Option<Vec<u8>>)>);

    fn parts(m: &impl Message) -> Parts {
        let headers = m.headers().map(|hs| hs.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect());
        (m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec), headers.unwrap_or_default())
    }

    #[test]
    fn a_copy_is_the_record_as_it_came() {
        let hs = OwnedHeaders::new()
            .insert(Header { key: "ce_id", value: Some("e1") })
            .insert(Header::<&[u8]> { key: "x-null", value: None })
            .insert(Header { key: "x-empty", value: Some("") })
            .insert(Header { key: "x-bin", value: Some(&b"\xff\x00"[..]) });
        let cases = [
            (Some(b"k1".to_vec()), Some(b"{\"n\":1}".to_vec()), Some(hs)),
            (None, None, None),
            (Some(Vec::new()), Some(Vec::new()), Some(OwnedHeaders::new())),
        ];
        for (key, payload, headers) in cases {
            let msg = OwnedMessage::new(payload, key, "t".into(), Timestamp::CreateTime(5), 3, 9, headers);
            let raw = Raw::copy(&msg, "t".into());
            assert_eq!(parts(&raw), parts(&msg));
            assert_eq!((raw.topic(), raw.partition(), raw.offset(), raw.timestamp()), ("t", 3, 9, Timestamp::CreateTime(5)));
            assert_eq!(&raw.body()[..], msg.payload().unwrap_or_default());
        }
    }
}
