//! Per-tenant limits: a token bucket of requests per minute (`governor`),
//! a cap on requests in flight, and a budget of tokens per UTC day.

use crate::settings::QuotaSettings;
use crate::storage::tenants::Quota;
use governor::{DefaultDirectRateLimiter, Quota as Rate, RateLimiter, clock::Clock};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Limits in force for one tenant: its own quota over the configured defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests per minute.
    pub requests_per_minute: u32,
    /// Requests in flight.
    pub max_concurrent: u32,
    /// Tokens per UTC day; `None` is unlimited.
    pub tokens_per_day: Option<u64>,
}

impl Limits {
    /// `quota` where set, `defaults` elsewhere (non-positive values count as unset).
    pub fn resolve(quota: &Quota, defaults: &QuotaSettings) -> Self {
        let positive = |v: Option<i64>| v.filter(|v| *v > 0);
        Self {
            requests_per_minute: positive(quota.requests_per_minute)
                .map_or(defaults.requests_per_minute, |v| {
                    u32::try_from(v).unwrap_or(u32::MAX)
                }),
            max_concurrent: positive(quota.max_concurrent).map_or(defaults.max_concurrent, |v| {
                u32::try_from(v).unwrap_or(u32::MAX)
            }),
            tokens_per_day: positive(quota.tokens_per_day)
                .map(|v| v as u64)
                .or(defaults.tokens_per_day),
        }
    }
}

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
pub struct Quotas {
    buckets: Mutex<HashMap<String, Arc<Bucket>>>,
    slots: Mutex<HashMap<String, Arc<Slots>>>,
}

impl std::fmt::Debug for Quotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quotas").finish_non_exhaustive()
    }
}

impl Quotas {
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
        let q = Quotas::default();
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
        let q = Quotas::default();
        let l = limits(10, 2);
        let a = q.take_slot("t", &l).unwrap();
        let _b = q.take_slot("t", &l).unwrap();
        assert!(q.take_slot("t", &l).is_none());
        drop(a);
        assert!(q.take_slot("t", &l).is_some());
    }

    #[test]
    fn tenant_quota_overrides_defaults() {
        let d = QuotaSettings::default();
        let own = Quota {
            requests_per_minute: Some(5),
            max_concurrent: None,
            tokens_per_day: Some(1000),
        };
        let l = Limits::resolve(&own, &d);
        assert_eq!(
            (l.requests_per_minute, l.max_concurrent, l.tokens_per_day),
            (5, d.max_concurrent, Some(1000))
        );
    }
}
