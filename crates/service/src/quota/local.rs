//! This process's own counters: a token bucket of requests per minute per
//! tenant (`governor`) and a semaphore of its requests in flight.

use super::limits::Limits;
use governor::{DefaultDirectRateLimiter, Quota as Rate, RateLimiter, clock::Clock};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

struct Bucket {
    rate: u32,
    limiter: DefaultDirectRateLimiter,
}

struct Slots {
    size: u32,
    semaphore: Arc<Semaphore>,
}

/// The live counters of every tenant seen since start.
#[derive(Default)]
pub struct LocalQuotas {
    buckets: Mutex<HashMap<String, Arc<Bucket>>>,
    slots: Mutex<HashMap<String, Arc<Slots>>>,
}

impl std::fmt::Debug for LocalQuotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalQuotas").finish_non_exhaustive()
    }
}

impl LocalQuotas {
    /// Takes one request from the tenant's bucket, or says how long to wait.
    pub fn take_request(&self, tenant: &str, limits: &Limits) -> Result<(), Duration> {
        let bucket = {
            let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
            let current = buckets
                .get(tenant)
                .filter(|b| b.rate == limits.requests_per_minute);
            match current {
                Some(b) => b.clone(),
                None => {
                    let rate =
                        NonZeroU32::new(limits.requests_per_minute).unwrap_or(NonZeroU32::MIN);
                    let b = Arc::new(Bucket {
                        rate: limits.requests_per_minute,
                        limiter: RateLimiter::direct(Rate::per_minute(rate)),
                    });
                    buckets.insert(tenant.to_owned(), b.clone());
                    b
                }
            }
        };
        bucket.limiter.check().map_err(|not_until| {
            not_until.wait_time_from(governor::clock::DefaultClock::default().now())
        })
    }

    /// A slot among the tenant's concurrent requests, held until dropped.
    pub fn take_slot(&self, tenant: &str, limits: &Limits) -> Option<OwnedSemaphorePermit> {
        let slots = {
            let mut all = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let current = all.get(tenant).filter(|s| s.size == limits.max_concurrent);
            match current {
                Some(s) => s.clone(),
                None => {
                    let s = Arc::new(Slots {
                        size: limits.max_concurrent,
                        semaphore: Arc::new(Semaphore::new(limits.max_concurrent as usize)),
                    });
                    all.insert(tenant.to_owned(), s.clone());
                    s
                }
            }
        };
        slots.semaphore.clone().try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rpm: u32, concurrent: u32) -> Limits {
        Limits {
            requests_per_minute: rpm,
            max_concurrent: concurrent,
            tokens_per_day: None,
        }
    }

    #[test]
    fn the_bucket_empties_then_says_when_it_refills() {
        let q = LocalQuotas::default();
        let l = limits(3, 1);
        for _ in 0..3 {
            assert!(q.take_request("t", &l).is_ok());
        }
        let wait = q.take_request("t", &l).unwrap_err();
        // 3 per minute: one token every 20 s.
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(
            q.take_request("other", &l).is_ok(),
            "tenants have separate buckets"
        );
    }

    #[test]
    fn slots_are_returned_when_dropped() {
        let q = LocalQuotas::default();
        let l = limits(10, 2);
        let a = q.take_slot("t", &l).unwrap();
        let _b = q.take_slot("t", &l).unwrap();
        assert!(q.take_slot("t", &l).is_none());
        drop(a);
        assert!(q.take_slot("t", &l).is_some());
    }
}
