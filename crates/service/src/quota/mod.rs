//! Per-tenant limits: requests per minute, requests in flight, and a budget
//! of tokens per UTC day (reserved in [`crate::storage::usage`]). Counted
//! in this process, or, with `cluster.redis_url`, once for every replica in
//! the shared store ([`crate::cluster`]).

mod limits;
mod local;

pub use limits::Limits;

use crate::quota_store::{Admission, CounterError, Lease, SharedCounters};
use local::LocalQuotas;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;

/// One of a tenant's concurrency slots, given back when dropped.
#[derive(Debug)]
pub enum Slot {
    /// Of this process's own semaphore.
    Local(OwnedSemaphorePermit),
    /// A lease in the shared store.
    Shared(Lease),
}

/// Why a request was not admitted.
#[derive(Debug)]
pub enum Refused {
    /// The tenant's bucket is empty: the next request may go after this long.
    Rate(Duration),
    /// Every slot of the tenant's is taken.
    Concurrency,
    /// The shared store did not answer and `cluster.on_redis_error` is `closed`.
    StoreUnavailable(CounterError),
}

/// The live counters: this process's own, or the shared store's with this
/// process's own as the fallback under `cluster.on_redis_error: open`.
#[derive(Debug, Default)]
pub struct Quotas {
    local: LocalQuotas,
    shared: Option<Arc<SharedCounters>>,
}

impl Quotas {
    /// Counted in the shared store.
    pub fn shared(counters: Arc<SharedCounters>) -> Self {
        Self {
            local: LocalQuotas::default(),
            shared: Some(counters),
        }
    }

    /// Takes one request from the tenant's bucket, then one of its
    /// concurrency slots, held until dropped.
    pub async fn admit(&self, tenant: &str, limits: &Limits) -> Result<Slot, Refused> {
        if let Some(shared) = &self.shared {
            let asked = (limits.requests_per_minute, limits.max_concurrent);
            match shared.admit(tenant, asked).await {
                Ok(Admission::Admitted(lease)) => return Ok(Slot::Shared(lease)),
                Ok(Admission::OverRate(wait)) => return Err(Refused::Rate(wait)),
                Ok(Admission::NoSlot) => return Err(Refused::Concurrency),
                Err(e) => shared
                    .fall_back("admit", e)
                    .map_err(Refused::StoreUnavailable)?,
            }
        }
        self.local
            .take_request(tenant, limits)
            .map_err(Refused::Rate)?;
        self.local
            .take_slot(tenant, limits)
            .map(Slot::Local)
            .ok_or(Refused::Concurrency)
    }
}
