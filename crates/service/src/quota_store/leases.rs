//! Leases in the shared store: a concurrency slot or a budget reservation is
//! a member of a sorted set scored by its expiry. This replica renews the
//! ones it holds every third of the lease time (`cluster.lease_secs`); if
//! it dies they expire within that time and their slots and tokens come back
//! to the others.

use redis::Script;
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::Duration;

/// The connection and the leases this replica holds (renewed in the
/// background until released).
pub(super) struct Inner {
    pub(super) connection: ConnectionManager,
    pub(super) held: Mutex<HashMap<u64, (String, String)>>,
    pub(super) next_lease: AtomicU64,
    /// How long a lease outlives its last renewal.
    pub(super) lease: Duration,
}

/// Counter of failed calls to the shared store, by step (`admit`,
/// `reserve`, `settle`, `release`, `renew`) and what admission did then
/// (`refused`, `local`, or `none` outside admission).
pub const STORE_ERRORS: &str = "harpoon_quota_store_errors_total";

static RENEW: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/renew.lua")));

impl Inner {
    /// The lease time in milliseconds, as the scripts take it.
    pub(super) fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX)
    }
}

/// A slot or reservation this replica holds in the shared store, let go
/// when dropped.
#[derive(Debug)]
pub struct Lease {
    inner: Weak<Inner>,
    id: u64,
    key: String,
    member: String,
    /// Whether it must be let go when dropped: from before the script that
    /// takes it is sent (a request that leaves, or a timeout, while the store
    /// already took it must not hold a slot until it lapses) until it is
    /// known not taken or handed to a settle.
    armed: bool,
}

impl Lease {
    /// `key`'s member `member`, about to be asked for: let go if dropped.
    pub(super) fn new(inner: &Arc<Inner>, key: String, member: String) -> Self {
        Self {
            inner: Arc::downgrade(inner),
            id: inner.next_lease.fetch_add(1, Ordering::Relaxed),
            key,
            member,
            armed: true,
        }
    }

    /// The sorted set it lives in.
    pub(super) fn key(&self) -> &str {
        &self.key
    }

    /// Its member in that set.
    pub(super) fn member(&self) -> &str {
        &self.member
    }

    /// Taken: renewed from now on, let go when dropped.
    pub(super) fn hold(self) -> Self {
        if let Some(inner) = self.inner.upgrade() {
            inner
                .held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(self.id, (self.key.clone(), self.member.clone()));
        }
        self
    }

    /// Not taken: nothing to let go.
    pub(super) fn forget(mut self) {
        self.armed = false;
    }

    /// Stops renewing it and hands its set and member over to be let go by
    /// the caller.
    pub(super) fn into_parts(mut self) -> (String, String) {
        self.stop_renewing();
        self.armed = false;
        (
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.member),
        )
    }

    fn stop_renewing(&self) -> Option<Arc<Inner>> {
        let inner = self.inner.upgrade()?;
        inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
        Some(inner)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Some(inner) = self.stop_renewing() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // it expires by itself
        };
        let (key, member) = (
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.member),
        );
        let mut connection = inner.connection.clone();
        runtime.spawn(async move {
            let released: Result<i64, _> = redis::cmd("ZREM")
                .arg(&key)
                .arg(&member)
                .query_async(&mut connection)
                .await;
            if let Err(e) = released {
                metrics::counter!(STORE_ERRORS, "step" => "release", "policy" => "none")
                    .increment(1);
                tracing::warn!(error = %e, "a shared lease could not be let go; it expires by itself");
            }
        });
    }
}

/// Renews every lease held, for as long as the counters exist.
pub(super) fn keep_renewing(inner: &Arc<Inner>) {
    let weak = Arc::downgrade(inner);
    // Three tries before a lease lapses.
    let every = inner.lease / 3;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let held: Vec<(String, String)> = inner
                .held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .cloned()
                .collect();
            if held.is_empty() {
                continue;
            }
            let mut invocation = RENEW.prepare_invoke();
            invocation.arg(inner.lease_ms());
            for (key, member) in &held {
                invocation.key(key).arg(member);
            }
            let mut connection = inner.connection.clone();
            drop(inner);
            if let Err(e) = invocation.invoke_async::<i64>(&mut connection).await {
                metrics::counter!(STORE_ERRORS, "step" => "renew", "policy" => "none").increment(1);
                tracing::warn!(error = %e, leases = held.len(), "shared leases could not be renewed");
            }
        }
    });
}
