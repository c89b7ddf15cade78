//! One engine serving a model, with its role, its breaker and what it holds
//! now: requests in flight, its queue, its recent time to first token.

use super::breaker::{Breaker, BreakerState, Ticket};
use super::settings::HealthSettings;
use super::settings::{ResolvedDeployment, Role};
use crate::EngineKind;
use crate::ModelSettings;
use crate::capability::{Capabilities, TemplateFacts};
use crate::engine::{Engine, EngineLoad, LoadState};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Time-to-first-token samples kept per deployment (the window is cut by age too).
const TTFT_SAMPLES: usize = 256;

/// One engine of a model.
pub struct Deployment {
    model: String,
    id: String,
    name: String,
    role: Role,
    settings: ModelSettings,
    engine: Result<Arc<dyn Engine>, String>,
    capabilities: Capabilities,
    in_flight: Arc<AtomicUsize>,
    /// None for a model's only deployment: with nowhere else to send a
    /// request, refusing it while the engine may have recovered helps no one.
    breaker: Option<Mutex<Breaker>>,
    ttft: Mutex<VecDeque<(Instant, Duration)>>,
    served: AtomicU64,
    failures: AtomicU64,
}

impl std::fmt::Debug for Deployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployment")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("available", &self.engine.is_ok())
            .finish()
    }
}

/// A deployment's state, for `GET /v2/deployments` and the metrics.
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentStatus {
    /// `model/name`, as `x-harpoon-deployment` says it.
    pub id: String,
    /// The model it serves.
    pub model: String,
    /// Its name within the model.
    pub name: String,
    /// What it is for.
    pub role: &'static str,
    /// Its engine.
    pub engine: &'static str,
    /// Whether it has an engine at all.
    pub available: bool,
    /// Why it has none, or what serves it.
    pub detail: String,
    /// Load state of its engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_state: Option<LoadState>,
    /// `closed`, `open` or `half_open`; `none` for a model's only deployment.
    pub breaker: &'static str,
    /// Seconds its open breaker keeps it out.
    pub breaker_open_secs: f64,
    /// Failures since its last success.
    pub consecutive_failures: u32,
    /// Times its breaker has opened.
    pub times_ejected: u64,
    /// Requests it is serving (queued in it included).
    pub in_flight: usize,
    /// Requests waiting in its engine's queue (the in-process engine; for an
    /// upstream, the requests it has outstanding).
    pub queued: usize,
    /// Mean time to first token over the model's overflow window, in
    /// milliseconds; absent without samples.
    pub recent_ttft_ms: Option<f64>,
    /// Largest prompt plus completion it takes.
    pub context_limit: u32,
    /// Requests it served.
    pub served: u64,
    /// Requests that failed on it.
    pub failures: u64,
}

/// Counts one request on a deployment while it lives.
pub(crate) struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Deployment {
    /// A deployment of `model` as resolved from its settings, on `engine`;
    /// `health` sets its breaker (none for a model's only deployment).
    pub fn new(
        model: &str,
        resolved: ResolvedDeployment,
        engine: Result<Arc<dyn Engine>, String>,
        health: Option<&HealthSettings>,
    ) -> Self {
        let settings = resolved.settings;
        let pass_through = settings.engine != EngineKind::Mlx;
        let capabilities = Capabilities::detect(
            &settings.capabilities,
            &TemplateFacts::read(super::model_dir(&settings.repo).as_deref()),
            pass_through,
        );
        Self {
            model: model.to_owned(),
            id: format!("{model}/{}", resolved.name),
            name: resolved.name,
            role: resolved.role,
            settings,
            engine,
            capabilities,
            in_flight: Arc::default(),
            breaker: health.map(|h| {
                Mutex::new(Breaker::new(
                    h.failure_threshold,
                    Duration::from_secs(h.cooldown_secs),
                ))
            }),
            ttft: Mutex::new(VecDeque::new()),
            served: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// `model/name`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its name within the model.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it is for.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Its settings (the model's, with the deployment's own in place).
    pub fn settings(&self) -> &ModelSettings {
        &self.settings
    }

    /// What it can take beyond plain chat.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Its engine, or why it has none.
    pub fn engine(&self) -> Result<&Arc<dyn Engine>, &str> {
        self.engine.as_ref().map_err(String::as_str)
    }

    fn breaker(&self) -> Option<MutexGuard<'_, Breaker>> {
        self.breaker
            .as_ref()
            .map(|b| b.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether its breaker would let a request through at `now`.
    pub(crate) fn would_admit(&self, now: Instant) -> bool {
        self.breaker().is_none_or(|b| b.would_admit(now))
    }

    /// Lets a request through its breaker at `now` (taking the trial when
    /// half-open); `None` when it may not go.
    pub(crate) fn admit(&self, now: Instant) -> Option<Ticket> {
        match self.breaker() {
            Some(mut b) => b.admit(now),
            None => Some(Ticket::default()),
        }
    }

    /// How long its breaker stays open after `now`.
    pub(crate) fn open_for(&self, now: Instant) -> Duration {
        self.breaker().map_or(Duration::ZERO, |b| b.remaining(now))
    }

    /// Whether its breaker keeps it out at `now` (the trial being out counts).
    pub fn is_ejected(&self, now: Instant) -> bool {
        !self.would_admit(now)
    }

    /// Counts a request on it until the guard is dropped.
    pub(crate) fn begin(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.in_flight.clone())
    }

    /// Requests it is serving.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Requests waiting for it: its engine's queue where it reports one,
    /// else everything outstanding on it.
    pub fn queued(&self) -> usize {
        match self.engine.as_ref().ok().and_then(|e| e.load()) {
            Some(EngineLoad { queued, .. }) => queued,
            None => self.in_flight(),
        }
    }

    /// A request on it got its answer going (a whole reply, a first chunk,
    /// or the caller's own error): the deployment works.
    pub(crate) fn works(&self, ticket: Ticket) {
        if let Some(mut b) = self.breaker() {
            b.succeeded(ticket);
        }
    }

    /// A request on it was served; its first token came after `ttft`, where
    /// that was measured (a stream, or an engine that times its first token).
    pub(crate) fn served(&self, ttft: Option<Duration>) {
        self.served.fetch_add(1, Ordering::Relaxed);
        if let Some(ttft) = ttft {
            let mut samples = self.ttft.lock().unwrap_or_else(|e| e.into_inner());
            if samples.len() == TTFT_SAMPLES {
                samples.pop_front();
            }
            samples.push_back((Instant::now(), ttft));
        }
    }

    /// A request on it failed at `now` (the deployment's fault).
    pub(crate) fn failed(&self, ticket: Ticket, now: Instant) {
        if let Some(mut b) = self.breaker() {
            b.failed(ticket, now);
        }
        self.failures.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(FAILURES_TOTAL, "model" => self.model.clone(), "deployment" => self.name.clone())
            .increment(1);
    }

    /// The model it serves.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Mean time to first token of the requests that started within `window` of `now`.
    pub fn recent_ttft(&self, window: Duration, now: Instant) -> Option<Duration> {
        let samples = self.ttft.lock().unwrap_or_else(|e| e.into_inner());
        let recent: Vec<Duration> = samples
            .iter()
            .filter(|(at, _)| now.saturating_duration_since(*at) <= window)
            .map(|(_, d)| *d)
            .collect();
        let count = u32::try_from(recent.len()).ok().filter(|n| *n > 0)?;
        Some(recent.iter().sum::<Duration>() / count)
    }

    /// Its state now; `window` is the model's overflow window.
    pub fn status(&self, window: Duration) -> DeploymentStatus {
        let now = Instant::now();
        let (breaker, open_secs, consecutive, opened) = match self.breaker() {
            None => ("none", 0.0, 0, 0),
            Some(b) => (
                match b.state(now) {
                    // The trial is out: nothing else goes until it reports.
                    BreakerState::HalfOpen if !b.would_admit(now) => BreakerState::Open.as_str(),
                    state => state.as_str(),
                },
                b.remaining(now).as_secs_f64(),
                b.consecutive_failures(),
                b.times_opened(),
            ),
        };
        let (available, detail, load_state) = match &self.engine {
            Ok(engine) => (
                true,
                match self.settings.engine {
                    EngineKind::Openai => format!(
                        "served by {}",
                        crate::secret::strip_url_credentials(
                            self.settings.base_url.as_deref().unwrap_or("?")
                        )
                    ),
                    EngineKind::HostedAi => "served on a hosted·ai pool (GET /v2/pools)".into(),
                    EngineKind::Mlx => format!("weights from {}", self.settings.repo),
                },
                Some(engine.load_state()),
            ),
            Err(why) => (false, why.clone(), None),
        };
        DeploymentStatus {
            id: self.id.clone(),
            model: self.model().to_owned(),
            name: self.name.clone(),
            role: self.role.as_str(),
            engine: self.settings.engine.as_str(),
            available,
            detail,
            load_state,
            breaker,
            breaker_open_secs: open_secs,
            consecutive_failures: consecutive,
            times_ejected: opened,
            in_flight: self.in_flight(),
            queued: self.queued(),
            recent_ttft_ms: self
                .recent_ttft(window, now)
                .map(|d| d.as_secs_f64() * 1000.0),
            context_limit: self.settings.context_limit,
            served: self.served.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

/// Counter of requests sent to each deployment, by why they went there.
pub const REQUESTS_TOTAL: &str = "harpoon_deployment_requests_total";
/// Counter of failures of each deployment (those its breaker counts).
pub const FAILURES_TOTAL: &str = "harpoon_deployment_failures_total";
/// Gauge of requests each deployment is serving.
pub const IN_FLIGHT: &str = "harpoon_deployment_in_flight";
/// Gauge of requests waiting in each deployment's queue.
pub const QUEUED: &str = "harpoon_deployment_queued";
/// Gauge of each deployment's mean time to first token over its model's overflow window, in seconds.
pub const RECENT_TTFT: &str = "harpoon_deployment_recent_ttft_seconds";
/// Gauge: 1 while a deployment's breaker keeps it out, else 0.
pub const BREAKER_OPEN: &str = "harpoon_deployment_breaker_open";
