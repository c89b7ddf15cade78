//! Usage and cost per tenant and model on hosted·ai: requests, tokens, and
//! the vGPU-seconds a subscription was held, pro-rated across the tenants that
//! used it in each accrual slice (by tokens), priced at the pool's hourly cost.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Tenant that held idle capacity nobody used in a slice.
pub const UNATTRIBUTED: &str = "_unattributed";
/// Gauge: estimated cost so far per model.
pub const ESTIMATED_COST: &str = "harpoon_hosted_ai_estimated_cost";
/// Gauge: vGPU-seconds held so far per model.
pub const VGPU_SECONDS: &str = "harpoon_hosted_ai_vgpu_seconds";
/// Gauge: vGPU-seconds held so far per pool (all models).
pub const POOL_VGPU_SECONDS: &str = "harpoon_hosted_ai_pool_vgpu_seconds";
/// Gauge: estimated cost so far per pool (all models).
pub const POOL_ESTIMATED_COST: &str = "harpoon_hosted_ai_pool_estimated_cost";

/// One tenant's use of one hosted_ai model.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelUsage {
    /// Model name.
    pub model: String,
    /// Requests served.
    pub requests: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Generated tokens.
    pub completion_tokens: u64,
    /// Share of vGPU-seconds held for this tenant.
    pub vgpu_seconds: f64,
    /// Estimated cost of that share, in the pool's currency.
    pub estimated_cost: f64,
}

#[derive(Debug, Default)]
struct Inner {
    usage: BTreeMap<(String, String), ModelUsage>,
    /// Token weights per model since its last accrual, by tenant.
    pending: BTreeMap<String, BTreeMap<String, f64>>,
    totals: BTreeMap<String, (f64, f64)>,
    /// vGPU-seconds and cost per pool.
    pool_totals: BTreeMap<String, (f64, f64)>,
}

/// The meter.
#[derive(Debug, Default)]
pub struct Meter {
    inner: Mutex<Inner>,
}

impl Meter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one finished request of `tenant` on `model`.
    pub fn record(&self, tenant: &str, model: &str, prompt_tokens: u32, completion_tokens: u32) {
        let mut inner = self.lock();
        let entry = inner
            .usage
            .entry((tenant.to_owned(), model.to_owned()))
            .or_insert_with(|| ModelUsage {
                model: model.to_owned(),
                ..ModelUsage::default()
            });
        entry.requests += 1;
        entry.prompt_tokens += u64::from(prompt_tokens);
        entry.completion_tokens += u64::from(completion_tokens);
        // One extra unit so a request with no tokens still counts as use.
        let weight = f64::from(prompt_tokens) + f64::from(completion_tokens) + 1.0;
        *inner
            .pending
            .entry(model.to_owned())
            .or_default()
            .entry(tenant.to_owned())
            .or_default() += weight;
    }

    /// Splits `vgpu_seconds` held for `model` on `pool` (costing `cost`)
    /// across the tenants that used it since the last accrual.
    pub fn accrue(&self, model: &str, pool: &str, vgpu_seconds: f64, cost: f64) {
        if vgpu_seconds <= 0.0 {
            return;
        }
        let mut inner = self.lock();
        let weights = inner.pending.remove(model).unwrap_or_default();
        let total: f64 = weights.values().sum();
        let shares: Vec<(String, f64)> = if total > 0.0 {
            weights.into_iter().map(|(t, w)| (t, w / total)).collect()
        } else {
            vec![(UNATTRIBUTED.to_owned(), 1.0)]
        };
        for (tenant, share) in shares {
            let entry = inner
                .usage
                .entry((tenant, model.to_owned()))
                .or_insert_with(|| ModelUsage {
                    model: model.to_owned(),
                    ..ModelUsage::default()
                });
            entry.vgpu_seconds += vgpu_seconds * share;
            entry.estimated_cost += cost * share;
        }
        let totals = inner.totals.entry(model.to_owned()).or_default();
        totals.0 += vgpu_seconds;
        totals.1 += cost;
        let (secs, spent) = *totals;
        metrics::gauge!(VGPU_SECONDS, "model" => model.to_owned()).set(secs);
        metrics::gauge!(ESTIMATED_COST, "model" => model.to_owned()).set(spent);
        let totals = inner.pool_totals.entry(pool.to_owned()).or_default();
        totals.0 += vgpu_seconds;
        totals.1 += cost;
        let (secs, spent) = *totals;
        let label = crate::hosted_ai::pool_label(pool);
        metrics::gauge!(POOL_VGPU_SECONDS, "pool" => label.clone()).set(secs);
        metrics::gauge!(POOL_ESTIMATED_COST, "pool" => label).set(spent);
    }

    /// vGPU-seconds held on `pool` in all, every model's.
    pub fn pool_vgpu_seconds(&self, pool: &str) -> f64 {
        self.lock()
            .pool_totals
            .get(pool)
            .map_or(0.0, |(secs, _)| *secs)
    }

    /// vGPU-seconds held for `model` in all, as the panel bills them.
    pub fn vgpu_seconds(&self, model: &str) -> f64 {
        self.lock().totals.get(model).map_or(0.0, |(secs, _)| *secs)
    }

    /// Usage of one tenant, per model.
    pub fn tenant(&self, tenant: &str) -> Vec<ModelUsage> {
        self.lock()
            .usage
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, u)| u.clone())
            .collect()
    }

    /// Estimated cost so far, all tenants and models.
    pub fn estimated_total(&self) -> f64 {
        self.lock().totals.values().map(|(_, c)| c).sum()
    }
}
