//! What the dashboard shows over a window (REST's `GET /v2/dashboard`, and
//! the panels `GET /dashboard/panels` draws from the same report): the
//! ledger's requests and tokens per time bucket, model, tenant and tier,
//! latency, first-token and tokens/s percentiles per model, the models and
//! their engines, hosted·ai pools, and strikes.

use crate::{
    callers::Caller,
    error::ApiError,
    ops::models::model_list,
    state::AppState,
    storage::{
        StorageError, now_ms,
        usage::{Timing, UsageBucket},
    },
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Most successful requests whose timings one report reads (the newest).
const TIMINGS_LIMIT: i64 = 50_000;
/// Most strikes one report lists.
const STRIKES_LIMIT: i64 = 10;

/// Query of `GET /v2/dashboard` and `GET /dashboard/panels`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DashboardQuery {
    /// `1h`, `24h` (default) or `7d`: the window before now.
    #[param(pattern = "^(1h|24h|7d)$")]
    pub window: Option<String>,
    /// One tenant's id or name (admin keys; default every tenant). A tenant
    /// key sees only its own tenant whatever this says.
    pub tenant: Option<String>,
}

/// A window of the dashboard and how it is cut into buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last hour, in 5-minute buckets.
    Hour,
    /// The last 24 hours, in 1-hour buckets.
    Day,
    /// The last 7 days, in 6-hour buckets.
    Week,
}

impl Window {
    /// Parses `1h`, `24h` or `7d`; anything else is a 400 naming `window`.
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        match raw {
            None | Some("24h") => Ok(Self::Day),
            Some("1h") => Ok(Self::Hour),
            Some("7d") => Ok(Self::Week),
            Some(other) => Err(ApiError::invalid_param(
                "window",
                format!("{other:?} is not one of 1h, 24h, 7d"),
            )),
        }
    }

    /// Its name as the query spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "24h",
            Self::Week => "7d",
        }
    }

    /// Its length in milliseconds.
    pub fn span_ms(self) -> i64 {
        match self {
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
            Self::Week => 7 * 86_400_000,
        }
    }

    /// Width of one bucket in milliseconds.
    pub fn bucket_ms(self) -> i64 {
        match self {
            Self::Hour => 300_000,
            Self::Day => 3_600_000,
            Self::Week => 6 * 3_600_000,
        }
    }
}

/// Percentiles of one model's successful requests in the window.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelTimings {
    /// Model.
    pub model: String,
    /// Successful requests the figures are over.
    pub requests: u64,
    /// Median request time, milliseconds.
    pub latency_p50_ms: f64,
    /// 99th percentile request time, milliseconds.
    pub latency_p99_ms: f64,
    /// Median time to the first token, milliseconds (absent when none was recorded).
    pub ttft_p50_ms: Option<f64>,
    /// 99th percentile time to the first token, milliseconds.
    pub ttft_p99_ms: Option<f64>,
    /// Median generated tokens per second.
    pub tokens_per_second_p50: Option<f64>,
}

/// A model and its engine as the registry holds it now.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelState {
    /// Name to send as `model`.
    pub id: String,
    /// `mlx`, `openai`, `hosted_ai`, or `router` for `auto`.
    pub engine: String,
    /// Tier it serves (absent for `auto`).
    pub tier: Option<String>,
    /// Whether it can serve now (loaded, or loadable on first use).
    pub available: bool,
    /// `loaded`, `unloaded`, `loading`, `failed` or `remote` (absent without an engine, and for `auto`).
    pub load_state: Option<String>,
}

/// One deployment of a model, as an admin sees it (docs/deployments.md).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeploymentRow {
    /// `model/name`.
    pub id: String,
    /// `primary`, `overflow` or `fallback`.
    pub role: String,
    /// Its engine.
    pub engine: String,
    /// `closed`, `open`, `half_open`, or `none` for a model's only deployment.
    pub breaker: String,
    /// Requests it is serving.
    pub in_flight: usize,
    /// Requests waiting in its queue.
    pub queued: usize,
    /// Mean time to first token over the overflow window, milliseconds.
    pub recent_ttft_ms: Option<f64>,
    /// Requests it served since start.
    pub served: u64,
    /// Requests that failed on it since start.
    pub failures: u64,
}

/// One hosted·ai subscription, with what it has held so far.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SubscriptionState {
    /// Model it serves.
    pub model: String,
    /// Pool.
    pub pool_id: String,
    /// `ready` or `unhealthy`.
    pub state: String,
    /// vGPUs held.
    pub vgpus: u32,
    /// vGPU-hours held so far.
    pub vgpu_hours: f64,
    /// Estimated cost so far, in the pool's currency.
    pub cost_so_far: f64,
}

/// hosted·ai as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PoolsState {
    /// Subscriptions held now (admin keys only; empty for a tenant).
    pub subscriptions: Vec<SubscriptionState>,
    /// Per model, `idle`, `provisioning`, `ready`, `failed` or `released`.
    pub models: BTreeMap<String, String>,
    /// Estimated cost since the service started: the team's (admin) or the tenant's share.
    pub estimated_cost: f64,
    /// The tenant's share of vGPU-hours since start (absent for the admin's whole view).
    pub tenant_vgpu_hours: Option<f64>,
}

/// Body of `GET /v2/dashboard`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DashboardReport {
    /// The tenant shown (its name), or absent for every tenant (admin keys).
    pub tenant: Option<String>,
    /// `1h`, `24h` or `7d`.
    pub window: String,
    /// Start, Unix milliseconds.
    pub since: i64,
    /// End (exclusive), Unix milliseconds.
    pub until: i64,
    /// Width of one bucket, milliseconds.
    pub bucket_ms: i64,
    /// Ledger totals per bucket, model, tenant and tier (empty buckets absent).
    pub buckets: Vec<UsageBucket>,
    /// Per model: latency, first token and tokens/s.
    pub timings: Vec<ModelTimings>,
    /// Whether the timings read only the newest 50,000 requests of the window.
    pub timings_sampled: bool,
    /// Configured models, `auto` first.
    pub models: Vec<ModelState>,
    /// Every model's deployments, live (admin keys only: they name upstreams' load).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployments: Option<Vec<DeploymentRow>>,
    /// hosted·ai (absent when it is not configured here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pools: Option<PoolsState>,
    /// Strikes running or started in the window, newest first (at most 10).
    #[schema(value_type = Vec<Object>)]
    pub strikes: Vec<harpoon_bridge::StrikeStatus>,
}

/// The tenant a dashboard shows: a tenant key its own whatever it asks
/// (another tenant's name is a 404, as on `/v2/usage`); an admin key every
/// tenant, or the one named.
async fn scope(
    state: &AppState,
    caller: &Caller,
    asked: Option<&str>,
) -> Result<Option<crate::storage::tenants::Tenant>, ApiError> {
    let admin = caller.require_admin().is_ok();
    match asked {
        None if admin => Ok(None),
        None => Ok(Some(caller.tenant.clone())),
        Some(t) if t == caller.tenant.id || t == caller.tenant.name => {
            Ok(Some(caller.tenant.clone()))
        }
        Some(_) if !admin => Err(ApiError::from(StorageError::NotFound("tenant"))),
        Some(t) => Ok(Some(state.storage.find_tenant(t).await?)),
    }
}

/// The dashboard's report, as `caller` may see it (REST and the panels).
pub async fn dashboard_report(
    state: &AppState,
    caller: &Caller,
    query: &DashboardQuery,
) -> Result<DashboardReport, ApiError> {
    let window = Window::parse(query.window.as_deref())?;
    let tenant = scope(state, caller, query.tenant.as_deref()).await?;
    let tenant_id = tenant.as_ref().map(|t| t.id.as_str());
    let until = now_ms() + 1;
    let since = until - window.span_ms();
    let buckets = state
        .storage
        .usage_buckets(tenant_id, since, until, window.bucket_ms())
        .await?;
    let rows = state
        .storage
        .usage_timings(tenant_id, since, until, TIMINGS_LIMIT)
        .await?;
    let timings_sampled = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= TIMINGS_LIMIT;
    // Sorting tens of thousands of figures is CPU work: off the serving thread.
    let timings = tokio::task::spawn_blocking(move || percentiles(rows))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "dashboard percentiles failed");
            ApiError::new(crate::error::ErrorCode::Internal, "percentiles failed")
        })?;
    let loads: BTreeMap<String, String> = state
        .selector
        .registry
        .iter()
        .map(|m| m.status())
        .filter_map(|s| {
            let load = serde_json::to_value(s.load_state?).ok()?;
            Some((s.name, load.as_str()?.to_owned()))
        })
        .collect();
    let models = model_list(state)
        .data
        .into_iter()
        .map(|m| ModelState {
            load_state: loads.get(&m.id).cloned(),
            id: m.id,
            engine: m.engine.to_owned(),
            tier: m.tier.map(str::to_owned),
            available: m.available,
        })
        .collect();
    let pools = pools_state(state, caller, tenant_id);
    let strikes = state
        .bridge
        .recent_strikes(tenant_id, since, STRIKES_LIMIT)
        .await?;
    Ok(DashboardReport {
        tenant: tenant.map(|t| t.name),
        window: window.as_str().to_owned(),
        since,
        until,
        bucket_ms: window.bucket_ms(),
        buckets,
        timings,
        timings_sampled,
        models,
        deployments: caller
            .require_admin()
            .is_ok()
            .then(|| deployment_rows(state)),
        pools,
        strikes,
    })
}

fn deployment_rows(state: &AppState) -> Vec<DeploymentRow> {
    state
        .selector
        .registry
        .deployments()
        .into_iter()
        .flat_map(|m| m.deployments)
        .map(|d| DeploymentRow {
            id: d.id,
            role: d.role.to_owned(),
            engine: d.engine.to_owned(),
            breaker: d.breaker.to_owned(),
            in_flight: d.in_flight,
            queued: d.queued,
            recent_ttft_ms: d.recent_ttft_ms,
            served: d.served,
            failures: d.failures,
        })
        .collect()
}

/// hosted·ai's part: an admin sees the team's subscriptions (no refresh: the
/// manager's upkeep keeps them current, and a page refresh must not call the
/// panel); a tenant sees its own share only, never pod endpoints or billing.
fn pools_state(state: &AppState, caller: &Caller, tenant_id: Option<&str>) -> Option<PoolsState> {
    let manager = state.hosted_ai.as_ref()?;
    let snapshot = manager.snapshot();
    let models = snapshot
        .models
        .iter()
        .map(|m| (m.model.clone(), m.state.to_owned()))
        .collect();
    if caller.require_admin().is_ok() && tenant_id.is_none() {
        let subscriptions = snapshot
            .subscriptions
            .iter()
            .map(|s| {
                let hours = s.age_secs as f64 / 3_600.0;
                SubscriptionState {
                    model: s.model.clone(),
                    pool_id: s.pool_id.clone(),
                    state: s.state.to_owned(),
                    vgpus: s.vgpus,
                    vgpu_hours: f64::from(s.vgpus) * hours,
                    cost_so_far: s.hourly_cost * hours,
                }
            })
            .collect();
        return Some(PoolsState {
            subscriptions,
            models,
            estimated_cost: manager.meter().estimated_total(),
            tenant_vgpu_hours: None,
        });
    }
    let usage = tenant_id.map_or_else(Vec::new, |t| manager.meter().tenant(t));
    Some(PoolsState {
        subscriptions: Vec::new(),
        models,
        // `+ 0.0`: an empty sum is -0.0, which would print as such.
        estimated_cost: usage.iter().map(|u| u.estimated_cost).sum::<f64>() + 0.0,
        tenant_vgpu_hours: Some(usage.iter().map(|u| u.vgpu_seconds).sum::<f64>() / 3_600.0 + 0.0),
    })
}

/// The value below which `q` of the sorted figures lie (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank: the smallest value with at least q of the figures at or below it.
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Per model, p50/p99 of latency and first token and the median tokens/s.
pub fn percentiles(rows: Vec<Timing>) -> Vec<ModelTimings> {
    #[derive(Default)]
    struct Figures {
        latency: Vec<f64>,
        ttft: Vec<f64>,
        tps: Vec<f64>,
    }
    let mut per_model: BTreeMap<String, Figures> = BTreeMap::new();
    for r in rows {
        let f = per_model.entry(r.model).or_default();
        f.latency.push(r.latency_ms);
        f.ttft.extend(r.ttft_ms);
        f.tps.extend(r.tokens_per_second);
    }
    per_model
        .into_iter()
        .map(|(model, mut f)| {
            for v in [&mut f.latency, &mut f.ttft, &mut f.tps] {
                v.sort_by(f64::total_cmp);
            }
            ModelTimings {
                model,
                requests: f.latency.len() as u64,
                latency_p50_ms: quantile(&f.latency, 0.5).unwrap_or(0.0),
                latency_p99_ms: quantile(&f.latency, 0.99).unwrap_or(0.0),
                ttft_p50_ms: quantile(&f.ttft, 0.5),
                ttft_p99_ms: quantile(&f.ttft, 0.99),
                tokens_per_second_p50: quantile(&f.tps, 0.5),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(model: &str, latency: f64, ttft: Option<f64>) -> Timing {
        Timing {
            model: model.into(),
            latency_ms: latency,
            ttft_ms: ttft,
            tokens_per_second: ttft.map(|t| 1_000.0 / t),
        }
    }

    #[test]
    fn percentiles_are_nearest_rank_per_model() {
        let mut rows: Vec<Timing> = (1..=100)
            .map(|i| timing("a", f64::from(i), Some(f64::from(i) / 10.0)))
            .collect();
        rows.push(timing("b", 7.0, None));
        let t = percentiles(rows);
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].model.as_str(), t[0].requests), ("a", 100));
        assert_eq!(t[0].latency_p50_ms, 50.0);
        assert_eq!(t[0].latency_p99_ms, 99.0);
        assert_eq!(t[0].ttft_p50_ms, Some(5.0));
        assert_eq!(t[0].ttft_p99_ms, Some(9.9));
        assert_eq!((t[1].latency_p50_ms, t[1].latency_p99_ms), (7.0, 7.0));
        assert_eq!(t[1].ttft_p50_ms, None, "no first-token time recorded");
    }

    #[test]
    fn windows_parse_or_name_the_parameter() {
        assert_eq!(Window::parse(None).unwrap(), Window::Day);
        assert_eq!(Window::parse(Some("1h")).unwrap().bucket_ms(), 300_000);
        assert_eq!(Window::parse(Some("7d")).unwrap().span_ms(), 604_800_000);
        let e = Window::parse(Some("2h")).unwrap_err();
        assert_eq!(e.param(), Some("window"));
    }
}
