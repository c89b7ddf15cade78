//! Strike slots shared fairly between tenants.
//!
//! `bridge.parallelism` repositories are worked on at once across every
//! strike. A plain semaphore hands them out first come, first served, so one
//! tenant that starts a strike on many slow remotes holds every slot until
//! its git steps hit their deadline, and every other tenant waits. Here a
//! tenant holds at most `bridge.tenant_parallelism` slots at once, and a
//! freed slot goes to the waiting tenant that holds the fewest (the earliest
//! waiter among equals): a tenant with nothing running is never queued
//! behind one that already runs.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;

/// The slots of one bridge.
#[derive(Debug)]
pub(crate) struct FairSlots {
    total: usize,
    per_tenant: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    in_use: usize,
    held: HashMap<String, usize>,
    waiting: VecDeque<Waiter>,
    next_id: u64,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    tenant: String,
    wake: oneshot::Sender<()>,
}

impl State {
    fn held(&self, tenant: &str) -> usize {
        self.held.get(tenant).copied().unwrap_or(0)
    }

    fn take(&mut self, tenant: &str) {
        self.in_use += 1;
        *self.held.entry(tenant.to_owned()).or_default() += 1;
    }

    fn give_back(&mut self, tenant: &str) {
        self.in_use = self.in_use.saturating_sub(1);
        if let Some(n) = self.held.get_mut(tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.held.remove(tenant);
            }
        }
    }

    /// Hands free slots to waiters: the tenant holding the fewest first,
    /// the earliest waiter among equals, never one at its own cap. A waiter
    /// whose caller went away is still counted as holding the slot; its
    /// guard gives it back (see `Pending`).
    fn dispatch(&mut self, total: usize, per_tenant: usize) {
        while self.in_use < total {
            let next = self
                .waiting
                .iter()
                .enumerate()
                .filter(|(_, w)| self.held(&w.tenant) < per_tenant)
                .min_by_key(|(at, w)| (self.held(&w.tenant), *at))
                .map(|(at, _)| at);
            let Some(waiter) = next.and_then(|at| self.waiting.remove(at)) else {
                return;
            };
            self.take(&waiter.tenant);
            let _ = waiter.wake.send(());
        }
    }
}

/// One slot, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Arc<FairSlots>,
    tenant: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.release(&self.tenant);
    }
}

/// A waiter's place in the queue while its caller waits: dropped before the
/// slot was received (a cancelled strike), it leaves the queue, or gives
/// back the slot that was handed to it in the meantime.
struct Pending {
    slots: Arc<FairSlots>,
    id: u64,
    tenant: String,
    armed: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut state = self.slots.lock();
        if let Some(at) = state.waiting.iter().position(|w| w.id == self.id) {
            state.waiting.remove(at);
        } else {
            state.give_back(&self.tenant);
            state.dispatch(self.slots.total, self.slots.per_tenant);
        }
    }
}

impl FairSlots {
    /// `total` slots, at most `per_tenant` (both at least 1) to one tenant.
    pub(crate) fn new(total: usize, per_tenant: usize) -> Arc<Self> {
        let total = total.max(1);
        Arc::new(Self {
            total,
            per_tenant: per_tenant.clamp(1, total),
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change is a few counters and one queue edit: a panic in
        // between cannot leave them inconsistent enough to matter more than
        // a stalled bridge would.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a slot for `tenant`. Cancel-safe: dropping the future gives
    /// up the place in the queue, or the slot if it was just handed over.
    pub(crate) async fn acquire(self: &Arc<Self>, tenant: &str) -> Slot {
        let (rx, id) = {
            let mut state = self.lock();
            // Waiters are only left waiting when no slot is free or they are
            // at their cap, so a tenant under its cap that finds a free slot
            // passes nobody who could have had it.
            if state.in_use < self.total && state.held(tenant) < self.per_tenant {
                state.take(tenant);
                return Slot {
                    slots: self.clone(),
                    tenant: tenant.to_owned(),
                };
            }
            let (wake, rx) = oneshot::channel();
            let id = state.next_id;
            state.next_id += 1;
            state.waiting.push_back(Waiter {
                id,
                tenant: tenant.to_owned(),
                wake,
            });
            (rx, id)
        };
        let mut pending = Pending {
            slots: self.clone(),
            id,
            tenant: tenant.to_owned(),
            armed: true,
        };
        // The sender is dropped only after sending (dispatch) or together
        // with this waiter's own removal, so an error cannot happen here;
        // either way the slot was counted for us when the sender was used.
        let _ = rx.await;
        pending.armed = false;
        Slot {
            slots: self.clone(),
            tenant: tenant.to_owned(),
        }
    }

    fn release(&self, tenant: &str) {
        let mut state = self.lock();
        state.give_back(tenant);
        state.dispatch(self.total, self.per_tenant);
    }

    /// Slots held now by `tenant`.
    #[cfg(test)]
    fn held_by(&self, tenant: &str) -> usize {
        self.lock().held(tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::FairSlots;
    use std::time::Duration;

    async fn soon<T>(f: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::time::timeout(Duration::from_millis(200), f)
            .await
            .ok()
    }

    #[tokio::test]
    async fn one_tenant_holds_at_most_its_share() {
        let slots = FairSlots::new(4, 2);
        let a1 = slots.acquire("a").await;
        let _a2 = slots.acquire("a").await;
        assert!(
            soon(slots.acquire("a")).await.is_none(),
            "a third slot for a"
        );
        // Another tenant still gets the free slots at once.
        let _b1 = soon(slots.acquire("b")).await.expect("b waited");
        let _b2 = soon(slots.acquire("b")).await.expect("b waited");
        assert_eq!(slots.held_by("a"), 2);
        drop(a1);
        assert_eq!(slots.held_by("a"), 1);
    }

    #[tokio::test]
    async fn a_freed_slot_goes_to_the_waiting_tenant_holding_fewest() {
        let slots = FairSlots::new(2, 2);
        let a1 = slots.acquire("a").await;
        let _a2 = slots.acquire("a").await;
        // a queues first for a third (over its cap anyway), then b and c.
        let s = slots.clone();
        let a3 = tokio::spawn(async move { s.acquire("a").await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let s = slots.clone();
        let b = tokio::spawn(async move { s.acquire("b").await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a1);
        // a still holds one, b none: b goes first though a asked earlier.
        let b = soon(b).await.expect("b was not served").unwrap();
        assert_eq!(slots.held_by("b"), 1);
        assert!(!a3.is_finished());
        drop(b);
        let _a3 = soon(a3).await.expect("a was not served").unwrap();
        assert_eq!(slots.held_by("a"), 2);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_leaks_no_slot() {
        let slots = FairSlots::new(1, 1);
        let held = slots.acquire("a").await;
        // Given up while queued.
        assert!(soon(slots.acquire("b")).await.is_none());
        // Given up just as the slot is handed over: the future is dropped
        // without being polled again after the release.
        let mut late = Box::pin(slots.acquire("c"));
        assert!(futures_util::poll!(&mut late).is_pending());
        drop(held);
        drop(late);
        let again = soon(slots.acquire("d")).await;
        assert!(again.is_some(), "a slot leaked");
        assert_eq!(slots.held_by("c"), 0);
        assert_eq!(slots.held_by("b"), 0);
    }
}
