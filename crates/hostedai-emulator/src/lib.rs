//! A local stand-in for the hosted·ai GPUaaS user-panel API (test support; it
//! never ships in the production image).
//!
//! It follows `docs/hosted-ai.md`: pools of GPUs sold as vGPU slots
//! (slots = GPUs × sharing ratio), one live subscription per team per pool
//! (409), error 10189007 when a pool is full, asynchronous subscribe and
//! unsubscribe, pods whose exposed service forwards TCP to a real local
//! OpenAI-compatible engine, billing accrued per interval, and one API key per
//! team. Every endpoint can be given faults: latency, 5xx, 429 bursts and
//! dropped connections; so can the pods' own inference servers (429 with or
//! without `Retry-After`, 500, dropped connections, at the node port);
//! subscriptions can be made never to become ready, and pods can be
//! evicted, mid-stream included.

pub mod engine;

use axum::{
    Json, Router,
    body::Body,
    extract::{Path, Query, Request, State},
    http::{HeaderMap, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The error code hosted·ai answers when a pool has no free vGPU slot.
pub const INSUFFICIENT_RESOURCES: i64 = 10_189_007;

/// One pool of physical GPUs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PoolSpec {
    /// Pool id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Physical GPUs.
    pub gpus: u32,
    /// Overcommit factor, 1–10.
    pub sharing_ratio: f64,
    /// Time quantum of the GPU scheduler, seconds.
    pub time_quantum_secs: u32,
    /// Price of one vGPU for one hour.
    pub price_per_vgpu_hour: f64,
    /// GPU model, e.g. `H100`.
    pub gpu_model: String,
}

impl PoolSpec {
    /// Slots sold: GPUs × sharing ratio, rounded down.
    pub fn slots(&self) -> u32 {
        (f64::from(self.gpus) * self.sharing_ratio).floor() as u32
    }
}

/// One team and its API key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeamSpec {
    /// Team id.
    pub id: String,
    /// Its API token.
    pub api_key: String,
}

/// Delays of the asynchronous lifecycle, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Delays {
    /// Time the subscribe call itself takes.
    pub subscribe_call_ms: u64,
    /// From subscribe to `subscribed` with running pods.
    pub ready_ms: u64,
    /// From unsubscribe to the row being gone (slots freed).
    pub unsubscribe_ms: u64,
    /// From expose-service to the service being active.
    pub expose_ms: u64,
}

/// Faults of one endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Fault {
    /// Added latency per call.
    pub latency_ms: u64,
    /// Probability of a 500 answer.
    pub error_rate: f64,
    /// The next this-many calls get 429.
    pub burst_429: u32,
    /// Probability of a 429 answer.
    pub rate_429: f64,
    /// Probability that the connection drops mid-answer.
    pub drop_rate: f64,
}

/// Faults of the pods' own inference server, at the node port: they answer
/// in the model server's place. They apply to `POST` requests (inference);
/// the `GET /v1/models` readiness probe always reaches the server.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PodFault {
    /// The next this-many requests get 429.
    pub burst_429: u32,
    /// `Retry-After` seconds sent with a 429 (none when unset).
    pub retry_after_secs: Option<u64>,
    /// The next this-many requests (after any 429 burst) get 500.
    pub burst_500: u32,
    /// Probability of a 429.
    pub rate_429: f64,
    /// Probability of a 500.
    pub error_rate: f64,
    /// Probability that the connection closes with no answer.
    pub drop_rate: f64,
}

/// The whole emulator configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Pools.
    pub pools: Vec<PoolSpec>,
    /// Teams.
    pub teams: Vec<TeamSpec>,
    /// Lifecycle delays.
    pub delays: Delays,
    /// Where pod services forward (an OpenAI-compatible server).
    pub upstream: Option<SocketAddr>,
    /// Billing interval length in milliseconds (the real panel bills hourly).
    pub billing_interval_ms: u64,
    /// Whether the subscription list ignores `team_id` as the real API was seen to.
    pub leak_other_teams: bool,
    /// Whether exposing a service under a name the subscription already has
    /// answers 409 (as another emulator of the API does) instead of the
    /// existing service.
    pub expose_conflict: bool,
    /// Whether `available-pools` carries each pool's `sharing_ratio`. The
    /// documented team-scope listing does not (only the admin API knows
    /// ratios); true mimics a panel that adds it.
    pub list_sharing_ratio: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            pools: vec![PoolSpec {
                id: 1,
                name: "h100-a".into(),
                gpus: 2,
                sharing_ratio: 1.0,
                time_quantum_secs: 30,
                price_per_vgpu_hour: 2.0,
                gpu_model: "H100".into(),
            }],
            teams: vec![TeamSpec {
                id: "team-1".into(),
                api_key: "key-1".into(),
            }],
            delays: Delays::default(),
            upstream: None,
            billing_interval_ms: 1_000,
            leak_other_teams: true,
            expose_conflict: false,
            list_sharing_ratio: false,
        }
    }
}

/// A subscription, as the emulator keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct Subscription {
    /// Id.
    pub id: u64,
    /// Pool.
    pub pool_id: u64,
    /// Owner.
    pub team_id: String,
    /// `subscribing`, `subscribed`, `un_subscribing`.
    pub status: String,
    /// vGPUs held.
    pub vgpus: u32,
    /// Pod names and states.
    pub pods: Vec<(String, String)>,
}

#[derive(Debug)]
struct Service {
    id: u64,
    subscription_id: u64,
    name: String,
    port: u16,
    node_port: u16,
    ready_at: Instant,
    stop: watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct Billing {
    cost: f64,
    vgpu_hours: f64,
}

#[derive(Debug, Default)]
struct Inner {
    subscriptions: BTreeMap<u64, Subscription>,
    ready_at: BTreeMap<u64, Instant>,
    gone_at: BTreeMap<u64, Instant>,
    services: Vec<Service>,
    never_ready: Vec<u64>,
    faults: BTreeMap<String, Fault>,
    all_faults: Option<Fault>,
    evict_after_bytes: Option<u64>,
    pod_fault: PodFault,
    pod_requests: u64,
    pod_faulted: u64,
    billing_strings: bool,
    billing: BTreeMap<(String, u64), Billing>,
    calls: BTreeMap<String, u64>,
    hidden: BTreeMap<u64, u32>,
}

/// A handle on a running emulator: its address and its controls.
#[derive(Clone)]
pub struct Emulator {
    config: Arc<Config>,
    inner: Arc<Mutex<Inner>>,
    next_id: Arc<AtomicU64>,
    /// Where the API listens.
    pub addr: SocketAddr,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .finish()
    }
}

/// Endpoint names used for faults and call counts.
pub const ENDPOINTS: &[&str] = &[
    "available-pools",
    "all-pools",
    "calculate",
    "subscribe",
    "unsubscribe",
    "pool-subscription",
    "connection-info",
    "expose-service",
    "expose-status",
    "delete-service",
    "metrics",
    "billing",
];

impl Emulator {
    /// Binds 127.0.0.1 on a free port and serves in the background.
    pub async fn start(config: Config) -> std::io::Result<Emulator> {
        Self::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Binds `addr` and serves in the background.
    pub async fn start_on(config: Config, addr: SocketAddr) -> std::io::Result<Emulator> {
        let listener = TcpListener::bind(addr).await?;
        let emulator = Emulator {
            config: Arc::new(config),
            inner: Arc::default(),
            next_id: Arc::new(AtomicU64::new(100)),
            addr: listener.local_addr()?,
        };
        let app = emulator.router();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let ticker = emulator.clone();
        tokio::spawn(async move { ticker.bill_forever().await });
        Ok(emulator)
    }

    /// API root, e.g. `http://127.0.0.1:1234/api`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means a test thread panicked; the data is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the faults of one endpoint (see [`ENDPOINTS`]).
    pub fn set_fault(&self, endpoint: &str, fault: Fault) {
        self.lock().faults.insert(endpoint.to_owned(), fault);
    }

    /// Sets faults that apply to every endpoint without its own.
    pub fn set_all_faults(&self, fault: Option<Fault>) {
        self.lock().all_faults = fault;
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        let mut inner = self.lock();
        inner.faults.clear();
        inner.all_faults = None;
        inner.evict_after_bytes = None;
        inner.pod_fault = PodFault::default();
        inner.billing_strings = false;
        inner.never_ready.clear();
        inner.hidden.clear();
    }

    /// Sets the faults of every pod's inference server (see [`PodFault`]).
    pub fn set_pod_fault(&self, fault: PodFault) {
        self.lock().pod_fault = fault;
    }

    /// Inference requests (`POST`) that reached a node port, faulted or not.
    pub fn pod_requests(&self) -> u64 {
        self.lock().pod_requests
    }

    /// Inference requests at a node port that a [`PodFault`] answered
    /// (429, 500) or dropped.
    pub fn pod_faulted(&self) -> u64 {
        self.lock().pod_faulted
    }

    /// While set, `team-billing/summary` answers as first-party clients see
    /// it: amounts as strings (`"0.007788"`), `currency` as an object
    /// (`{"code": "USD", "symbol": "$"}`), per-pool totals in `gpuaas_summary`.
    pub fn set_billing_as_strings(&self, on: bool) {
        self.lock().billing_strings = on;
    }

    /// The fault, if any, that answers the next inference request in the
    /// pod's place: `Some(None)` drops the connection, `Some(Some(bytes))`
    /// is the whole HTTP answer.
    fn pod_fault_answer(&self) -> Option<Option<Vec<u8>>> {
        let mut inner = self.lock();
        inner.pod_requests += 1;
        let fault = &mut inner.pod_fault;
        let (r429, r500, drop) = {
            let mut rng = rand::rng();
            (
                rng.random_bool(fault.rate_429.clamp(0.0, 1.0)),
                rng.random_bool(fault.error_rate.clamp(0.0, 1.0)),
                rng.random_bool(fault.drop_rate.clamp(0.0, 1.0)),
            )
        };
        let status = if fault.burst_429 > 0 {
            fault.burst_429 -= 1;
            429
        } else if fault.burst_500 > 0 {
            fault.burst_500 -= 1;
            500
        } else if drop {
            inner.pod_faulted += 1;
            return Some(None);
        } else if r429 {
            429
        } else if r500 {
            500
        } else {
            return None;
        };
        let retry_after = fault.retry_after_secs;
        inner.pod_faulted += 1;
        let (reason, body, extra) = if status == 429 {
            (
                "Too Many Requests",
                r#"{"error":{"message":"Rate limit exceeded","type":"rate_limit_error","code":429}}"#,
                retry_after
                    .map(|s| format!("retry-after: {s}\r\n"))
                    .unwrap_or_default(),
            )
        } else {
            (
                "Internal Server Error",
                r#"{"error":{"message":"Internal server error","type":"server_error","code":500}}"#,
                String::new(),
            )
        };
        Some(Some(
            format!(
                "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
                body.len()
            )
            .into_bytes(),
        ))
    }

    /// Takes `vgpus` slots of `pool` without showing it in `available-pools`,
    /// as a stale listing would: subscribe then meets 10189007.
    pub fn set_hidden_allocation(&self, pool: u64, vgpus: u32) {
        self.lock().hidden.insert(pool, vgpus);
    }

    /// Subscriptions to `pool` stay `subscribing` forever while set.
    pub fn set_never_ready(&self, pool: u64, on: bool) {
        let mut inner = self.lock();
        inner.never_ready.retain(|p| *p != pool);
        if on {
            inner.never_ready.push(pool);
        }
    }

    /// Evicts the pod behind the next pod connection that has forwarded this
    /// many bytes to its client (one shot).
    pub fn evict_after_bytes(&self, bytes: Option<u64>) {
        self.lock().evict_after_bytes = bytes;
    }

    /// Evicts every pod of a subscription now: pods leave `running` and their
    /// services drop every connection.
    pub fn evict(&self, subscription_id: u64) {
        let mut inner = self.lock();
        evict_locked(&mut inner, subscription_id);
    }

    /// Subscriptions not yet gone, of every team.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        let mut inner = self.lock();
        self.advance(&mut inner);
        inner.subscriptions.values().cloned().collect()
    }

    /// Subscriptions that hold slots and are not being released.
    pub fn live_subscriptions(&self) -> usize {
        self.subscriptions()
            .iter()
            .filter(|s| s.status != "un_subscribing")
            .count()
    }

    /// Calls received per endpoint (after authentication).
    pub fn calls(&self, endpoint: &str) -> u64 {
        self.lock().calls.get(endpoint).copied().unwrap_or(0)
    }

    /// Billed cost so far of a team in a pool.
    pub fn billed(&self, team: &str, pool: u64) -> f64 {
        self.lock()
            .billing
            .get(&(team.to_owned(), pool))
            .map_or(0.0, |b| b.cost)
    }

    /// Billed vGPU-hours so far of a team in a pool.
    pub fn billed_vgpu_hours(&self, team: &str, pool: u64) -> f64 {
        self.lock()
            .billing
            .get(&(team.to_owned(), pool))
            .map_or(0.0, |b| b.vgpu_hours)
    }

    fn router(&self) -> Router {
        let api = Router::new()
            .route("/gpuaas/available-pools", get(available_pools))
            .route("/gpuaas/all-pools", get(all_pools))
            .route("/gpuaas/calculate-pool-subscription", post(calculate))
            .route("/gpuaas/pool/subscribe", post(subscribe))
            .route("/gpuaas/pool/unsubscribe", post(unsubscribe))
            .route("/gpuaas/pool-subscription", get(list_subscriptions))
            .route("/gpuaas/connection-info", get(connection_info))
            .route("/pods/expose-service", post(expose_service))
            .route("/pods/expose-service/status", get(expose_status))
            .route("/pods/delete-exposed-service/{id}", delete(delete_service))
            .route("/gpuaas/{team}/metrics", get(team_metrics))
            .route(
                "/team-billing/gpuaas-pool/{team}/{start}/{end}/{interval}",
                get(billing_pool),
            )
            .route(
                "/team-billing/summary/{team}/{start}/{end}",
                get(billing_summary),
            )
            .layer(middleware::from_fn_with_state(
                self.clone(),
                faults_and_auth,
            ));
        Router::new()
            .nest("/api", api)
            .route("/emulator/state", get(control_state))
            .route("/emulator/faults", post(control_faults))
            .route("/emulator/evict/{id}", post(control_evict))
            .with_state(self.clone())
    }

    /// Moves rows along their asynchronous lifecycle.
    fn advance(&self, inner: &mut Inner) {
        let now = Instant::now();
        let ready: Vec<u64> = inner
            .ready_at
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            let pool = inner.subscriptions.get(&id).map(|s| s.pool_id);
            if pool.is_some_and(|p| inner.never_ready.contains(&p)) {
                continue;
            }
            inner.ready_at.remove(&id);
            if let Some(sub) = inner.subscriptions.get_mut(&id)
                && sub.status == "subscribing"
            {
                sub.status = "subscribed".into();
                for pod in &mut sub.pods {
                    pod.1 = "running".into();
                }
            }
        }
        let gone: Vec<u64> = inner
            .gone_at
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            inner.gone_at.remove(&id);
            inner.subscriptions.remove(&id);
        }
    }

    async fn bill_forever(&self) {
        let interval = Duration::from_millis(self.config.billing_interval_ms.max(10));
        let hours = interval.as_secs_f64() / 3_600.0;
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            let mut inner = self.lock();
            self.advance(&mut inner);
            let held: Vec<(String, u64, u32)> = inner
                .subscriptions
                .values()
                .map(|s| (s.team_id.clone(), s.pool_id, s.vgpus))
                .collect();
            for (team, pool, vgpus) in held {
                let price = self
                    .config
                    .pools
                    .iter()
                    .find(|p| p.id == pool)
                    .map_or(0.0, |p| p.price_per_vgpu_hour);
                let entry = inner.billing.entry((team, pool)).or_default();
                entry.vgpu_hours += f64::from(vgpus) * hours;
                entry.cost += f64::from(vgpus) * hours * price;
            }
        }
    }

    fn pool(&self, id: u64) -> Option<&PoolSpec> {
        self.config.pools.iter().find(|p| p.id == id)
    }

    fn allocated(inner: &Inner, pool: u64) -> u32 {
        inner
            .subscriptions
            .values()
            .filter(|s| s.pool_id == pool)
            .map(|s| s.vgpus)
            .sum()
    }
}

fn evict_locked(inner: &mut Inner, subscription_id: u64) {
    if let Some(sub) = inner.subscriptions.get_mut(&subscription_id) {
        for pod in &mut sub.pods {
            pod.1 = "evicted".into();
        }
    }
    inner.services.retain(|s| {
        if s.subscription_id == subscription_id {
            s.stop.send_replace(true);
            false
        } else {
            true
        }
    });
}

/// The team a request authenticates as.
#[derive(Debug, Clone)]
struct Team(String);

fn error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        Json(json!({"code": code, "message": message, "errors": []})),
    )
        .into_response()
}

fn endpoint_of(path: &str) -> &'static str {
    let p = path.trim_start_matches("/api");
    match p {
        "/gpuaas/available-pools" => "available-pools",
        "/gpuaas/all-pools" => "all-pools",
        "/gpuaas/calculate-pool-subscription" => "calculate",
        "/gpuaas/pool/subscribe" => "subscribe",
        "/gpuaas/pool/unsubscribe" => "unsubscribe",
        "/gpuaas/pool-subscription" => "pool-subscription",
        "/gpuaas/connection-info" => "connection-info",
        "/pods/expose-service" => "expose-service",
        "/pods/expose-service/status" => "expose-status",
        _ if p.starts_with("/pods/delete-exposed-service/") => "delete-service",
        _ if p.starts_with("/team-billing/") => "billing",
        _ if p.ends_with("/metrics") => "metrics",
        _ => "other",
    }
}

async fn faults_and_auth(
    State(emu): State<Emulator>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let token = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned)
        });
    let Some(team) = token.and_then(|t| {
        emu.config
            .teams
            .iter()
            .find(|team| team.api_key == t)
            .map(|team| team.id.clone())
    }) else {
        return error(StatusCode::UNAUTHORIZED, 401, "Unauthorized");
    };
    let endpoint = endpoint_of(request.uri().path());
    let fault = {
        let mut inner = emu.lock();
        *inner.calls.entry(endpoint.to_owned()).or_default() += 1;
        let own = inner.faults.get_mut(endpoint);
        let fault = match own {
            Some(f) => {
                let copy = f.clone();
                f.burst_429 = f.burst_429.saturating_sub(1);
                Some(copy)
            }
            None => inner.all_faults.clone(),
        };
        fault.unwrap_or_default()
    };
    if fault.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fault.latency_ms)).await;
    }
    let (limited, fail, drop) = {
        let mut rng = rand::rng();
        (
            rng.random_bool(fault.rate_429.clamp(0.0, 1.0)),
            rng.random_bool(fault.error_rate.clamp(0.0, 1.0)),
            rng.random_bool(fault.drop_rate.clamp(0.0, 1.0)),
        )
    };
    if fault.burst_429 > 0 || limited {
        return error(StatusCode::TOO_MANY_REQUESTS, 429, "Too many requests");
    }
    if fail {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            500,
            "Internal server error",
        );
    }
    request.extensions_mut().insert(Team(team));
    let response = next.run(request).await;
    if drop {
        // Headers go out, then the body breaks: the peer sees the connection drop mid-answer.
        let broken = futures_util::stream::once(async {
            Err::<Vec<u8>, _>(std::io::Error::other(
                "connection dropped by fault injection",
            ))
        });
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, Body::from_stream(broken));
    }
    response
}

fn team_of(request_team: &Option<axum::Extension<Team>>) -> String {
    request_team
        .as_ref()
        .map(|t| t.0.0.clone())
        .unwrap_or_default()
}

/// 403 when a body or query names another team than the key's.
#[allow(clippy::result_large_err)] // handlers return the response as is
fn check_team(team: &str, claimed: Option<&str>) -> Result<(), Response> {
    match claimed {
        Some(c) if c != team => Err(error(
            StatusCode::FORBIDDEN,
            12_370_004,
            "No access rights to this team's resources",
        )),
        _ => Ok(()),
    }
}

#[derive(Deserialize)]
struct TeamQuery {
    team_id: Option<String>,
    subscription_id: Option<String>,
}

async fn available_pools(
    State(emu): State<Emulator>,
    team: Option<axum::Extension<Team>>,
    Query(q): Query<TeamQuery>,
) -> Response {
    let team = team_of(&team);
    if let Err(r) = check_team(&team, q.team_id.as_deref()) {
        return r;
    }
    let mut inner = emu.lock();
    emu.advance(&mut inner);
    let pools: Vec<Value> = emu
        .config
        .pools
        .iter()
        .map(|p| {
            let free = p.slots().saturating_sub(Emulator::allocated(&inner, p.id));
            let mut row = json!({
                "id": p.id,
                "pool_name": p.name,
                "pool_label": p.name,
                "gpu_model_type": p.gpu_model,
                "available_vgpus": free,
                "pricing_hourly": format!("{:.4}", p.price_per_vgpu_hour),
                "time_quantum_in_sec": p.time_quantum_secs,
            });
            if emu.config.list_sharing_ratio {
                row["sharing_ratio"] = json!(p.sharing_ratio);
            }
            row
        })
        .collect();
    Json(pools).into_response()
}

async fn all_pools(State(emu): State<Emulator>) -> Response {
    let pools: Vec<Value> = emu
        .config
        .pools
        .iter()
        .map(|p| {
            json!({"pool_id": p.id, "pool_name": p.name, "gpuaas_id": 1, "region_id": 1,
                   "region_name": "local", "city": "loopback"})
        })
        .collect();
    Json(pools).into_response()
}

#[derive(Deserialize)]
struct CalculateBody {
    pool_id: Value,
    vgpus: u32,
    #[serde(default)]
    duration_hours: Option<f64>,
    team_id: Option<String>,
}

fn id_of(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

async fn calculate(
    State(emu): State<Emulator>,
    team: Option<axum::Extension<Team>>,
    Json(body): Json<CalculateBody>,
) -> Response {
    let team = team_of(&team);
    if let Err(r) = check_team(&team, body.team_id.as_deref()) {
        return r;
    }
    let Some(pool) = id_of(&body.pool_id).and_then(|id| emu.pool(id)) else {
        return error(StatusCode::NOT_FOUND, 404, "Pool not found");
    };
    let hourly = pool.price_per_vgpu_hour * f64::from(body.vgpus);
    let hours = body.duration_hours.unwrap_or(1.0);
    Json(json!({
        "total_cost": hourly * hours,
        "hourly_cost": hourly,
        "currency": "USD",
        "breakdown": {"GPU": hourly},
    }))
    .into_response()
}

#[derive(Deserialize)]
struct SubscribeBody {
    pool_id: Value,
    team_id: Option<String>,
    vgpus: u32,
}

async fn subscribe(
    State(emu): State<Emulator>,
    team: Option<axum::Extension<Team>>,
    Json(body): Json<SubscribeBody>,
) -> Response {
    let team = team_of(&team);
    if let Err(r) = check_team(&team, body.team_id.as_deref()) {
        return r;
    }
    let Some(pool) = id_of(&body.pool_id).and_then(|id| emu.pool(id)).cloned() else {
        return error(StatusCode::NOT_FOUND, 404, "Pool not found");
    };
    if body.vgpus == 0 {
        return error(StatusCode::BAD_REQUEST, 400, "vgpus must be at least 1");
    }
    if emu.config.delays.subscribe_call_ms > 0 {
        tokio::time::sleep(Duration::from_millis(emu.config.delays.subscribe_call_ms)).await;
    }
    let mut inner = emu.lock();
    emu.advance(&mut inner);
    if inner
        .subscriptions
        .values()
        .any(|s| s.team_id == team && s.pool_id == pool.id)
    {
        return error(StatusCode::CONFLICT, 409, "Already subscribed");
    }
    let hidden = inner.hidden.get(&pool.id).copied().unwrap_or(0);
    let free = pool
        .slots()
        .saturating_sub(Emulator::allocated(&inner, pool.id) + hidden);
    if free < body.vgpus {
        return error(
            StatusCode::BAD_REQUEST,
            INSUFFICIENT_RESOURCES,
            "Insufficient resources",
        );
    }
    let id = emu.next_id.fetch_add(1, Ordering::SeqCst);
    let pods = (0..body.vgpus)
        .map(|i| (format!("p-{id}-{i}"), "pending".to_owned()))
        .collect();
    inner.subscriptions.insert(
        id,
        Subscription {
            id,
            pool_id: pool.id,
            team_id: team,
            status: "subscribing".into(),
            vgpus: body.vgpus,
            pods,
        },
    );
    inner.ready_at.insert(
        id,
        Instant::now() + Duration::from_millis(emu.config.delays.ready_ms),
    );
    Json(json!({"subscription_id": id})).into_response()
}

#[derive(Deserialize)]
struct UnsubscribeBody {
    subscription_id: Value,
    team_id: Option<String>,
}

async fn unsubscribe(
    State(emu): State<Emulator>,
    team: Option<axum::Extension<Team>>,
    Json(body): Json<UnsubscribeBody>,
) -> Response {
    let team = team_of(&team);
    if let Err(r) = check_team(&team, body.team_id.as_deref()) {
        return r;
    }
    let Some(id) = id_of(&body.subscription_id) else {
        return error(StatusCode::BAD_REQUEST, 400, "subscription_id is required");
    };
    let mut inner = emu.lock();
    emu.advance(&mut inner);
    match inner.subscriptions.get_mut(&id) {
        Some(sub) if sub.team_id == team => {
            if sub.status != "un_subscribing" {
                sub.status = "un_subscribing".into();
                inner.ready_at.remove(&id);
                inner.gone_at.insert(
                    id,
                    Instant::now() + Duration::from_millis(emu.config.delays.unsubscribe_ms),
                );
                evict_locked(&mut inner, id);
            }
            // The real panel answers 200 with an empty body.
            StatusCode::OK.into_response()
        }
        _ => error(StatusCode::NOT_FOUND, 404, "Subscription not found"),
    }
}

fn subscription_json(emu: &Emulator, s: &Subscription) -> Value {
    let name = emu
        .pool(s.pool_id)
        .map(|p| p.name.clone())
        .unwrap_or_default();
    json!({
        "id": s.id,
        "pool_id": s.pool_id,
        "team_id": s.team_id,
        "pool_name": name,
        "status": s.status,
        "pods": s.pods.iter().map(|(n, st)| json!({"pod_name": n, "pod_status": st, "gpu_count": 1})).collect::<Vec<_>>(),
        "per_pod_info": {"vgpu_count": 1, "vcpu_count": 8, "ram_mb": 65_536},
        "storage_details": {"ephemeral_storage_gb": 100, "shared_volumes": []},
        "metrics": {"tflops_usage": 0, "vram_usage": 0},
    })
}

#[derive(Deserialize)]
struct ListQuery {
    team_id: Option<String>,
    page: Option<usize>,
    per_page: Option<usize>,
}

async fn list_subscriptions(
    State(emu): State<Emulator>,
    team: Option<axum::Extension<Team>>,
    Query(q): Query<ListQuery>,
) -> Response {
    let team = team_of(&team);
    if let Err(r) = check_team(&team, q.team_id.as_deref()) {
        return r;
    }
    let mut inner = emu.lock();
    emu.advance(&mut inner);
    let rows: Vec<Value> = inner
        .subscriptions
        .values()
        .filter(|s| emu.config.leak_other_teams || s.team_id == team)
        .map(|s| subscription_json(&emu, s))
        .collect();
    let per_page = q.per_page.unwrap_or(20).clamp(1, 100);
    let page = q.page.unwrap_or(0);
    let total = rows.len();
    let items: Vec<Value> = rows
        .into_iter()
        .skip(page * per_page)
        .take(per_page)
        .collect();
    Json(json!({
        "items": items,
        "page": page,
        "per_page": per_page,
        "total_items": total,
        "total_pages": total.div_ceil(per_page),
    }))
    .into_response()
}

async fn connection_info(
    State(emu): State<Emulator>,
    team: Option<axum::Extension<Team>>,
    Query(q): Query<TeamQuery>,
) -> Response {
    let team = team_of(&team);
    if let Err(r) = check_team(&team, q.team_id.as_deref()) {
        return r;
    }
    let wanted = q
        .subscription_id
        .as_deref()
        .and_then(|s| s.parse::<u64>().ok());
    let mut inner = emu.lock();
    emu.advance(&mut inner);
    let rows: Vec<Value> = inner
        .subscriptions
        .values()
        .filter(|s| s.team_id == team && wanted.is_none_or(|w| w == s.id))
        .map(|s| {
            json!({"id": s.id, "pods": s.pods.iter().map(|(n, st)| json!({
                "pod_name": n, "pod_status": st,
                "ssh_info": {"cmd": format!("ssh root@127.0.0.1 -p 22 # {n}"), "pass": "emulated"}
            })).collect::<Vec<_>>()})
        })
        .collect();
    Json(rows).into_response()
}

#[derive(Deserialize)]
struct ExposeBody {
    pod_name: String,
    pool_subscription_id: Value,
    port: u16,
    service_name: String,
}

async fn expose_service(
    State(emu): State<Emulator>,
    team: Option<axum::Extension<Team>>,
    Json(body): Json<ExposeBody>,
) -> Response {
    let team = team_of(&team);
    let Some(sub_id) = id_of(&body.pool_subscription_id) else {
        return error(
            StatusCode::BAD_REQUEST,
            400,
            "pool_subscription_id is required",
        );
    };
    {
        let mut inner = emu.lock();
        emu.advance(&mut inner);
        let Some(sub) = inner
            .subscriptions
            .get(&sub_id)
            .filter(|s| s.team_id == team)
        else {
            return error(StatusCode::NOT_FOUND, 404, "Subscription not found");
        };
        if !sub
            .pods
            .iter()
            .any(|(n, st)| *n == body.pod_name && st == "running")
        {
            return error(StatusCode::BAD_REQUEST, 400, "Pod is not running");
        }
        if let Some(existing) = inner
            .services
            .iter()
            .find(|s| s.subscription_id == sub_id && s.name == body.service_name)
        {
            if emu.config.expose_conflict {
                return error(StatusCode::CONFLICT, 409, "Service already exists");
            }
            return Json(
                json!({"id": existing.id, "ip": "127.0.0.1", "node_port": existing.node_port,
                "pod_port": existing.port, "status": "active", "operation_id": existing.id}),
            )
            .into_response();
        }
    }
    let Some(upstream) = emu.config.upstream else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            500,
            "The emulator has no upstream engine for pods",
        );
    };
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, 500, &e.to_string()),
    };
    let node_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let (stop, stopped) = watch::channel(false);
    let id = emu.next_id.fetch_add(1, Ordering::SeqCst);
    let ready_at = Instant::now() + Duration::from_millis(emu.config.delays.expose_ms);
    emu.lock().services.push(Service {
        id,
        subscription_id: sub_id,
        name: body.service_name.clone(),
        port: body.port,
        node_port,
        ready_at,
        stop,
    });
    tokio::spawn(forward(emu.clone(), listener, upstream, sub_id, stopped));
    Json(
        json!({"id": id, "ip": "127.0.0.1", "node_port": node_port, "pod_port": body.port,
        "status": "pending", "operation_id": id}),
    )
    .into_response()
}

/// The pod's service: TCP to the upstream engine, until the pod goes away.
async fn forward(
    emu: Emulator,
    listener: TcpListener,
    upstream: SocketAddr,
    subscription_id: u64,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped.wait_for(|s| *s) => return,
        };
        let Ok((client, _)) = accepted else { continue };
        let emu = emu.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            tokio::select! {
                _ = pipe(&emu, client, server, subscription_id) => {}
                _ = stopped.wait_for(|s| *s) => {}
            }
        });
    }
}

/// End of an HTTP request head (`\r\n\r\n`), as an index past it.
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

async fn pipe(emu: &Emulator, client: TcpStream, server: TcpStream, subscription_id: u64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut cr, cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    // Both directions write to the client: the server's answers, and a pod
    // fault's answer in the server's place.
    let cw = Arc::new(tokio::sync::Mutex::new(cw));
    let up = {
        let cw = cw.clone();
        async move {
            // One request at a time (HTTP/1.1 clients here never pipeline), so
            // a fault can answer any request, on a reused connection too.
            let mut pending = Vec::new();
            let mut buf = vec![0u8; 8 * 1024];
            'requests: loop {
                let end = loop {
                    if let Some(end) = head_end(&pending) {
                        break end;
                    }
                    match cr.read(&mut buf).await {
                        Ok(0) | Err(_) => break 'requests,
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
                if head.contains("transfer-encoding: chunked") {
                    // Not parsed: everything passes from here on.
                    if sw.write_all(&pending).await.is_ok() {
                        let _ = tokio::io::copy(&mut cr, &mut sw).await;
                    }
                    break;
                }
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while pending.len() < end + length {
                    match cr.read(&mut buf).await {
                        Ok(0) | Err(_) => break 'requests,
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                    }
                }
                let request: Vec<u8> = pending.drain(..end + length).collect();
                if head.starts_with("post ")
                    && let Some(answer) = emu.pod_fault_answer()
                {
                    let mut cw = cw.lock().await;
                    if let Some(answer) = answer {
                        let _ = cw.write_all(&answer).await;
                    }
                    let _ = cw.shutdown().await;
                    break;
                }
                if sw.write_all(&request).await.is_err() {
                    break;
                }
            }
            let _ = sw.shutdown().await;
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 8 * 1024];
        let mut sent = 0u64;
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let limit = emu.lock().evict_after_bytes;
            if let Some(limit) = limit {
                let allowed = limit.saturating_sub(sent) as usize;
                if allowed < n {
                    let _ = cw.lock().await.write_all(&buf[..allowed]).await;
                    let mut inner = emu.lock();
                    inner.evict_after_bytes = None;
                    evict_locked(&mut inner, subscription_id);
                    return;
                }
            }
            if cw.lock().await.write_all(&buf[..n]).await.is_err() {
                break;
            }
            sent += n as u64;
        }
        let _ = cw.lock().await.shutdown().await;
    };
    tokio::join!(up, down);
}

#[derive(Deserialize)]
struct StatusQuery {
    service_name: Option<String>,
    pool_subscription_id: Option<String>,
}

async fn expose_status(State(emu): State<Emulator>, Query(q): Query<StatusQuery>) -> Response {
    let sub = q
        .pool_subscription_id
        .as_deref()
        .and_then(|s| s.parse::<u64>().ok());
    let inner = emu.lock();
    let found = inner.services.iter().find(|s| {
        Some(s.subscription_id) == sub && q.service_name.as_deref().is_none_or(|n| n == s.name)
    });
    match found {
        Some(s) => {
            let active = Instant::now() >= s.ready_at;
            Json(json!({
                "status": if active { "active" } else { "pending" },
                "service_ip": "127.0.0.1",
                "node_port": s.node_port,
                "service_exists": true,
                "kubernetes_active": active,
            }))
            .into_response()
        }
        None => Json(
            json!({"status": "not_found", "service_exists": false, "kubernetes_active": false}),
        )
        .into_response(),
    }
}

async fn delete_service(State(emu): State<Emulator>, Path(id): Path<u64>) -> Response {
    let mut inner = emu.lock();
    let before = inner.services.len();
    inner.services.retain(|s| {
        if s.id == id {
            s.stop.send_replace(true);
            false
        } else {
            true
        }
    });
    if inner.services.len() == before {
        return error(StatusCode::NOT_FOUND, 404, "Service not found");
    }
    StatusCode::OK.into_response()
}

async fn team_metrics(
    State(emu): State<Emulator>,
    team: Option<axum::Extension<Team>>,
    Path(path_team): Path<String>,
) -> Response {
    let team = team_of(&team);
    if let Err(r) = check_team(&team, Some(&path_team)) {
        return r;
    }
    let subs = emu.subscriptions();
    let ours: Vec<&Subscription> = subs.iter().filter(|s| s.team_id == team).collect();
    Json(json!({
        "subscriptions": ours.len(),
        "vgpus": ours.iter().map(|s| s.vgpus).sum::<u32>(),
        "tflops_usage": 0,
        "vram_usage": 0,
    }))
    .into_response()
}

async fn billing_pool(
    State(emu): State<Emulator>,
    team: Option<axum::Extension<Team>>,
    Path((path_team, start, _end, _interval)): Path<(String, String, String, String)>,
) -> Response {
    let team = team_of(&team);
    if let Err(r) = check_team(&team, Some(&path_team)) {
        return r;
    }
    let inner = emu.lock();
    let mut total = 0.0;
    let mut details = serde_json::Map::new();
    for ((t, pool), b) in &inner.billing {
        if *t != team {
            continue;
        }
        total += b.cost;
        let spec = emu.pool(*pool);
        details.insert(
            spec.map_or_else(|| pool.to_string(), |p| p.name.clone()),
            json!({"pool_id": pool, "model_type": spec.map(|p| p.gpu_model.clone()),
                "intervals": {start.clone(): {
                    "GPU": {"cost": b.cost, "price": spec.map_or(0.0, |p| p.price_per_vgpu_hour), "inclusive_price": 0.0},
                    "interval_cost": b.cost, "interval_hours": b.vgpu_hours}}}),
        );
    }
    Json(json!({"total_billing": total, "currency_code": "USD", "details": details}))
        .into_response()
}

async fn billing_summary(
    State(emu): State<Emulator>,
    team: Option<axum::Extension<Team>>,
    Path((path_team, _start, _end)): Path<(String, String, String)>,
) -> Response {
    let team = team_of(&team);
    if let Err(r) = check_team(&team, Some(&path_team)) {
        return r;
    }
    let inner = emu.lock();
    let (cost, hours) = inner
        .billing
        .iter()
        .filter(|((t, _), _)| *t == team)
        .fold((0.0, 0.0), |(c, h), (_, b)| (c + b.cost, h + b.vgpu_hours));
    if inner.billing_strings {
        // The shape first-party clients read: string amounts, a currency object.
        let per_pool: Vec<Value> = inner
            .billing
            .iter()
            .filter(|((t, _), _)| *t == team)
            .map(|((_, pool), b)| {
                json!({"pool_name": emu.pool(*pool).map(|p| p.name.clone()),
                    "gpu_card_name": emu.pool(*pool).map(|p| p.gpu_model.clone()),
                    "pool_hours": b.vgpu_hours, "total": format!("{:.6}", b.cost)})
            })
            .collect();
        return Json(
            json!({"total_cost": format!("{cost:.6}"), "pool_hours": hours,
            "gpuaas_summary": per_pool, "currency": {"code": "USD", "symbol": "$"}}),
        )
        .into_response();
    }
    Json(json!({"total_cost": cost, "pool_hours": hours, "gpuaas_summary": [], "currency": "USD"}))
        .into_response()
}

async fn control_state(State(emu): State<Emulator>) -> Response {
    let subs = emu.subscriptions();
    let calls = emu.lock().calls.clone();
    Json(json!({"subscriptions": subs, "calls": calls})).into_response()
}

#[derive(Deserialize)]
struct FaultBody {
    endpoint: Option<String>,
    #[serde(default)]
    fault: Fault,
    never_ready_pool: Option<u64>,
    evict_after_bytes: Option<u64>,
    pod: Option<PodFault>,
    billing_strings: Option<bool>,
}

async fn control_faults(
    State(emu): State<Emulator>,
    _h: HeaderMap,
    Json(body): Json<FaultBody>,
) -> Response {
    match body.endpoint.as_deref() {
        Some("*") => emu.set_all_faults(Some(body.fault)),
        Some(e) => emu.set_fault(e, body.fault),
        None => {}
    }
    if let Some(pool) = body.never_ready_pool {
        emu.set_never_ready(pool, true);
    }
    if body.evict_after_bytes.is_some() {
        emu.evict_after_bytes(body.evict_after_bytes);
    }
    if let Some(pod) = body.pod {
        emu.set_pod_fault(pod);
    }
    if let Some(on) = body.billing_strings {
        emu.set_billing_as_strings(on);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn control_evict(State(emu): State<Emulator>, Path(id): Path<u64>) -> Response {
    emu.evict(id);
    StatusCode::NO_CONTENT.into_response()
}
