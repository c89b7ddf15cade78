//! The limits in force for a tenant.

use crate::settings::QuotaSettings;
use crate::storage::tenants::Quota;

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

#[cfg(test)]
mod tests {
    use super::*;

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
