//! The bounded memory of answered event ids that makes redeliveries harmless (protocol step 2),
//! shared by the lanes: an id is claimed before it is handled, so two deliveries of one id in two
//! lanes are never handled at once (the second waits, then is skipped if the first was answered).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// The ids of the last `capacity` events answered (outcome published or dead-lettered), and the
/// ids being handled right now.
pub(super) struct Dedupe {
    inner: Mutex<Inner>,
}

struct Inner {
    seen: HashSet<Arc<str>>,
    order: VecDeque<Arc<str>>,
    capacity: usize,
    /// Ids claimed by a lane; once another lane waits for one, a sender that drops when the claim
    /// ends, waking whoever waits (none is made for the usual claim nobody waits for).
    claimed: HashMap<Arc<str>, Option<watch::Sender<()>>>,
}

/// A lane's exclusive hold on an event id. Dropped without [`Claim::answered`], the id is free
/// again (the event was not answered: its record is left for redelivery).
pub(super) struct Claim {
    dedupe: Arc<Dedupe>,
    id: Arc<str>,
    answered: bool,
}

impl Dedupe {
    pub(super) fn new(capacity: usize) -> Arc<Self> {
        let inner = Inner { seen: HashSet::new(), order: VecDeque::new(), capacity, claimed: HashMap::new() };
        Arc::new(Self { inner: Mutex::new(inner) })
    }

    /// Claims `id` for handling; `None` when it was already answered. Waits while another lane
    /// holds it.
    pub(super) async fn claim(self: &Arc<Self>, id: &str) -> Option<Claim> {
        loop {
            let mut ended = {
                let mut inner = self.lock();
                if inner.seen.contains(id) {
                    return None;
                }
                match inner.claimed.get_mut(id) {
                    Some(holder) => holder.get_or_insert_with(|| watch::channel(()).0).subscribe(),
                    None => {
                        let id: Arc<str> = id.into();
                        inner.claimed.insert(id.clone(), None);
                        return Some(Claim { dedupe: self.clone(), id, answered: false });
                    }
                }
            };
            // Err once the holder's claim ends (its sender is dropped), whenever that happened.
            while ended.changed().await.is_ok() {}
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Claim {
    /// The claimed event id.
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    /// The event was answered: remember its id (within capacity) and end the claim.
    pub(super) fn answered(mut self) {
        self.answered = true;
    }
}

impl Drop for Claim {
    /// Remembering the id and ending the claim happen under one lock, so a waiter wakes to find
    /// the id answered.
    fn drop(&mut self) {
        let mut inner = self.dedupe.lock();
        if self.answered {
            inner.remember(&self.id);
        }
        let waiters = inner.claimed.remove(&self.id);
        drop(inner);
        drop(waiters);
    }
}

impl Inner {
    fn remember(&mut self, id: &Arc<str>) {
        if self.capacity == 0 || !self.seen.insert(id.clone()) {
            return;
        }
        self.order.push_back(id.clone());
        if self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(d: &Arc<Dedupe>, id: &str) {
        d.lock().remember(&id.into());
    }

    #[tokio::test]
    async fn dedupe_forgets_the_oldest_beyond_capacity() {
        let d = Dedupe::new(2);
        for id in ["a", "b", "a", "c"] {
            answer(&d, id);
        }
        let free = |id: &'static str| {
            let d = d.clone();
            async move { d.claim(id).await.is_some() }
        };
        assert_eq!((free("a").await, free("b").await, free("c").await), (true, false, false));
        let none = Dedupe::new(0);
        none.claim("a").await.expect("free").answered();
        assert!(none.claim("a").await.is_some(), "capacity 0 remembers nothing");
    }

    #[tokio::test]
    async fn a_second_claim_waits_for_the_first_and_sees_its_result() {
        let d = Dedupe::new(10);
        let first = d.claim("e1").await.expect("free");
        let waiter = tokio::spawn({
            let d = d.clone();
            async move { d.claim("e1").await.is_some() }
        });
        // One thread: after these yields the waiter has run as far as it can, and it is blocked.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished(), "the second claim waits while the first is held");
        first.answered();
        assert!(!waiter.await.unwrap(), "answered by the first lane: the second skips it");

        // An abandoned claim (dropped unanswered) lets the next claimant handle the event.
        let held = d.claim("e2").await.expect("free");
        let waiter = tokio::spawn({
            let d = d.clone();
            async move { d.claim("e2").await.map(Claim::answered).is_some() }
        });
        drop(held);
        assert!(waiter.await.unwrap(), "the event was not answered: the waiter claims it");
        assert!(d.claim("e2").await.is_none());
    }
}
