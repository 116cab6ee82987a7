//! The monolith's answer on its way to the sender, with a bounded copy kept for the legacy outcome.
//!
//! [`Captured`] streams every frame on untouched (the sender always gets the monolith's whole
//! answer, however large, and nothing waits for the whole body) and copies at most `cap` bytes of
//! it. When the stream ends, its `done` callback gets the copy and whether it is `truncated`:
//! true when the body was longer than `cap`, and also when strangler did not see it to its end
//! (the monolith's body failed, or the sender went away and the body was dropped unfinished).
//! The callback runs exactly once, either way: the monolith has acted, so its outcome is always
//! published, marked when it is not the whole answer.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::Body;
use crate::BoxError;

/// Called once with the captured prefix and whether it is less than the whole answer.
pub type Done = Box<dyn FnOnce(Bytes, bool) + Send + Sync>;

/// A response body passed through, its first `cap` bytes kept.
pub struct Captured {
    inner: Body,
    cap: usize,
    kept: BytesMut,
    overflowed: bool,
    done: Option<Done>,
}

impl Captured {
    pub fn new(inner: Body, cap: usize, done: Done) -> Self {
        Self { inner, cap, kept: BytesMut::new(), overflowed: false, done: Some(done) }
    }

    fn keep(&mut self, data: &Bytes) {
        let room = self.cap.saturating_sub(self.kept.len());
        if data.len() > room {
            self.overflowed = true;
        }
        self.kept.extend_from_slice(&data[..data.len().min(room)]);
    }

    fn finish(&mut self, seen_whole: bool) {
        if let Some(done) = self.done.take() {
            done(std::mem::take(&mut self.kept).freeze(), self.overflowed || !seen_whole);
        }
    }
}

impl HttpBody for Captured {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.keep(data);
                }
                // hyper stops polling once a body says it has ended, so do not wait for `None`.
                if this.inner.is_end_stream() {
                    this.finish(true);
                }
            }
            Poll::Ready(Some(Err(_))) => this.finish(false),
            Poll::Ready(None) => this.finish(true),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Captured {
    fn drop(&mut self) {
        // A body that had nothing more to give (an empty answer never polled) was seen whole.
        let whole = self.inner.is_end_stream();
        self.finish(whole);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use futures_util::stream;
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    type Seen = Arc<Mutex<Vec<(Bytes, bool)>>>;

    fn captured(chunks: Vec<Result<&'static [u8], &'static str>>, cap: usize) -> (Captured, Seen) {
        let seen: Seen = Arc::default();
        let frames = chunks.into_iter().map(|c| c.map(|b| Frame::data(Bytes::from_static(b))).map_err(BoxError::from));
        let body = StreamBody::new(stream::iter(frames.collect::<Vec<_>>())).boxed();
        let sink = seen.clone();
        (Captured::new(body, cap, Box::new(move |b, t| sink.lock().unwrap().push((b, t)))), seen)
    }

    #[tokio::test]
    async fn the_whole_answer_passes_and_a_bounded_prefix_is_kept() {
        for (cap, kept, truncated) in [(100, &b"abcdefgh"[..], false), (8, b"abcdefgh", false), (5, b"abcde", true)] {
            let (body, seen) = captured(vec![Ok(b"abc"), Ok(b"defgh")], cap);
            let all = body.collect().await.unwrap().to_bytes();
            assert_eq!(&all[..], b"abcdefgh", "the sender gets every byte whatever the cap");
            assert_eq!(*seen.lock().unwrap(), vec![(Bytes::from_static(kept), truncated)], "cap {cap}");
        }
    }

    #[tokio::test]
    async fn a_failed_or_abandoned_answer_is_reported_once_as_truncated() {
        let (body, seen) = captured(vec![Ok(b"abc"), Err("reset")], 100);
        assert!(body.collect().await.is_err());
        assert_eq!(*seen.lock().unwrap(), vec![(Bytes::from_static(b"abc"), true)]);

        let (mut body, seen) = captured(vec![Ok(b"abc"), Ok(b"def")], 100);
        let _ = body.frame().await;
        drop(body);
        assert_eq!(*seen.lock().unwrap(), vec![(Bytes::from_static(b"abc"), true)], "the sender went away");
    }
}
