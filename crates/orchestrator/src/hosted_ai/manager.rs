//! The pool manager: for each hosted_ai model it picks a pool, subscribes,
//! waits for running pods, exposes the inference port, waits for the endpoint
//! to answer, and hands out a lease on an `openai` engine at that endpoint.
//! Requests that arrive meanwhile wait (bounded) on the one allocation in
//! progress. Lost pods are repaired or replaced; idle subscriptions are
//! released; shutdown releases everything.

use super::client::{AvailablePool, BreakerState, Client, HostedAiError, PANEL, SubscriptionRow};
use super::cluster::{ClusterConfig, ClusterView, EndpointRecord, PoolDirectory};
use super::meter::Meter;
use super::pool_label;
use crate::engine::openai::{OpenAiConfig, OpenAiEngine};
use crate::{HostedAiSettings, Tier};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex as AsyncMutex, Semaphore};

/// Counter of allocation attempts per pool and outcome.
pub const ALLOCATIONS: &str = "harpoon_hosted_ai_allocations_total";
/// Histogram of seconds from subscribe to an answering endpoint, per pool.
pub const ALLOCATION_SECONDS: &str = "harpoon_hosted_ai_allocation_seconds";
/// Gauge of subscriptions held.
pub const ACTIVE_SUBSCRIPTIONS: &str = "harpoon_hosted_ai_active_subscriptions";

/// Requests in a row that must fail, the endpoint not answering, before a
/// pod's service is exposed again (one dropped connection proves nothing).
pub const FAILURES_BEFORE_REPAIR: u32 = 3;

/// Longest wait, after an unsubscribe, for the row to go (metering runs until then).
const SETTLE_LIMIT: Duration = Duration::from_secs(120);

/// A ready subscription serving one model.
#[derive(Debug)]
pub struct Lease {
    /// Model served.
    pub model: String,
    /// Pool.
    pub pool_id: String,
    /// Subscription.
    pub subscription_id: String,
    /// vGPUs held.
    pub vgpus: u32,
    /// Estimated hourly cost of those vGPUs.
    pub hourly_cost: f64,
    /// OpenAI API root of the pod, ending in `/v1`.
    pub endpoint: String,
    /// Whether the subscription already existed (409) and was adopted.
    pub adopted: bool,
    service_id: Option<String>,
    engine: OpenAiEngine,
    created: Instant,
    last_used: Mutex<Instant>,
    accrued_until: Mutex<Instant>,
    in_flight: AtomicUsize,
    healthy: AtomicBool,
    /// Requests in a row that failed as if the pod were gone.
    failures: AtomicU32,
    /// Served through another replica's subscription (it owns the pool
    /// manager): never metered, released or repaired here.
    remote: bool,
}

impl Lease {
    /// The engine that talks to the pod.
    pub fn engine(&self) -> &OpenAiEngine {
        &self.engine
    }

    /// Records a request that the pod served: failures are counted in a row.
    pub fn succeeded(&self) {
        self.failures.store(0, Ordering::SeqCst);
    }

    /// Marks a request as running on this lease until the guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        InFlight(self.clone())
    }

    fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }
}

/// A request running on a lease.
#[derive(Debug)]
pub struct InFlight(Arc<Lease>);

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct Slot {
    lease: Option<Arc<Lease>>,
    state: &'static str,
    last_error: Option<(u64, HostedAiError)>,
    generation: u64,
    provisioning: Arc<AsyncMutex<()>>,
    waiters: Arc<Semaphore>,
}

/// One pool as last seen.
#[derive(Debug, Clone, Serialize)]
pub struct PoolView {
    /// Pool id.
    pub id: String,
    /// Name.
    pub name: String,
    /// GPU model.
    pub gpu_model: Option<String>,
    /// Sharing ratio; null when the panel does not say (its team-scope
    /// listing never does).
    pub sharing_ratio: Option<f64>,
    /// Free vGPU slots.
    pub free_vgpus: u32,
    /// Hourly price per vGPU.
    pub price_hourly: Option<f64>,
    /// Whether the overcommit settings allow it.
    pub allowed: bool,
    /// Circuit breaker.
    pub breaker: BreakerState,
}

/// One of our subscriptions.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionView {
    /// Model it serves.
    pub model: String,
    /// Pool.
    pub pool_id: String,
    /// Subscription id.
    pub subscription_id: String,
    /// vGPUs.
    pub vgpus: u32,
    /// `ready` or `unhealthy`.
    pub state: &'static str,
    /// Pod endpoint.
    pub endpoint: String,
    /// Whether the endpoint answered on its last use.
    pub endpoint_healthy: bool,
    /// Adopted after a 409.
    pub adopted: bool,
    /// Seconds held.
    pub age_secs: u64,
    /// Seconds since last use.
    pub idle_secs: u64,
    /// Requests running on it.
    pub in_flight: usize,
    /// Estimated hourly cost.
    pub hourly_cost: f64,
}

/// A model's allocation state.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSlotView {
    /// Model.
    pub model: String,
    /// `idle`, `provisioning`, `ready`, `failed`, `released`.
    pub state: &'static str,
    /// Last allocation error.
    pub last_error: Option<String>,
}

/// Billing as the panel reports it, next to our estimate.
#[derive(Debug, Clone, Serialize)]
pub struct BillingView {
    /// Panel total for today (UTC).
    pub billed_today: Option<f64>,
    /// Currency.
    pub currency: Option<String>,
    /// Our estimate since start.
    pub estimated_since_start: f64,
    /// Why the panel's figure is missing.
    pub error: Option<String>,
}

/// What `GET /v2/pools`, `/health?detailed=true` and MCP show.
#[derive(Debug, Clone, Serialize)]
pub struct PoolsSnapshot {
    /// Team managed.
    pub team_id: String,
    /// Overcommit allowed.
    pub overcommit: bool,
    /// Highest sharing ratio allowed with overcommit.
    pub max_sharing_ratio: f32,
    /// Pools as last listed.
    pub pools: Vec<PoolView>,
    /// Our subscriptions.
    pub subscriptions: Vec<SubscriptionView>,
    /// Models served through hosted·ai.
    pub models: Vec<ModelSlotView>,
    /// Panel breaker.
    pub panel_breaker: BreakerState,
    /// Billing reconciliation, after a refresh.
    pub billing: Option<BillingView>,
    /// Why the last pool listing failed.
    pub last_refresh_error: Option<String>,
    /// Shutting down: no new subscriptions.
    pub shutting_down: bool,
    /// This replica's part in a cluster, when replicas share the team's subscriptions.
    pub cluster: Option<ClusterView>,
}

/// The pool manager.
#[derive(Debug)]
pub struct PoolManager {
    client: Client,
    settings: HostedAiSettings,
    slots: Mutex<BTreeMap<String, Slot>>,
    pools: Mutex<Vec<AvailablePool>>,
    billing: Mutex<Option<BillingView>>,
    refresh_error: Mutex<Option<String>>,
    meter: Meter,
    shutting_down: AtomicBool,
    generations: AtomicU64,
    /// Pools we sent a subscribe to: on shutdown, rows of ours there are released
    /// even if the answer was lost on the way back.
    touched: Mutex<Vec<String>>,
    /// Per model: time allowed between bytes of a pod's answer.
    read_timeouts: Mutex<BTreeMap<String, Duration>>,
    /// Set when replicas share the team's subscriptions (PostgreSQL).
    cluster: OnceLock<Cluster>,
}

/// This replica's part in a cluster sharing the team's subscriptions.
#[derive(Debug)]
struct Cluster {
    directory: Arc<dyn PoolDirectory>,
    config: ClusterConfig,
    /// Holds the owner lease (and it has not lapsed by `owner_until`).
    owner: AtomicBool,
    /// When the lease we hold lapses if not renewed, by our own clock.
    owner_until: Mutex<Instant>,
    /// Models whose requests the owner is answering now.
    answering: Mutex<BTreeSet<String>>,
    /// Usage metered since the last flush to the directory: model, pool, vGPU-seconds, cost.
    usage: Mutex<Vec<(String, String, f64, f64)>>,
    /// When this replica last told the directory which endpoints it used.
    touched_at: Mutex<Instant>,
}

/// How often a replica waiting for the owner looks for the endpoint, and
/// how often the owner looks for requests.
const DIRECTORY_POLL: Duration = Duration::from_millis(200);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PoolManager {
    /// A manager for the settings' team; `None`-like errors when unconfigured.
    pub fn new(settings: &HostedAiSettings) -> Result<Arc<Self>, HostedAiError> {
        let (Some(base_url), Some(api_key)) = (&settings.base_url, &settings.api_key) else {
            return Err(HostedAiError::Unavailable(
                "hosted_ai.base_url and hosted_ai.api_key are not set".into(),
            ));
        };
        let Some(team_id) = settings.team_id.clone().filter(|t| !t.trim().is_empty()) else {
            return Err(HostedAiError::Unavailable(
                "hosted_ai.team_id is not set".into(),
            ));
        };
        let client = Client::new(super::client::ClientConfig {
            base_url: base_url.clone(),
            api_key: api_key.clone(),
            auth_header: settings.auth_header,
            team_id,
            call_timeout: Duration::from_secs(settings.call_timeout_secs),
            max_attempts: settings.max_attempts,
            breaker_failures: settings.breaker_failures,
            breaker_cooldown: Duration::from_secs(settings.breaker_cooldown_secs),
        })?;
        Ok(Arc::new(Self {
            client,
            settings: settings.clone(),
            slots: Mutex::new(BTreeMap::new()),
            pools: Mutex::new(Vec::new()),
            billing: Mutex::new(None),
            refresh_error: Mutex::new(None),
            meter: Meter::default(),
            shutting_down: AtomicBool::new(false),
            generations: AtomicU64::new(1),
            touched: Mutex::new(Vec::new()),
            read_timeouts: Mutex::new(BTreeMap::new()),
            cluster: OnceLock::new(),
        }))
    }

    /// Starts the upkeep task (idle release and cost accrual); it ends with the manager.
    pub fn start_upkeep(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let period = Duration::from_millis(self.settings.poll_interval_ms.clamp(100, 1_000));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let Some(manager) = weak.upgrade() else {
                    return;
                };
                manager.upkeep().await;
            }
        });
    }

    /// Sets the time allowed between bytes of `model`'s answers (its `read_timeout_secs`).
    pub fn set_read_timeout(&self, model: &str, timeout: Duration) {
        lock(&self.read_timeouts).insert(model.to_owned(), timeout);
    }

    /// The API client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The usage meter.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// The settings in force.
    pub fn settings(&self) -> &HostedAiSettings {
        &self.settings
    }

    fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_secs(self.settings.subscribe_timeout_secs)
    }

    fn poll(&self) -> Duration {
        Duration::from_millis(self.settings.poll_interval_ms)
    }

    /// A ready lease for `model`, allocating one if needed. Concurrent callers
    /// share one allocation; at most `max_waiters` wait for it.
    pub async fn acquire(
        self: &Arc<Self>,
        model: &str,
        tier: Option<Tier>,
    ) -> Result<Arc<Lease>, HostedAiError> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(HostedAiError::Unavailable(
                "the service is shutting down".into(),
            ));
        }
        let vgpus = self.settings.vgpus.for_tier(tier);
        if let Some(cluster) = self.cluster.get()
            && !self.owns(cluster)
        {
            return self.acquire_remote(cluster, model, vgpus).await;
        }
        self.acquire_owned(model, vgpus).await
    }

    async fn acquire_owned(
        self: &Arc<Self>,
        model: &str,
        vgpus: u32,
    ) -> Result<Arc<Lease>, HostedAiError> {
        let (provisioning, waiters, seen) = {
            let mut slots = lock(&self.slots);
            let slot = self.slot(&mut slots, model);
            if let Some(lease) = slot
                .lease
                .as_ref()
                .filter(|l| l.healthy.load(Ordering::SeqCst))
            {
                return Ok(lease.clone());
            }
            (
                slot.provisioning.clone(),
                slot.waiters.clone(),
                slot.generation,
            )
        };
        let Ok(_permit) = waiters.try_acquire() else {
            return Err(HostedAiError::Busy(self.settings.max_waiters));
        };
        let deadline = self.deadline();
        let limit = Duration::from_secs(self.settings.subscribe_timeout_secs);
        // The caller waits at most `request_wait_secs`; the allocation itself
        // may take until `deadline`, in the background.
        let wait = Duration::from_secs(self.settings.request_wait_secs);
        let waited_until = if wait >= limit {
            // The allocation's own verdict (a timeout) comes first.
            deadline + Duration::from_secs(1)
        } else {
            Instant::now() + wait
        };
        let guard = tokio::time::timeout_at(waited_until.into(), provisioning.lock_owned())
            .await
            .map_err(|_| HostedAiError::StillAllocating(wait))?;
        {
            let slots = lock(&self.slots);
            if let Some(slot) = slots.get(model) {
                if let Some(lease) = slot
                    .lease
                    .as_ref()
                    .filter(|l| l.healthy.load(Ordering::SeqCst))
                {
                    return Ok(lease.clone());
                }
                // An allocation we waited on has just failed: share its verdict
                // instead of starting another one at once.
                if let Some((generation, e)) = &slot.last_error
                    && *generation > seen
                {
                    return Err(e.clone());
                }
            }
        }
        // Spawned so a caller that goes away cannot cancel it half-way and
        // leak a subscription; it holds the slot's lock until it is done.
        let manager = self.clone();
        let name = model.to_owned();
        let task = tokio::spawn(async move {
            let _guard = guard;
            manager.set_state(&name, "provisioning");
            let outcome = manager.provision(&name, vgpus, deadline).await;
            let generation = manager.generations.fetch_add(1, Ordering::SeqCst);
            if let Some(slot) = lock(&manager.slots).get_mut(&name) {
                slot.generation = generation;
                match &outcome {
                    Ok(lease) => {
                        slot.lease = Some(lease.clone());
                        slot.state = "ready";
                        slot.last_error = None;
                    }
                    Err(e) => {
                        slot.state = "failed";
                        slot.last_error = Some((generation, e.clone()));
                    }
                }
            }
            manager.publish_count();
            if let Ok(lease) = &outcome {
                manager.announce(lease).await;
            }
            outcome
        });
        match tokio::time::timeout_at(waited_until.into(), task).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(join)) => Err(HostedAiError::Unavailable(format!(
                "allocation task failed: {join}"
            ))),
            // The task goes on (dropping its handle does not cancel it).
            Err(_) => Err(HostedAiError::StillAllocating(wait)),
        }
    }

    fn set_state(&self, model: &str, state: &'static str) {
        if let Some(slot) = lock(&self.slots).get_mut(model) {
            slot.state = state;
        }
    }

    fn publish_count(&self) {
        let n = lock(&self.slots)
            .values()
            .filter(|s| s.lease.is_some())
            .count();
        metrics::gauge!(ACTIVE_SUBSCRIPTIONS).set(n as f64);
    }

    /// Pools allowed by the settings, cheapest first, each with its hourly cost for `vgpus`.
    async fn candidates(&self, vgpus: u32) -> Result<Vec<(AvailablePool, f64)>, HostedAiError> {
        let listed = self.client.available_pools().await?;
        *lock(&self.pools) = listed.clone();
        let wanted = self.settings.pool.ids();
        // A pool we already hold (say, from before a restart) shows no free
        // slot for us, yet subscribing there ends in 409 and adoption.
        let held: Vec<String> = match self.client.subscriptions().await {
            Ok(rows) => rows
                .into_iter()
                .filter(|r| !r.is_ending())
                .map(|r| r.pool_id)
                .collect(),
            Err(_) => Vec::new(),
        };
        let mut out = Vec::new();
        for pool in listed {
            if let Some(ids) = wanted
                && !ids.contains(&pool.id)
            {
                continue;
            }
            if !self.ratio_allowed(&pool)
                || (pool.available_vgpus < vgpus && !held.contains(&pool.id))
            {
                continue;
            }
            let quoted = match self.client.calculate(&pool.id, vgpus).await {
                Ok(q) => q.hourly_cost.or(q.total_cost),
                Err(e) => {
                    tracing::debug!(pool = %pool.id, error = %e, "no quote; using the listed price");
                    None
                }
            };
            let hourly = quoted.or(pool.pricing_hourly.map(|p| p * f64::from(vgpus)));
            let Some(hourly) = hourly else { continue };
            if self
                .settings
                .max_hourly_cost
                .is_some_and(|cap| hourly > cap)
            {
                continue;
            }
            out.push((pool, hourly));
        }
        // Configured order breaks ties; otherwise cheapest, then lowest ratio.
        out.sort_by(|(a, ca), (b, cb)| {
            ca.total_cmp(cb)
                .then(
                    a.sharing_ratio
                        .unwrap_or(1.0)
                        .total_cmp(&b.sharing_ratio.unwrap_or(1.0)),
                )
                .then_with(|| match wanted {
                    Some(ids) => ids
                        .iter()
                        .position(|i| *i == a.id)
                        .cmp(&ids.iter().position(|i| *i == b.id)),
                    None => std::cmp::Ordering::Equal,
                })
        });
        Ok(out)
    }

    fn ratio_allowed(&self, pool: &AvailablePool) -> bool {
        let limit = if self.settings.overcommit {
            f64::from(self.settings.max_sharing_ratio)
        } else {
            1.0
        };
        match pool.sharing_ratio {
            Some(ratio) => ratio <= limit + 1e-9,
            // The team-scope listing carries no ratio (only the admin API
            // knows it): with overcommit any pool may serve; without it, only
            // the pools `hosted_ai.pool` names, which the operator vouches for.
            None => {
                self.settings.overcommit
                    || self
                        .settings
                        .pool
                        .ids()
                        .is_some_and(|ids| ids.contains(&pool.id))
            }
        }
    }

    async fn provision(
        self: &Arc<Self>,
        model: &str,
        vgpus: u32,
        deadline: Instant,
    ) -> Result<Arc<Lease>, HostedAiError> {
        let mut backoff = Duration::from_millis(250);
        let mut last: Option<HostedAiError>;
        loop {
            if self.shutting_down.load(Ordering::SeqCst) {
                return Err(HostedAiError::Unavailable(
                    "the service is shutting down".into(),
                ));
            }
            match self.sweep(model, vgpus, deadline).await {
                Ok(lease) => return Ok(lease),
                Err(
                    e @ (HostedAiError::Timeout(_)
                    | HostedAiError::Unauthorized(_)
                    | HostedAiError::Forbidden(_)
                    | HostedAiError::Unavailable(_)),
                ) => return Err(e),
                Err(e) => last = Some(e),
            }
            // Nothing free anywhere: back off and look again while time remains.
            let now = Instant::now();
            if now + backoff >= deadline {
                return Err(
                    last.unwrap_or_else(|| HostedAiError::NoCapacity("no pool is allowed".into()))
                );
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }

    /// One pass over the candidate pools.
    async fn sweep(
        self: &Arc<Self>,
        model: &str,
        vgpus: u32,
        deadline: Instant,
    ) -> Result<Arc<Lease>, HostedAiError> {
        // One subscription per team per pool: a pool serving another model is
        // not ours to adopt (releasing either would break the other).
        let taken: Vec<(String, String)> = lock(&self.slots)
            .iter()
            .filter(|(name, _)| name.as_str() != model)
            .filter_map(|(name, s)| s.lease.as_ref().map(|l| (l.pool_id.clone(), name.clone())))
            .collect();
        let (held_by_us, candidates): (Vec<_>, Vec<_>) = self
            .candidates(vgpus)
            .await?
            .into_iter()
            .partition(|(p, _)| taken.iter().any(|(pool, _)| *pool == p.id));
        if candidates.is_empty() && !held_by_us.is_empty() {
            // Our own models hold the room there is: say so, not "no pool".
            let held: Vec<String> = held_by_us
                .iter()
                .filter_map(|(p, _)| {
                    taken
                        .iter()
                        .find(|(pool, _)| *pool == p.id)
                        .map(|(pool, other)| format!("pool {pool} serves our model {other}"))
                })
                .collect();
            return Err(HostedAiError::NoCapacity(format!(
                "every allowed pool with room is held by our other hosted_ai models ({}); \
                 a team holds one subscription per pool, so {model} waits until one of them is \
                 released (after {} s idle)",
                held.join(", "),
                self.settings.idle_release_secs
            )));
        }
        if candidates.is_empty() {
            return Err(HostedAiError::NoCapacity(format!(
                "no pool with {vgpus} free vGPU(s) within the sharing-ratio (overcommit {}, max {}) and cost limits",
                self.settings.overcommit, self.settings.max_sharing_ratio
            )));
        }
        let mut reasons = Vec::new();
        for (pool, hourly) in candidates {
            let label = pool_label(&pool.id);
            let started = Instant::now();
            {
                let mut touched = lock(&self.touched);
                if !touched.contains(&pool.id) {
                    touched.push(pool.id.clone());
                }
            }
            let subscribed = self
                .client
                .subscribe(
                    &pool.id,
                    vgpus,
                    self.settings.instance_type_id.as_deref(),
                    self.settings.image_uuid.as_deref(),
                )
                .await;
            // The panel bills from here (the subscription exists once the call returns).
            let accepted = Instant::now();
            let (subscription, adopted) = match subscribed {
                Ok(Some(id)) => (id, false),
                Ok(None) => match self.ours_on(&pool.id).await? {
                    Some(row) => (row.id, false),
                    None => {
                        reasons.push(format!("pool {}: subscribe answered no id", pool.id));
                        continue;
                    }
                },
                Err(HostedAiError::AlreadySubscribed { .. }) => match self.ours_on(&pool.id).await?
                {
                    Some(row) if !row.is_ending() => {
                        metrics::counter!(ALLOCATIONS, "pool" => label.clone(), "outcome" => "adopted").increment(1);
                        (row.id, true)
                    }
                    _ => {
                        reasons.push(format!(
                            "pool {}: our previous subscription is still being released",
                            pool.id
                        ));
                        continue;
                    }
                },
                Err(e @ HostedAiError::InsufficientResources { .. }) => {
                    metrics::counter!(ALLOCATIONS, "pool" => label, "outcome" => "insufficient")
                        .increment(1);
                    reasons.push(e.to_string());
                    continue;
                }
                Err(e @ (HostedAiError::Unauthorized(_) | HostedAiError::Forbidden(_))) => {
                    return Err(e);
                }
                // The answer may have been lost after the panel acted: look before moving on.
                Err(e) if e.is_transient() => match self.ours_on(&pool.id).await {
                    Ok(Some(row)) if !row.is_ending() => (row.id, false),
                    _ => {
                        metrics::counter!(ALLOCATIONS, "pool" => label, "outcome" => "error")
                            .increment(1);
                        reasons.push(format!("pool {}: {e}", pool.id));
                        continue;
                    }
                },
                Err(e) => {
                    metrics::counter!(ALLOCATIONS, "pool" => label, "outcome" => "error")
                        .increment(1);
                    reasons.push(format!("pool {}: {e}", pool.id));
                    continue;
                }
            };
            match self
                .bring_up(
                    model,
                    &pool.id,
                    &subscription,
                    vgpus,
                    hourly,
                    adopted,
                    accepted,
                    deadline,
                )
                .await
            {
                Ok(lease) => {
                    if self.shutting_down.load(Ordering::SeqCst) {
                        let until =
                            Instant::now() + Duration::from_secs(self.settings.call_timeout_secs);
                        self.release_within(&lease, until).await;
                        return Err(HostedAiError::Unavailable(
                            "the service is shutting down".into(),
                        ));
                    }
                    metrics::counter!(ALLOCATIONS, "pool" => label.clone(), "outcome" => "ok")
                        .increment(1);
                    metrics::histogram!(ALLOCATION_SECONDS, "pool" => label)
                        .record(started.elapsed().as_secs_f64());
                    tracing::info!(model, pool = %pool.id, subscription = %subscription, endpoint = %lease.endpoint, adopted, "hosted·ai capacity ready");
                    return Ok(lease);
                }
                Err(e) => {
                    metrics::counter!(ALLOCATIONS, "pool" => label, "outcome" => "error")
                        .increment(1);
                    tracing::warn!(model, pool = %pool.id, subscription = %subscription, error = %e, "subscription did not come up; releasing it");
                    self.unsubscribe_quietly(&pool.id, &subscription).await;
                    // Billed all the same, until the row is gone: metered in
                    // the background, so the next allocation need not wait.
                    let manager = self.clone();
                    let (model, subscription) = (model.to_owned(), subscription.clone());
                    let pool_id = pool.id.clone();
                    tokio::spawn(async move {
                        let gone = manager
                            .settle(&subscription, Instant::now() + SETTLE_LIMIT)
                            .await;
                        let secs = gone.duration_since(accepted).as_secs_f64();
                        manager.book(
                            &model,
                            &pool_id,
                            secs * f64::from(vgpus),
                            hourly * secs / 3_600.0,
                        );
                    });
                    if matches!(e, HostedAiError::Timeout(_)) {
                        return Err(e);
                    }
                    reasons.push(format!("pool {}: {e}", pool.id));
                }
            }
        }
        Err(HostedAiError::NoCapacity(reasons.join("; ")))
    }

    async fn ours_on(&self, pool: &str) -> Result<Option<SubscriptionRow>, HostedAiError> {
        Ok(self
            .client
            .subscriptions()
            .await?
            .into_iter()
            .find(|r| r.pool_id == pool))
    }

    async fn row(&self, subscription: &str) -> Result<Option<SubscriptionRow>, HostedAiError> {
        Ok(self
            .client
            .subscriptions()
            .await?
            .into_iter()
            .find(|r| r.id == subscription))
    }

    #[allow(clippy::too_many_arguments)]
    async fn bring_up(
        &self,
        model: &str,
        pool: &str,
        subscription: &str,
        vgpus: u32,
        hourly: f64,
        adopted: bool,
        billed_since: Instant,
        deadline: Instant,
    ) -> Result<Arc<Lease>, HostedAiError> {
        let limit = Duration::from_secs(self.settings.subscribe_timeout_secs);
        // 1. Subscribed, with every pod running.
        let row = loop {
            match self.row(subscription).await {
                Ok(Some(row)) if row.is_ready() => break row,
                Ok(Some(row)) if row.is_ending() => {
                    return Err(HostedAiError::NoCapacity(format!(
                        "subscription {subscription} is being released"
                    )));
                }
                Ok(None) => {
                    return Err(HostedAiError::NotFound(format!(
                        "subscription {subscription} disappeared"
                    )));
                }
                Ok(Some(_)) => {}
                Err(e) if e.is_transient() || matches!(e, HostedAiError::CircuitOpen { .. }) => {}
                Err(e) => return Err(e),
            }
            if Instant::now() + self.poll() >= deadline {
                return Err(HostedAiError::Timeout(limit));
            }
            tokio::time::sleep(self.poll()).await;
        };
        let pod = row
            .pods
            .first()
            .map(|p| p.pod_name.clone())
            .unwrap_or_default();
        // 2. The inference port, exposed.
        let service_name: String = format!("harpoon-{model}-{subscription}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let exposed = self
            .client
            .expose_service(
                &pod,
                subscription,
                self.settings.inference_port,
                &service_name,
            )
            .await?;
        let service_id = exposed.id.clone();
        let mut endpoint = exposed.endpoint();
        while endpoint.is_none() {
            if Instant::now() + self.poll() >= deadline {
                return Err(HostedAiError::Timeout(limit));
            }
            tokio::time::sleep(self.poll()).await;
            match self
                .client
                .service_status(subscription, &service_name)
                .await
            {
                Ok(state) => endpoint = state.endpoint(),
                Err(e) if e.is_transient() || matches!(e, HostedAiError::CircuitOpen { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let base = format!("{}/v1", endpoint.unwrap_or_default());
        // 3. The endpoint answers.
        let probe = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| HostedAiError::Unavailable(format!("HTTP client: {e}")))?;
        loop {
            match probe.get(format!("{base}/models")).send().await {
                Ok(r) if r.status().is_success() => break,
                _ => {}
            }
            if Instant::now() + self.poll() >= deadline {
                return Err(HostedAiError::Timeout(limit));
            }
            tokio::time::sleep(self.poll()).await;
        }
        let record = EndpointRecord {
            model: model.to_owned(),
            pool_id: pool.to_owned(),
            subscription_id: subscription.to_owned(),
            service_id,
            vgpus,
            hourly_cost: hourly,
            endpoint: base,
            idle_ms: 0,
        };
        self.lease_at(&record, adopted, billed_since, false)
    }

    /// A lease on `record`'s endpoint (no calls): billed from `billed_since`,
    /// `remote` when another replica owns the subscription.
    fn lease_at(
        &self,
        record: &EndpointRecord,
        adopted: bool,
        billed_since: Instant,
        remote: bool,
    ) -> Result<Arc<Lease>, HostedAiError> {
        let engine = OpenAiEngine::new(OpenAiConfig {
            base_url: record.endpoint.clone(),
            api_key: None,
            served_model: None,
            connect_timeout: Duration::from_secs(5),
            read_timeout: lock(&self.read_timeouts)
                .get(&record.model)
                .copied()
                .unwrap_or(Duration::from_secs(120)),
            // The hosted_ai engine decides about retries: a lost pod needs a new lease, not the same URL.
            max_attempts: 1,
        })
        .map_err(|e| HostedAiError::Unavailable(e.to_string()))?;
        let now = Instant::now();
        let idle = Duration::from_millis(record.idle_ms);
        Ok(Arc::new(Lease {
            model: record.model.clone(),
            pool_id: record.pool_id.clone(),
            subscription_id: record.subscription_id.clone(),
            vgpus: record.vgpus,
            hourly_cost: record.hourly_cost,
            endpoint: record.endpoint.clone(),
            adopted,
            service_id: record.service_id.clone(),
            engine,
            created: billed_since,
            last_used: Mutex::new(now.checked_sub(idle).unwrap_or(now)),
            accrued_until: Mutex::new(billed_since),
            in_flight: AtomicUsize::new(0),
            healthy: AtomicBool::new(true),
            failures: AtomicU32::new(0),
            remote,
        }))
    }

    /// Called when a request on `lease` failed in a way that may mean its
    /// pod is gone (a refused or dropped connection, a gateway status). One
    /// failure is no proof: a pod that still answers, and a subscription the
    /// panel still shows running, keep serving (a repair would cut every
    /// other request on the pod's node port). Only after
    /// [`FAILURES_BEFORE_REPAIR`] failures in a row across requests, with the
    /// endpoint not answering, is the service exposed again, or, when the
    /// panel says the pod is gone, the subscription replaced.
    /// A pod the panel says is gone is dealt with before this returns (so a
    /// retry gets new capacity); a repair runs in the background.
    pub async fn report_failure(self: &Arc<Self>, lease: &Arc<Lease>) {
        let failures = lease.failures.fetch_add(1, Ordering::SeqCst) + 1;
        let row = self.row(&lease.subscription_id).await;
        let pod_gone = matches!(row, Ok(None)) || matches!(row, Ok(Some(ref r)) if !r.is_ready());
        if lease.remote {
            // Not ours to repair: forget it here and tell the owner.
            if pod_gone || failures >= FAILURES_BEFORE_REPAIR {
                self.forget_remote(lease).await;
            }
            return;
        }
        if pod_gone {
            self.recover(lease).await;
        } else if failures >= FAILURES_BEFORE_REPAIR {
            let manager = self.clone();
            let lease = lease.clone();
            tokio::spawn(async move { manager.recover(&lease).await });
        }
    }

    /// Repairs or replaces `lease`: when the panel still shows the subscription
    /// running and its endpoint does not answer, the service is exposed again;
    /// when the endpoint answers, nothing is done; when the subscription is
    /// gone, it is released so the next acquire replaces it. Holds the
    /// model's allocation lock, so no allocation races the repair.
    pub async fn recover(self: &Arc<Self>, lease: &Arc<Lease>) {
        let Some(provisioning) = lock(&self.slots)
            .get(&lease.model)
            .map(|s| s.provisioning.clone())
        else {
            return;
        };
        let _allocating = provisioning.lock_owned().await;
        if !lease.healthy.swap(false, Ordering::SeqCst) {
            return; // already recovered, or released
        }
        let row = self.row(&lease.subscription_id).await;
        let running = matches!(row, Ok(Some(ref r)) if r.is_ready());
        if running && self.answers(&lease.endpoint).await {
            // The failures were the path's, not the pod's.
            lease.failures.store(0, Ordering::SeqCst);
            lease.healthy.store(true, Ordering::SeqCst);
            return;
        }
        {
            let mut slots = lock(&self.slots);
            if let Some(slot) = slots.get_mut(&lease.model)
                && slot.lease.as_ref().is_some_and(|l| Arc::ptr_eq(l, lease))
            {
                slot.lease = None;
                slot.state = "idle";
            }
        }
        self.publish_count();
        // A panel that cannot say (an error) is no proof the pod is gone: repair.
        if running || row.is_err() {
            let billed_since = *lock(&lease.accrued_until);
            let deadline = self
                .deadline()
                .min(Instant::now() + Duration::from_secs(30));
            if let Some(id) = &lease.service_id {
                let _ = self.client.delete_service(id).await;
            }
            match self
                .bring_up(
                    &lease.model,
                    &lease.pool_id,
                    &lease.subscription_id,
                    lease.vgpus,
                    lease.hourly_cost,
                    lease.adopted,
                    // The subscription is the same: billing goes on from where this lease's stopped.
                    billed_since,
                    deadline,
                )
                .await
            {
                Ok(repaired) => {
                    tracing::info!(model = %lease.model, subscription = %lease.subscription_id, "repaired the pod's service");
                    let installed = {
                        let mut slots = lock(&self.slots);
                        match slots.get_mut(&lease.model) {
                            Some(slot)
                                if slot.lease.is_none()
                                    && !self.shutting_down.load(Ordering::SeqCst) =>
                            {
                                slot.lease = Some(repaired.clone());
                                slot.state = "ready";
                                true
                            }
                            _ => false,
                        }
                    };
                    self.publish_count();
                    if installed {
                        self.announce(&repaired).await;
                    } else {
                        self.release_later(repaired);
                    }
                    return;
                }
                Err(e) if running => {
                    // The subscription is ours and alive: keep it for the next
                    // acquire (a 409 adopts it) rather than pay for a new one.
                    tracing::warn!(model = %lease.model, subscription = %lease.subscription_id, error = %e, "could not expose the pod's service again");
                    return;
                }
                Err(_) => {}
            }
        }
        tracing::warn!(model = %lease.model, subscription = %lease.subscription_id, "pod lost; replacing the subscription");
        self.release_later(lease.clone());
    }

    /// Releases `lease` in the background (its metering waits for the row to go).
    fn release_later(self: &Arc<Self>, lease: Arc<Lease>) {
        let manager = self.clone();
        tokio::spawn(async move { manager.release(&lease).await });
    }

    /// Whether an OpenAI-compatible endpoint answers `GET /models`.
    async fn answers(&self, endpoint: &str) -> bool {
        let Ok(probe) = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
        else {
            return false;
        };
        probe
            .get(format!("{endpoint}/models"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    async fn unsubscribe_quietly(&self, pool: &str, subscription: &str) {
        if let Err(e) = self.client.unsubscribe(pool, subscription).await
            && !matches!(e, HostedAiError::NotFound(_))
        {
            tracing::warn!(pool, subscription, error = %e, "unsubscribe failed");
        }
    }

    async fn release(&self, lease: &Arc<Lease>) {
        self.release_within(lease, Instant::now() + SETTLE_LIMIT)
            .await;
    }

    /// Releases `lease` and meters it until its row is gone (or `until`),
    /// as the panel bills.
    async fn release_within(&self, lease: &Arc<Lease>, until: Instant) {
        self.accrue(lease);
        if let Some(id) = &lease.service_id {
            let _ = self.client.delete_service(id).await;
        }
        self.unsubscribe_quietly(&lease.pool_id, &lease.subscription_id)
            .await;
        if let Some(cluster) = self.cluster.get()
            && let Err(e) = cluster
                .directory
                .withdraw(&lease.model, &lease.subscription_id)
                .await
        {
            tracing::warn!(model = %lease.model, error = %e, "could not withdraw a released endpoint");
        }
        self.settle(&lease.subscription_id, until).await;
        self.accrue(lease);
        tracing::info!(model = %lease.model, pool = %lease.pool_id, subscription = %lease.subscription_id, "hosted·ai subscription released");
    }

    /// Waits until `subscription`'s row is gone from the panel (or `until`),
    /// returning when that was seen: the panel bills until then.
    async fn settle(&self, subscription: &str, until: Instant) -> Instant {
        loop {
            if let Ok(None) = self.row(subscription).await {
                return Instant::now();
            }
            if Instant::now() + self.poll() >= until {
                return Instant::now();
            }
            tokio::time::sleep(self.poll()).await;
        }
    }

    fn accrue(&self, lease: &Lease) {
        let mut until = lock(&lease.accrued_until);
        let now = Instant::now();
        let secs = now.duration_since(*until).as_secs_f64();
        *until = now;
        drop(until);
        let vgpu_seconds = secs * f64::from(lease.vgpus);
        self.book(
            &lease.model,
            &lease.pool_id,
            vgpu_seconds,
            lease.hourly_cost * secs / 3_600.0,
        );
    }

    /// Meters held vGPU-seconds here and, in a cluster, in the shared usage.
    fn book(&self, model: &str, pool: &str, vgpu_seconds: f64, cost: f64) {
        self.meter.accrue(model, pool, vgpu_seconds, cost);
        if let Some(cluster) = self.cluster.get()
            && vgpu_seconds > 0.0
        {
            lock(&cluster.usage).push((model.to_owned(), pool.to_owned(), vgpu_seconds, cost));
        }
    }

    async fn upkeep(self: &Arc<Self>) {
        // Idle release is the owner's alone: a lease here may serve other replicas.
        if let Some(cluster) = self.cluster.get()
            && !self.owns(cluster)
        {
            return;
        }
        let idle_limit = Duration::from_secs(self.settings.idle_release_secs);
        let mut to_release = Vec::new();
        {
            let mut slots = lock(&self.slots);
            for slot in slots.values_mut() {
                let Some(lease) = slot.lease.clone().filter(|l| !l.remote) else {
                    continue;
                };
                self.accrue(&lease);
                if lease.in_flight.load(Ordering::SeqCst) == 0 && lease.idle_for() >= idle_limit {
                    slot.lease = None;
                    slot.state = "released";
                    lease.healthy.store(false, Ordering::SeqCst);
                    to_release.push(lease);
                }
            }
        }
        for lease in to_release {
            tracing::info!(model = %lease.model, idle_secs = lease.idle_for().as_secs(), "releasing an idle subscription");
            // Metering waits for the row to go; upkeep goes on meanwhile.
            self.release_later(lease);
        }
        self.publish_count();
    }

    /// Releases every subscription and refuses new ones; waits (bounded) for
    /// allocations in progress so none is left behind. Takes at most
    /// `2 × call_timeout_secs`, what the service allows it.
    pub async fn shutdown(&self) {
        let deadline = Instant::now() + Duration::from_secs(self.settings.call_timeout_secs * 2);
        self.shutting_down.store(true, Ordering::SeqCst);
        if let Some(cluster) = self.cluster.get()
            && !self.last_one_out(cluster).await
        {
            return;
        }
        let locks: Vec<Arc<AsyncMutex<()>>> = lock(&self.slots)
            .values()
            .map(|s| s.provisioning.clone())
            .collect();
        let wait = Duration::from_secs(self.settings.call_timeout_secs.min(30));
        for l in locks {
            let until = (Instant::now() + wait).min(deadline);
            let _ = tokio::time::timeout_at(until.into(), l.lock()).await;
        }
        let leases: Vec<Arc<Lease>> = {
            let mut slots = lock(&self.slots);
            slots
                .values_mut()
                .filter_map(|s| {
                    s.state = "released";
                    s.lease.take().filter(|l| !l.remote)
                })
                .collect()
        };
        self.client.close_breakers();
        let releases = leases.iter().map(|l| self.release_within(l, deadline));
        futures_util::future::join_all(releases).await;
        self.sweep_orphans(deadline).await;
        self.publish_count();
    }

    /// Releases every live subscription of ours on a pool we subscribed to:
    /// those whose subscribe answer never reached us, and those whose release
    /// just failed. The listing is retried (a 429 or an open breaker is no
    /// reason to leave a paid GPU running) until `deadline`.
    async fn sweep_orphans(&self, deadline: Instant) {
        let touched = lock(&self.touched).clone();
        if touched.is_empty() {
            return;
        }
        let mut backoff = Duration::from_millis(200);
        let rows = loop {
            self.client.close_breakers();
            match self.client.subscriptions().await {
                Ok(rows) => break rows,
                Err(e) if Instant::now() + backoff < deadline => {
                    tracing::debug!(error = %e, "listing subscriptions at shutdown failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    tracing::warn!(error = %e, pools = ?touched, "could not list subscriptions at shutdown; some may still be running");
                    return;
                }
            }
        };
        for row in rows {
            if touched.contains(&row.pool_id) && !row.is_ending() {
                tracing::info!(pool = %row.pool_id, subscription = %row.id, "releasing a subscription left running");
                self.client.close_breakers();
                self.unsubscribe_quietly(&row.pool_id, &row.id).await;
            }
        }
    }

    /// Lists pools again and reconciles billing with the panel (best effort;
    /// failures are reported in the snapshot).
    pub async fn refresh(&self) {
        match self.client.available_pools().await {
            Ok(pools) => {
                *lock(&self.pools) = pools;
                *lock(&self.refresh_error) = None;
            }
            Err(e) => *lock(&self.refresh_error) = Some(e.to_string()),
        }
        let today = today_utc();
        let view = match self
            .client
            .billing_summary(&format!("{today}T00:00"), &format!("{today}T23:59"))
            .await
        {
            Ok(b) => BillingView {
                billed_today: Some(b.total_cost),
                currency: b.currency,
                estimated_since_start: self.meter.estimated_total(),
                error: None,
            },
            Err(e) => BillingView {
                billed_today: None,
                currency: None,
                estimated_since_start: self.meter.estimated_total(),
                error: Some(e.to_string()),
            },
        };
        *lock(&self.billing) = Some(view);
    }

    /// The manager's state as last seen (no calls).
    pub fn snapshot(&self) -> PoolsSnapshot {
        let pools = lock(&self.pools)
            .iter()
            .map(|p| PoolView {
                id: p.id.clone(),
                name: p.pool_name.clone(),
                gpu_model: p.gpu_model_type.clone(),
                sharing_ratio: p.sharing_ratio,
                free_vgpus: p.available_vgpus,
                price_hourly: p.pricing_hourly,
                allowed: self.ratio_allowed(p),
                breaker: self.client.breaker_state(&p.id),
            })
            .collect();
        let slots = lock(&self.slots);
        let subscriptions = slots
            .values()
            .filter_map(|s| s.lease.as_ref())
            .map(|l| {
                let healthy = l.healthy.load(Ordering::SeqCst);
                SubscriptionView {
                    model: l.model.clone(),
                    pool_id: l.pool_id.clone(),
                    subscription_id: l.subscription_id.clone(),
                    vgpus: l.vgpus,
                    state: if healthy { "ready" } else { "unhealthy" },
                    endpoint: l.endpoint.clone(),
                    endpoint_healthy: healthy,
                    adopted: l.adopted,
                    age_secs: l.created.elapsed().as_secs(),
                    idle_secs: l.idle_for().as_secs(),
                    in_flight: l.in_flight.load(Ordering::SeqCst),
                    hourly_cost: l.hourly_cost,
                }
            })
            .collect();
        let models = slots
            .iter()
            .map(|(name, s)| ModelSlotView {
                model: name.clone(),
                state: s.state,
                last_error: s.last_error.as_ref().map(|(_, e)| e.to_string()),
            })
            .collect();
        PoolsSnapshot {
            team_id: self.client.team_id().to_owned(),
            overcommit: self.settings.overcommit,
            max_sharing_ratio: self.settings.max_sharing_ratio,
            pools,
            subscriptions,
            models,
            panel_breaker: self.client.breaker_state(PANEL),
            billing: lock(&self.billing).clone(),
            last_refresh_error: lock(&self.refresh_error).clone(),
            shutting_down: self.shutting_down.load(Ordering::SeqCst),
            cluster: self.cluster.get().map(|c| ClusterView {
                replica_id: c.config.replica_id.clone(),
                owner: self.owns(c),
                lease_secs: c.config.lease.as_secs_f64(),
            }),
        }
    }
}

/// Replicas sharing the team's subscriptions (see `cluster.rs`).
impl PoolManager {
    /// Joins the replicas that share this team's subscriptions through
    /// `directory`: starts the task that claims or renews the owner lease,
    /// answers other replicas' requests while owner, and keeps this replica's
    /// view of the published endpoints current. Once per manager.
    pub fn join_cluster(
        self: &Arc<Self>,
        directory: Arc<dyn PoolDirectory>,
        config: ClusterConfig,
    ) {
        let period = (config.lease / 3).max(Duration::from_millis(100));
        let cluster = Cluster {
            directory,
            config,
            owner: AtomicBool::new(false),
            owner_until: Mutex::new(Instant::now()),
            answering: Mutex::new(BTreeSet::new()),
            usage: Mutex::new(Vec::new()),
            touched_at: Mutex::new(Instant::now()),
        };
        if self.cluster.set(cluster).is_err() {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut renew_at = Instant::now();
            loop {
                let Some(manager) = weak.upgrade() else {
                    return;
                };
                if manager.shutting_down.load(Ordering::SeqCst) {
                    return;
                }
                if Instant::now() >= renew_at {
                    manager.renew().await;
                    renew_at = Instant::now() + period;
                }
                manager.serve_directory().await;
                drop(manager);
                tokio::time::sleep(DIRECTORY_POLL).await;
            }
        });
    }

    /// Whether this replica holds the owner lease now (and it has not lapsed).
    fn owns(&self, cluster: &Cluster) -> bool {
        cluster.owner.load(Ordering::SeqCst) && Instant::now() < *lock(&cluster.owner_until)
    }

    /// Claims or renews the owner lease; adopts on taking it, steps down on losing it.
    async fn renew(self: &Arc<Self>) {
        let Some(cluster) = self.cluster.get() else {
            return;
        };
        let asked_at = Instant::now();
        match cluster
            .directory
            .claim(&cluster.config.replica_id, cluster.config.lease)
            .await
        {
            Ok(true) => {
                *lock(&cluster.owner_until) = asked_at + cluster.config.lease;
                if !cluster.owner.load(Ordering::SeqCst) {
                    self.adopt(cluster).await;
                    cluster.owner.store(true, Ordering::SeqCst);
                    tracing::info!(replica = %cluster.config.replica_id, "this replica now owns the hosted·ai pool manager");
                }
            }
            Ok(false) => {
                if cluster.owner.swap(false, Ordering::SeqCst) {
                    tracing::warn!(replica = %cluster.config.replica_id, "another replica owns the hosted·ai pool manager now");
                    self.step_down();
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew the hosted·ai owner lease");
                if !self.owns(cluster) && cluster.owner.swap(false, Ordering::SeqCst) {
                    self.step_down();
                }
            }
        }
    }

    /// Takes over the published endpoints whose subscriptions hosted·ai
    /// still lists (no new subscription), withdraws the others, and counts the
    /// team's live subscriptions as ours to release at the last shutdown.
    async fn adopt(&self, cluster: &Cluster) {
        let records = match cluster.directory.endpoints().await {
            Ok(records) => records,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the published hosted·ai endpoints");
                Vec::new()
            }
        };
        let listed = self.client.subscriptions().await.ok();
        {
            // Only pools Harpoon published a subscription on are swept at the
            // last shutdown: the team's other subscriptions (a GPU rented by
            // hand) are none of ours.
            let mut touched = lock(&self.touched);
            for record in &records {
                if !touched.contains(&record.pool_id) {
                    touched.push(record.pool_id.clone());
                }
            }
        }
        for record in records {
            let alive = listed.as_ref().is_none_or(|rows| {
                rows.iter()
                    .any(|r| r.id == record.subscription_id && !r.is_ending())
            });
            if !alive {
                let _ = cluster
                    .directory
                    .withdraw(&record.model, &record.subscription_id)
                    .await;
                continue;
            }
            let Ok(lease) = self.lease_at(&record, true, Instant::now(), false) else {
                continue;
            };
            tracing::info!(model = %record.model, subscription = %record.subscription_id, "adopted a hosted·ai subscription");
            let mut slots = lock(&self.slots);
            let slot = self.slot(&mut slots, &record.model);
            slot.lease = Some(lease);
            slot.state = "ready";
        }
        self.publish_count();
    }

    /// Forgets the leases this replica owned without releasing them: the
    /// new owner adopts them.
    fn step_down(&self) {
        for slot in lock(&self.slots).values_mut() {
            if slot.lease.as_ref().is_some_and(|l| !l.remote) {
                slot.lease = None;
                slot.state = "idle";
            }
        }
        self.publish_count();
    }

    fn slot<'a>(&self, slots: &'a mut BTreeMap<String, Slot>, model: &str) -> &'a mut Slot {
        slots.entry(model.to_owned()).or_insert_with(|| Slot {
            lease: None,
            state: "idle",
            last_error: None,
            generation: 0,
            provisioning: Arc::new(AsyncMutex::new(())),
            waiters: Arc::new(Semaphore::new(self.settings.max_waiters as usize)),
        })
    }

    /// Publishes an endpoint this replica (the owner) serves.
    async fn announce(&self, lease: &Lease) {
        let Some(cluster) = self.cluster.get() else {
            return;
        };
        let record = EndpointRecord {
            model: lease.model.clone(),
            pool_id: lease.pool_id.clone(),
            subscription_id: lease.subscription_id.clone(),
            service_id: lease.service_id.clone(),
            vgpus: lease.vgpus,
            hourly_cost: lease.hourly_cost,
            endpoint: lease.endpoint.clone(),
            idle_ms: 0,
        };
        if let Err(e) = cluster.directory.publish(&record).await {
            tracing::warn!(model = %lease.model, error = %e, "could not publish a hosted·ai endpoint");
        }
    }

    /// A lease on the endpoint the owner published for `model`; asks the
    /// owner for one when there is none, and waits (bounded) for it.
    async fn acquire_remote(
        self: &Arc<Self>,
        cluster: &Cluster,
        model: &str,
        vgpus: u32,
    ) -> Result<Arc<Lease>, HostedAiError> {
        let (provisioning, waiters) = {
            let mut slots = lock(&self.slots);
            let slot = self.slot(&mut slots, model);
            if let Some(lease) = slot
                .lease
                .as_ref()
                .filter(|l| l.healthy.load(Ordering::SeqCst))
            {
                return Ok(lease.clone());
            }
            (slot.provisioning.clone(), slot.waiters.clone())
        };
        let Ok(_permit) = waiters.try_acquire() else {
            return Err(HostedAiError::Busy(self.settings.max_waiters));
        };
        let wait = Duration::from_secs(self.settings.request_wait_secs);
        let until = Instant::now() + wait;
        // One caller per model looks; the others find its lease after it.
        let _looking = tokio::time::timeout_at(until.into(), provisioning.lock())
            .await
            .map_err(|_| HostedAiError::StillAllocating(wait))?;
        if let Some(lease) = lock(&self.slots)
            .get(model)
            .and_then(|s| s.lease.clone())
            .filter(|l| l.healthy.load(Ordering::SeqCst))
        {
            return Ok(lease);
        }
        let mut asked = false;
        loop {
            if self.owns(cluster) {
                // Became the owner meanwhile: provide it ourselves.
                drop(_looking);
                return self.acquire_owned(model, vgpus).await;
            }
            match cluster.directory.endpoints().await {
                Ok(records) => {
                    if let Some(record) = records.into_iter().find(|r| r.model == model) {
                        let lease = self.lease_at(&record, true, Instant::now(), true)?;
                        let mut slots = lock(&self.slots);
                        let slot = self.slot(&mut slots, model);
                        slot.lease = Some(lease.clone());
                        slot.state = "ready";
                        slot.last_error = None;
                        return Ok(lease);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the published hosted·ai endpoints")
                }
            }
            if asked {
                if let Ok(Some(request)) = cluster.directory.request(model).await
                    && let Some(error) = request.error
                {
                    return Err(HostedAiError::NoCapacity(error));
                }
            } else {
                match cluster.directory.ask(model, vgpus, None).await {
                    Ok(()) => asked = true,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot ask the owner for hosted·ai capacity")
                    }
                }
            }
            if self.shutting_down.load(Ordering::SeqCst) {
                return Err(HostedAiError::Unavailable(
                    "the service is shutting down".into(),
                ));
            }
            if Instant::now() + DIRECTORY_POLL >= until {
                return Err(HostedAiError::StillAllocating(wait));
            }
            tokio::time::sleep(DIRECTORY_POLL).await;
        }
    }

    /// Drops a failing remote lease here and asks the owner to repair or replace it.
    async fn forget_remote(&self, lease: &Arc<Lease>) {
        lease.healthy.store(false, Ordering::SeqCst);
        if let Some(slot) = lock(&self.slots).get_mut(&lease.model)
            && slot.lease.as_ref().is_some_and(|l| Arc::ptr_eq(l, lease))
        {
            slot.lease = None;
            slot.state = "idle";
        }
        if let Some(cluster) = self.cluster.get()
            && let Err(e) = cluster
                .directory
                .ask(&lease.model, lease.vgpus, Some(&lease.subscription_id))
                .await
        {
            tracing::warn!(model = %lease.model, error = %e, "cannot report a failing endpoint to the owner");
        }
    }

    /// One pass over the directory: the owner answers requests and folds in
    /// other replicas' use; every replica drops endpoints withdrawn, reports
    /// its own use, and flushes usage.
    async fn serve_directory(self: &Arc<Self>) {
        let Some(cluster) = self.cluster.get() else {
            return;
        };
        let owner = self.owns(cluster);
        if owner {
            match cluster.directory.requests().await {
                Ok(requests) => {
                    for request in requests {
                        if !lock(&cluster.answering).insert(request.model.clone()) {
                            continue;
                        }
                        let manager = self.clone();
                        tokio::spawn(async move { manager.answer(request).await });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read requests for hosted·ai capacity"),
            }
        }
        let due = lock(&cluster.touched_at).elapsed() >= cluster.config.lease / 3;
        if !due {
            return;
        }
        *lock(&cluster.touched_at) = Instant::now();
        let Ok(records) = cluster.directory.endpoints().await else {
            return;
        };
        let mut used = Vec::new();
        {
            let mut slots = lock(&self.slots);
            for slot in slots.values_mut() {
                let Some(lease) = slot.lease.clone() else {
                    continue;
                };
                let record = records
                    .iter()
                    .find(|r| r.model == lease.model && r.subscription_id == lease.subscription_id);
                if lease.remote {
                    if record.is_none_or(|r| r.endpoint != lease.endpoint) {
                        // Withdrawn or replaced by the owner: look it up again on next use.
                        lease.healthy.store(false, Ordering::SeqCst);
                        slot.lease = None;
                        slot.state = "idle";
                    } else if lease.in_flight.load(Ordering::SeqCst) > 0
                        || lease.idle_for() < cluster.config.lease / 3 + DIRECTORY_POLL
                    {
                        used.push(lease.model.clone());
                    }
                } else if let Some(record) = record {
                    // Other replicas' use keeps the owner's lease from idle release.
                    let others = Instant::now()
                        .checked_sub(Duration::from_millis(record.idle_ms))
                        .unwrap_or_else(Instant::now);
                    let mut last = lock(&lease.last_used);
                    if others > *last {
                        *last = others;
                    }
                }
            }
        }
        for model in used {
            if let Err(e) = cluster.directory.touch(&model).await {
                tracing::debug!(model, error = %e, "cannot mark an endpoint used");
            }
        }
        let usage = std::mem::take(&mut *lock(&cluster.usage));
        for (model, pool, vgpu_seconds, cost) in usage {
            if let Err(e) = cluster
                .directory
                .add_usage(&model, &pool, vgpu_seconds, cost)
                .await
            {
                tracing::warn!(model, error = %e, "cannot record hosted·ai usage in the database");
            }
        }
    }

    /// The owner answers one replica's request: capacity published, or why not.
    async fn answer(self: Arc<Self>, request: super::cluster::CapacityRequest) {
        let Some(cluster) = self.cluster.get() else {
            return;
        };
        if let Some(failed) = &request.failed_subscription {
            let current = lock(&self.slots)
                .get(&request.model)
                .and_then(|s| s.lease.clone())
                .filter(|l| !l.remote && l.subscription_id == *failed);
            if let Some(lease) = current {
                self.recover(&lease).await;
            }
        }
        let outcome = self.acquire_owned(&request.model, request.vgpus).await;
        let error = match &outcome {
            Ok(lease) => {
                self.announce(lease).await;
                None
            }
            // Still coming: the asker keeps looking for the endpoint.
            Err(HostedAiError::StillAllocating(_)) => {
                lock(&cluster.answering).remove(&request.model);
                return;
            }
            Err(e) => Some(e.to_string()),
        };
        if let Err(e) = cluster
            .directory
            .answer(&request.model, error.as_deref())
            .await
        {
            tracing::warn!(model = %request.model, error = %e, "cannot answer a request for hosted·ai capacity");
        }
        lock(&cluster.answering).remove(&request.model);
    }

    /// At shutdown: whether this replica releases the team's subscriptions.
    /// Only the owner does, and only when no other replica is alive to take
    /// them over; otherwise it hands the lease over at once.
    async fn last_one_out(&self, cluster: &Cluster) -> bool {
        let replica = &cluster.config.replica_id;
        let owner = match cluster.directory.claim(replica, cluster.config.lease).await {
            Ok(owner) => owner,
            // The database is gone: releasing what we hold is all we can do.
            Err(_) => self.owns(cluster),
        };
        if !owner {
            self.step_down();
            return false;
        }
        let others = match cluster.directory.others_alive(replica).await {
            Ok(others) => others,
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell whether other replicas are alive; releasing the subscriptions held");
                false
            }
        };
        if others {
            self.step_down();
            cluster.owner.store(false, Ordering::SeqCst);
            if let Err(e) = cluster.directory.resign(replica).await {
                tracing::warn!(error = %e, "could not hand the hosted·ai owner lease over; it lapses by itself");
            }
            tracing::info!(
                "other replicas are alive: hosted·ai subscriptions handed over, not released"
            );
            return false;
        }
        if !cluster.owner.load(Ordering::SeqCst) {
            // Owner only now (the last replica standing): take over what was published.
            self.adopt(cluster).await;
        }
        true
    }
}

/// Today's date in UTC as `YYYY-MM-DD` (civil-from-days, no time crate needed).
fn today_utc() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
