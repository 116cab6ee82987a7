//! The global budget of buffered request bytes (`server.max_buffered_body_bytes`).
//!
//! A matched route buffers its whole request body (the signature covers it, the event carries
//! it). Before a byte of it is read, the request reserves what its body may grow to: its
//! declared length (Content-Length, or 0 for a request without a body) or, for a chunked body
//! whose length is unknown, `server.max_body_bytes`, the most the body-limit layer lets through.
//! A body can therefore never outgrow its reservation, and the buffer is sized once from it. A
//! request whose reservation does not fit what is left of the budget is answered at once with
//! 503 `body_budget_exhausted` and `Retry-After`, its body unread; the reservation is given back
//! when the request's buffered body is dropped (its answer's head is ready, or it failed).
//!
//! Reserving the whole declared size up front, rather than growing per chunk, means a sender
//! is never cut off half-way through a body it was allowed to start, and a sender that declares
//! 1 MiB and then stalls holds exactly what it could cost. Passthrough traffic streams and is
//! not budgeted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body::Body as _;
use http_body_util::BodyExt;
use prometheus::{IntCounterVec, IntGauge, Registry};

use super::Body;
use crate::BoxError;

/// Shared by every connection of one listener.
pub struct BodyBudget {
    limit: u64,
    reserved: AtomicU64,
    /// `strangler_body_budget_reserved_bytes`.
    reserved_gauge: IntGauge,
    /// `strangler_body_buffered_bytes`.
    buffered_gauge: IntGauge,
    /// `strangler_body_budget_exhausted_total{route}`.
    exhausted: IntCounterVec,
}

/// Bytes a request holds of the budget; given back on drop.
pub struct Reservation {
    budget: Arc<BodyBudget>,
    bytes: u64,
    buffered: u64,
}

impl BodyBudget {
    /// A budget of `limit` bytes, its metrics registered into `registry` (a metric that cannot
    /// be registered keeps working unexposed, and the log says so).
    pub fn new(limit: u64, registry: &Registry, exhausted: IntCounterVec) -> Arc<Self> {
        let reserved_gauge = IntGauge::new(
            "strangler_body_budget_reserved_bytes",
            "Bytes of server.max_buffered_body_bytes reserved by matched requests whose bodies are being buffered.",
        )
        .expect("a valid metric");
        let buffered_gauge = IntGauge::new(
            "strangler_body_buffered_bytes",
            "Bytes of matched requests' bodies read into memory and not yet released.",
        )
        .expect("a valid metric");
        for metric in [Box::new(reserved_gauge.clone()) as Box<dyn prometheus::core::Collector>, Box::new(buffered_gauge.clone())]
        {
            if let Err(e) = registry.register(metric) {
                tracing::warn!(error = %e, "a body budget metric is not registered");
            }
        }
        Arc::new(Self { limit, reserved: AtomicU64::new(0), reserved_gauge, buffered_gauge, exhausted })
    }

    /// Reserves `bytes`, or `None` (counted for `route`) when they do not fit what is left.
    pub fn reserve(self: &Arc<Self>, route: &str, bytes: u64) -> Option<Reservation> {
        let fits = self.reserved.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
            held.checked_add(bytes).filter(|total| *total <= self.limit)
        });
        match fits {
            Ok(_) => {
                self.reserved_gauge.add(gauge(bytes));
                Some(Reservation { budget: self.clone(), bytes, buffered: 0 })
            }
            Err(held) => {
                self.exhausted.with_label_values(&[route]).inc();
                tracing::warn!(route, wanted = bytes, held, limit = self.limit, "body budget exhausted: 503");
                None
            }
        }
    }

    /// Bytes reserved now.
    pub fn reserved(&self) -> u64 {
        self.reserved.load(Ordering::Acquire)
    }
}

/// Large allocations (buffered bodies are one allocation each) from the OS, given back when freed.
///
/// glibc raises its mmap threshold to the size of the first large block freed (up to 32 MiB), so
/// from the second burst of held bodies on, their buffers come from the heap and stay with the
/// process after they are freed (measured: 74 MB RSS kept after the second burst of 64 held 1 MiB
/// bodies, against 29 MB with the threshold fixed; docs/operations.md). Fixing the threshold at
/// 128 KiB, glibc's default, keeps every buffer from there up on its own mapping, unmapped on free.
/// Call before any thread starts. Other C libraries and allocators are left as they are.
pub fn return_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a malloc setting; it is called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

fn gauge(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

impl Reservation {
    /// What a body of this size hint may grow to: its exact length when known, else `max_body`.
    pub fn size_for(body: &Body, max_body: usize) -> u64 {
        body.size_hint().exact().unwrap_or(max_body as u64)
    }

    /// Reads `body` whole into one buffer sized from the reservation, counting what it holds.
    pub async fn collect(&mut self, mut body: Body) -> Result<Bytes, BoxError> {
        let cap = usize::try_from(self.bytes).unwrap_or(usize::MAX);
        let exact = body.size_hint().exact().is_some();
        // A declared length is allocated once; an unknown one grows, never past the reservation.
        let mut buf: Vec<u8> = Vec::with_capacity(if exact { cap } else { cap.min(16 * 1024) });
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame?.into_data() else { continue };
            if buf.capacity() - buf.len() < data.len() {
                let want = (buf.len() + data.len()).max(buf.capacity().saturating_mul(2)).min(cap.max(buf.len() + data.len()));
                buf.reserve_exact(want - buf.len());
            }
            buf.extend_from_slice(&data);
            self.count(data.len() as u64);
        }
        Ok(Bytes::from(buf))
    }

    fn count(&mut self, bytes: u64) {
        self.buffered += bytes;
        self.budget.buffered_gauge.add(gauge(bytes));
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.reserved.fetch_sub(self.bytes, Ordering::AcqRel);
        self.budget.reserved_gauge.sub(gauge(self.bytes));
        self.budget.buffered_gauge.sub(gauge(self.buffered));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exhausted() -> IntCounterVec {
        IntCounterVec::new(prometheus::Opts::new("exhausted", "test"), &["route"]).unwrap()
    }

    fn body(chunks: &[&'static [u8]], exact: bool) -> Body {
        use futures_util::stream;
        use http_body_util::StreamBody;
        let frames: Vec<Result<http_body::Frame<Bytes>, BoxError>> =
            chunks.iter().map(|c| Ok(http_body::Frame::data(Bytes::from_static(c)))).collect();
        if exact {
            super::super::full(chunks.concat())
        } else {
            StreamBody::new(stream::iter(frames)).boxed()
        }
    }

    #[tokio::test]
    async fn reservations_fit_the_budget_and_are_given_back_on_drop() {
        let registry = Registry::new();
        let budget = BodyBudget::new(10, &registry, exhausted());
        let a = budget.reserve("r", 6).expect("fits");
        assert!(budget.reserve("r", 5).is_none(), "6 + 5 > 10");
        let b = budget.reserve("r", 4).expect("exactly fills it");
        assert_eq!(budget.reserved(), 10);
        assert!(budget.reserve("r", 1).is_none());
        drop(a);
        assert_eq!(budget.reserved(), 4);
        drop(b);
        assert_eq!(budget.reserved(), 0);
        assert_eq!(budget.exhausted.with_label_values(&["r"]).get(), 2);
    }

    #[tokio::test]
    async fn a_body_is_read_whole_and_counted_until_released() {
        let registry = Registry::new();
        let budget = BodyBudget::new(1 << 20, &registry, exhausted());
        for exact in [true, false] {
            let b = body(&[b"hello ", b"chunked ", b"world"], exact);
            let size = Reservation::size_for(&b, 1000);
            assert_eq!(size, if exact { 19 } else { 1000 });
            let mut r = budget.reserve("r", size).unwrap();
            let bytes = r.collect(b).await.unwrap();
            assert_eq!(&bytes[..], b"hello chunked world");
            assert_eq!((budget.buffered_gauge.get(), budget.reserved_gauge.get()), (19, size as i64));
            drop(r);
            assert_eq!((budget.buffered_gauge.get(), budget.reserved_gauge.get()), (0, 0));
        }
    }
}
