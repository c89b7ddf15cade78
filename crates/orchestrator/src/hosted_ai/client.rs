//! The user-panel API client: typed answers and errors, retries of transient
//! failures only (capped exponential back-off with jitter), a circuit breaker
//! per pool, and a time limit on every call. It never invents a result: an
//! answer it cannot read is an error.

use crate::{AuthHeader, Secret};
use rand::Rng;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// hosted·ai's error code for a subscribe that finds no free vGPU slot.
pub const INSUFFICIENT_RESOURCES: i64 = 10_189_007;
/// Gauge: 1 while a pool's circuit breaker is open, 0 otherwise.
pub const CIRCUIT_OPEN: &str = "harpoon_hosted_ai_circuit_open";
/// Breaker key of calls that concern no single pool.
pub const PANEL: &str = "panel";

/// Why a hosted·ai call or allocation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HostedAiError {
    /// The pool has no free vGPU slot (code 10189007).
    #[error("pool {pool} has insufficient resources: {message}")]
    InsufficientResources {
        /// The pool.
        pool: String,
        /// The panel's message.
        message: String,
    },
    /// The team already holds a subscription to this pool (409).
    #[error("the team is already subscribed to pool {pool}")]
    AlreadySubscribed {
        /// The pool.
        pool: String,
    },
    /// The API key is wrong, expired or IP-blocked (401).
    #[error("hosted·ai refused the API key (401): {0}")]
    Unauthorized(String),
    /// RBAC denies the call (403).
    #[error("hosted·ai denied the call (403): {0}")]
    Forbidden(String),
    /// The resource does not exist (404).
    #[error("hosted·ai has no such resource (404): {0}")]
    NotFound(String),
    /// Another 4xx: the call itself is wrong; never retried.
    #[error("hosted·ai rejected the call ({status}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Body `code`, when present.
        code: Option<i64>,
        /// Body `message`.
        message: String,
    },
    /// 5xx, 429, a timeout, or a broken connection: retried, then reported.
    #[error("hosted·ai is unreachable or failing: {0}")]
    Transient(String),
    /// A 2xx answer that cannot be read as the documented shape.
    #[error("hosted·ai answered something unreadable: {0}")]
    BadResponse(String),
    /// Too many recent failures on this pool; calls wait for the cool-down.
    #[error("circuit breaker for {pool} is open; next try in {retry_in:?}")]
    CircuitOpen {
        /// The pool (or `panel`).
        pool: String,
        /// Time until a trial call is let through.
        retry_in: Duration,
    },
    /// No allowed pool has free slots within cost and ratio limits.
    #[error("no hosted·ai pool can take the subscription: {0}")]
    NoCapacity(String),
    /// The subscription or its endpoint was not ready in time.
    #[error("hosted·ai capacity was not ready within {0:?}")]
    Timeout(Duration),
    /// Capacity is still being allocated after the request's wait
    /// (`request_wait_secs`); the allocation goes on.
    #[error("capacity is still being allocated after {0:?}; try again shortly")]
    StillAllocating(Duration),
    /// Too many requests are already waiting for capacity.
    #[error("too many requests are waiting for hosted·ai capacity ({0} waiting)")]
    Busy(u32),
    /// hosted·ai is not configured, or the service is shutting down.
    #[error("{0}")]
    Unavailable(String),
}

impl HostedAiError {
    /// Whether retrying the same call may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, HostedAiError::Transient(_))
    }
}

/// Connection settings of the client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// API root, e.g. `https://panel.example.com/api`.
    pub base_url: String,
    /// Team token.
    pub api_key: Secret,
    /// Header carrying the token.
    pub auth_header: AuthHeader,
    /// Team id.
    pub team_id: String,
    /// Time limit of one attempt.
    pub call_timeout: Duration,
    /// Attempts of one call on transient failures.
    pub max_attempts: u32,
    /// Consecutive failures that open a breaker.
    pub breaker_failures: u32,
    /// Time an open breaker waits before a trial call.
    pub breaker_cooldown: Duration,
}

/// Reads an id sent as a number or a string.
fn flex_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("not an id: {other}"))),
    }
}

fn flex_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A pool the team may subscribe to (`available-pools`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AvailablePool {
    /// Pool id.
    #[serde(deserialize_with = "flex_id")]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub pool_name: String,
    /// GPU model.
    #[serde(default)]
    pub gpu_model_type: Option<String>,
    /// Free vGPU slots.
    #[serde(default)]
    pub available_vgpus: u32,
    /// Hourly price (per vGPU, see docs/hosted-ai.md), sent as a string.
    #[serde(default, deserialize_with = "flex_f64")]
    pub pricing_hourly: Option<f64>,
    /// Sharing ratio, when the panel sends it.
    #[serde(default, deserialize_with = "flex_f64")]
    pub sharing_ratio: Option<f64>,
    /// Time quantum in seconds, when sent.
    #[serde(default)]
    pub time_quantum_in_sec: Option<u32>,
}

/// A price quote (`calculate-pool-subscription`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Quote {
    /// Cost of the whole duration.
    #[serde(default, deserialize_with = "flex_f64")]
    pub total_cost: Option<f64>,
    /// Cost per hour of the asked vGPUs.
    #[serde(default, deserialize_with = "flex_f64")]
    pub hourly_cost: Option<f64>,
    /// Currency.
    #[serde(default)]
    pub currency: Option<String>,
}

/// A pod of a subscription.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pod {
    /// Name.
    pub pod_name: String,
    /// `running`, …
    #[serde(default)]
    pub pod_status: String,
}

/// One row of `pool-subscription`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubscriptionRow {
    /// Subscription id.
    #[serde(deserialize_with = "flex_id")]
    pub id: String,
    /// Pool.
    #[serde(deserialize_with = "flex_id")]
    pub pool_id: String,
    /// Owner team.
    #[serde(deserialize_with = "flex_id")]
    pub team_id: String,
    /// `subscribing`, `subscribed`, `active`, `un_subscribing`.
    #[serde(default)]
    pub status: String,
    /// Pods.
    #[serde(default)]
    pub pods: Vec<Pod>,
}

impl SubscriptionRow {
    /// Subscribed with every pod running.
    pub fn is_ready(&self) -> bool {
        matches!(self.status.as_str(), "subscribed" | "active")
            && !self.pods.is_empty()
            && self.pods.iter().all(|p| p.pod_status == "running")
    }

    /// Being released or already gone.
    pub fn is_ending(&self) -> bool {
        matches!(
            self.status.as_str(),
            "un_subscribing" | "unsubscribing" | "gone"
        )
    }
}

/// State of an exposed pod service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServiceState {
    /// Service id, when the answer carries one.
    #[serde(default, deserialize_with = "flex_opt_id")]
    pub id: Option<String>,
    /// `active`, `pending`, …
    #[serde(default)]
    pub status: Option<String>,
    /// Reachable address (expose answer).
    #[serde(default)]
    pub ip: Option<String>,
    /// Reachable address (status answer).
    #[serde(default)]
    pub service_ip: Option<String>,
    /// Port to connect to.
    #[serde(default)]
    pub node_port: Option<u16>,
    /// Whether Kubernetes reports it active.
    #[serde(default)]
    pub kubernetes_active: Option<bool>,
}

fn flex_opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

impl ServiceState {
    /// `http://ip:port` once the service answers as active.
    pub fn endpoint(&self) -> Option<String> {
        let active = self.kubernetes_active.unwrap_or(false)
            || matches!(self.status.as_deref(), Some("active" | "running" | "ready"));
        let ip = self.service_ip.as_ref().or(self.ip.as_ref())?;
        let port = self.node_port?;
        active.then(|| format!("http://{ip}:{port}"))
    }
}

/// Team billing as reported by the panel. Amounts come as numbers or as
/// strings (`"0.007788"`), the currency as a code (`"USD"`) or an object
/// (`{"code": "USD", "symbol": "$"}`); both shapes are read.
#[derive(Debug, Clone, Serialize)]
pub struct BillingSummary {
    /// Total cost of the period: `total_cost`, else the sum of
    /// `gpuaas_summary[].total`.
    pub total_cost: f64,
    /// Currency code (or symbol, when that is all the panel sends).
    pub currency: Option<String>,
}

impl<'de> Deserialize<'de> for BillingSummary {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Item {
            #[serde(default, deserialize_with = "flex_f64")]
            total: Option<f64>,
        }
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default, deserialize_with = "flex_f64")]
            total_cost: Option<f64>,
            #[serde(default)]
            gpuaas_summary: Option<Vec<Item>>,
            #[serde(default)]
            currency: Option<Value>,
            #[serde(default)]
            currency_code: Option<String>,
        }
        let wire = Wire::deserialize(d)?;
        let total_cost = match (wire.total_cost, &wire.gpuaas_summary) {
            (Some(total), _) => total,
            (None, Some(items)) if items.iter().any(|i| i.total.is_some()) => {
                items.iter().filter_map(|i| i.total).sum()
            }
            _ => {
                return Err(serde::de::Error::custom(
                    "no total_cost (number or numeric string) and no gpuaas_summary totals",
                ));
            }
        };
        let currency = match wire.currency {
            Some(Value::String(code)) => Some(code),
            Some(Value::Object(map)) => ["code", "currency_code", "name", "symbol"]
                .iter()
                .find_map(|k| map.get(*k).and_then(Value::as_str).map(str::to_owned)),
            _ => None,
        }
        .or(wire.currency_code);
        Ok(Self {
            total_cost,
            currency,
        })
    }
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
}

/// The hosted·ai user-panel client.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    config: ClientConfig,
    breakers: Mutex<HashMap<String, Breaker>>,
}

/// Breaker state for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls fail fast until the cool-down ends.
    Open,
    /// One trial call decides.
    HalfOpen,
}

/// A call admitted by its breaker and not yet settled. A caller that drops
/// the call (a timeout around it, a client gone) must not leave a half-open
/// breaker's trial flag set: every later call would fail fast forever.
struct Unsettled<'a> {
    client: &'a Client,
    key: &'a str,
    settled: bool,
}

impl Drop for Unsettled<'_> {
    fn drop(&mut self) {
        if !self.settled
            && let Some(b) = self.client.breakers().get_mut(self.key)
        {
            b.trial_in_flight = false;
        }
    }
}

impl Client {
    /// A client for one team.
    pub fn new(config: ClientConfig) -> Result<Self, HostedAiError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.call_timeout.min(Duration::from_secs(10)))
            .timeout(config.call_timeout)
            .build()
            .map_err(|e| HostedAiError::Unavailable(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            config,
            breakers: Mutex::new(HashMap::new()),
        })
    }

    /// The team this client acts for.
    pub fn team_id(&self) -> &str {
        &self.config.team_id
    }

    fn breakers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Breaker>> {
        self.breakers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes every breaker. At shutdown the last chance to release paid
    /// capacity outweighs sparing the panel more calls.
    pub fn close_breakers(&self) {
        self.breakers().clear();
    }

    /// Breaker state of `key` (a pool id or [`PANEL`]).
    pub fn breaker_state(&self, key: &str) -> BreakerState {
        match self.breakers().get(key) {
            Some(Breaker {
                open_until: Some(until),
                ..
            }) if Instant::now() < *until => BreakerState::Open,
            Some(Breaker {
                open_until: Some(_),
                ..
            }) => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }

    fn admit(&self, key: &str) -> Result<(), HostedAiError> {
        let mut breakers = self.breakers();
        let b = breakers.entry(key.to_owned()).or_default();
        if let Some(until) = b.open_until {
            let now = Instant::now();
            if now < until {
                return Err(HostedAiError::CircuitOpen {
                    pool: key.to_owned(),
                    retry_in: until - now,
                });
            }
            if b.trial_in_flight {
                return Err(HostedAiError::CircuitOpen {
                    pool: key.to_owned(),
                    retry_in: Duration::ZERO,
                });
            }
            b.trial_in_flight = true;
        }
        Ok(())
    }

    fn settle(&self, key: &str, transient_failure: bool) {
        let mut breakers = self.breakers();
        let b = breakers.entry(key.to_owned()).or_default();
        b.trial_in_flight = false;
        if transient_failure {
            b.failures += 1;
            if b.failures >= self.config.breaker_failures || b.open_until.is_some() {
                b.open_until = Some(Instant::now() + self.config.breaker_cooldown);
                metrics::gauge!(CIRCUIT_OPEN, "pool" => crate::hosted_ai::pool_label(key)).set(1.0);
            }
        } else {
            if b.open_until.is_some() {
                metrics::gauge!(CIRCUIT_OPEN, "pool" => crate::hosted_ai::pool_label(key)).set(0.0);
            }
            *b = Breaker::default();
        }
    }

    /// One call with retries of transient failures, under `key`'s breaker.
    async fn call(
        &self,
        key: &str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Option<Value>, HostedAiError> {
        let url = format!("{}{path}", self.config.base_url.trim_end_matches('/'));
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.admit(key)?;
            let mut pending = Unsettled {
                client: self,
                key,
                settled: false,
            };
            let outcome = self
                .once(&method, &url, query, body)
                .instrument(tracing::info_span!(target: crate::SPANS, "hosted_ai",
                    http.request.method = %method, url.path = path, harpoon.attempt = attempt))
                .await;
            pending.settled = true;
            // Only transient failures count against a pool: a 409 or 10189007 is
            // the pool answering correctly.
            self.settle(key, matches!(&outcome, Err(e) if e.is_transient()));
            match outcome {
                Err(e) if e.is_transient() && attempt < self.config.max_attempts => {
                    let base = 100u64 << (attempt - 1).min(6);
                    let capped = base.min(5_000);
                    let jitter = rand::rng().random_range(0..=capped / 2);
                    tracing::debug!(%path, attempt, error = %e, "hosted·ai call failed; retrying");
                    tokio::time::sleep(Duration::from_millis(capped / 2 + jitter)).await;
                }
                other => return other,
            }
        }
    }

    async fn once(
        &self,
        method: &Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Option<Value>, HostedAiError> {
        let mut builder = self.http.request(method.clone(), url).query(query);
        builder = match self.config.auth_header {
            AuthHeader::XApiKey => builder.header("X-API-Key", self.config.api_key.expose()),
            AuthHeader::Bearer => builder.bearer_auth(self.config.api_key.expose()),
        };
        if let Some(body) = body {
            builder = builder.json(body);
        }
        // Messages name the call by its path, not the panel's address.
        let shown = url
            .strip_prefix(self.config.base_url.trim_end_matches('/'))
            .unwrap_or(url);
        let resp = builder.send().await.map_err(transport)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(transport)?;
        if status.is_success() {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
            let value: Value = serde_json::from_slice(&bytes)
                .map_err(|e| HostedAiError::BadResponse(format!("{shown}: not JSON ({e})")))?;
            if value.get("result").and_then(Value::as_str) == Some("FAILURE") {
                return Err(HostedAiError::BadResponse(format!(
                    "{shown}: result FAILURE: {value}"
                )));
            }
            return Ok(Some(value));
        }
        let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let code = parsed.get("code").and_then(Value::as_i64);
        let message = parsed
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
        Err(match status.as_u16() {
            _ if code == Some(INSUFFICIENT_RESOURCES) => HostedAiError::InsufficientResources {
                pool: String::new(),
                message,
            },
            409 => HostedAiError::AlreadySubscribed {
                pool: String::new(),
            },
            401 => HostedAiError::Unauthorized(message),
            403 => HostedAiError::Forbidden(message),
            404 => HostedAiError::NotFound(message),
            429 | 500..=599 => HostedAiError::Transient(format!("HTTP {status}: {message}")),
            s => HostedAiError::Rejected {
                status: s,
                code,
                message,
            },
        })
    }

    async fn typed<T: DeserializeOwned>(
        &self,
        what: &str,
        value: Option<Value>,
    ) -> Result<T, HostedAiError> {
        let value =
            value.ok_or_else(|| HostedAiError::BadResponse(format!("{what}: empty body")))?;
        serde_json::from_value(value)
            .map_err(|e| HostedAiError::BadResponse(format!("{what}: {e}")))
    }

    /// `GET /gpuaas/available-pools`.
    pub async fn available_pools(&self) -> Result<Vec<AvailablePool>, HostedAiError> {
        let v = self
            .call(
                PANEL,
                Method::GET,
                "/gpuaas/available-pools",
                &[("team_id", self.config.team_id.clone())],
                None,
            )
            .await?;
        self.typed("available-pools", v.map(unwrap_list)).await
    }

    /// `GET /gpuaas/all-pools`.
    pub async fn all_pools(&self) -> Result<Vec<Value>, HostedAiError> {
        let v = self
            .call(PANEL, Method::GET, "/gpuaas/all-pools", &[], None)
            .await?;
        self.typed("all-pools", v.map(unwrap_list)).await
    }

    /// `POST /gpuaas/calculate-pool-subscription` for one hour.
    pub async fn calculate(&self, pool: &str, vgpus: u32) -> Result<Quote, HostedAiError> {
        let body = json!({"pool_id": pool_id_json(pool), "vgpus": vgpus, "duration_hours": 1, "team_id": self.config.team_id});
        let v = self
            .call(
                pool,
                Method::POST,
                "/gpuaas/calculate-pool-subscription",
                &[],
                Some(&body),
            )
            .await?;
        self.typed("calculate-pool-subscription", v).await
    }

    /// `POST /gpuaas/pool/subscribe`; `None` when the panel answers an empty body.
    pub async fn subscribe(
        &self,
        pool: &str,
        vgpus: u32,
        instance_type_id: Option<&str>,
        image_uuid: Option<&str>,
    ) -> Result<Option<String>, HostedAiError> {
        let body = json!({
            "pool_id": pool_id_json(pool),
            "team_id": self.config.team_id,
            "vgpus": vgpus,
            "instance_type_id": instance_type_id,
            "ephemeral_storage_block_id": null,
            "shared_volumes": [],
            "image_uuid": image_uuid,
            "is_vip_priority": false,
            "guaranteed_gpu_share_percent": 0,
        });
        let v = self
            .call(
                pool,
                Method::POST,
                "/gpuaas/pool/subscribe",
                &[],
                Some(&body),
            )
            .await
            .map_err(|e| with_pool(e, pool))?;
        Ok(v.and_then(|v| v.get("subscription_id").cloned())
            .and_then(|id| match id {
                Value::String(s) => Some(s),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }))
    }

    /// `POST /gpuaas/pool/unsubscribe`.
    pub async fn unsubscribe(
        &self,
        pool: &str,
        subscription_id: &str,
    ) -> Result<(), HostedAiError> {
        let body = json!({"subscription_id": pool_id_json(subscription_id), "team_id": self.config.team_id, "pool_id": pool_id_json(pool)});
        self.call(
            pool,
            Method::POST,
            "/gpuaas/pool/unsubscribe",
            &[],
            Some(&body),
        )
        .await
        .map(|_| ())
    }

    /// `GET /gpuaas/pool-subscription`, every page, keeping only this team's rows
    /// (the real filter was seen leaking other teams').
    pub async fn subscriptions(&self) -> Result<Vec<SubscriptionRow>, HostedAiError> {
        let mut rows = Vec::new();
        let per_page = 100;
        for page in 0..100 {
            let v = self
                .call(
                    PANEL,
                    Method::GET,
                    "/gpuaas/pool-subscription",
                    &[
                        ("team_id", self.config.team_id.clone()),
                        ("page", page.to_string()),
                        ("per_page", per_page.to_string()),
                        ("metric_window", "last_5m".into()),
                    ],
                    None,
                )
                .await?
                .ok_or_else(|| {
                    HostedAiError::BadResponse("pool-subscription: empty body".into())
                })?;
            let total_pages = v.get("total_pages").and_then(Value::as_u64);
            let items: Vec<Value> = serde_json::from_value(unwrap_list(v))
                .map_err(|e| HostedAiError::BadResponse(format!("pool-subscription: {e}")))?;
            let n = items.len();
            for item in items {
                let row: SubscriptionRow = serde_json::from_value(item).map_err(|e| {
                    HostedAiError::BadResponse(format!("pool-subscription row: {e}"))
                })?;
                if row.team_id == self.config.team_id {
                    rows.push(row);
                }
            }
            match total_pages {
                Some(total) if (page as u64) + 1 < total && n > 0 => {}
                _ => break,
            }
        }
        Ok(rows)
    }

    /// `GET /gpuaas/connection-info` of one subscription.
    pub async fn connection_info(
        &self,
        subscription_id: &str,
    ) -> Result<Vec<Value>, HostedAiError> {
        let v = self
            .call(
                PANEL,
                Method::GET,
                "/gpuaas/connection-info",
                &[
                    ("team_id", self.config.team_id.clone()),
                    ("subscription_id", subscription_id.to_owned()),
                ],
                None,
            )
            .await?;
        self.typed("connection-info", v.map(unwrap_list)).await
    }

    /// `POST /pods/expose-service`.
    pub async fn expose_service(
        &self,
        pod_name: &str,
        subscription_id: &str,
        port: u16,
        service_name: &str,
    ) -> Result<ServiceState, HostedAiError> {
        let body = json!({"pod_name": pod_name, "pool_subscription_id": pool_id_json(subscription_id),
            "port": port, "service_name": service_name, "protocol": "TCP", "service_type": "NodePort"});
        let v = match self
            .call(
                PANEL,
                Method::POST,
                "/pods/expose-service",
                &[],
                Some(&body),
            )
            .await
        {
            // 409 here is the service name taken: the service exists (a
            // retried call, or a repair racing an allocation); look it up.
            Err(HostedAiError::AlreadySubscribed { .. }) => {
                return self.service_status(subscription_id, service_name).await;
            }
            other => other?,
        };
        self.typed("expose-service", v).await
    }

    /// `GET /pods/expose-service/status`.
    pub async fn service_status(
        &self,
        subscription_id: &str,
        service_name: &str,
    ) -> Result<ServiceState, HostedAiError> {
        let v = self
            .call(
                PANEL,
                Method::GET,
                "/pods/expose-service/status",
                &[
                    ("service_name", service_name.to_owned()),
                    ("pool_subscription_id", subscription_id.to_owned()),
                ],
                None,
            )
            .await?;
        self.typed("expose-service/status", v).await
    }

    /// `DELETE /pods/delete-exposed-service/{id}`.
    pub async fn delete_service(&self, id: &str) -> Result<(), HostedAiError> {
        self.call(
            PANEL,
            Method::DELETE,
            &format!("/pods/delete-exposed-service/{id}"),
            &[],
            None,
        )
        .await
        .map(|_| ())
    }

    /// `GET /gpuaas/{team}/metrics`.
    pub async fn team_metrics(&self) -> Result<Value, HostedAiError> {
        let path = format!("/gpuaas/{}/metrics", self.config.team_id);
        let v = self.call(PANEL, Method::GET, &path, &[], None).await?;
        v.ok_or_else(|| HostedAiError::BadResponse("metrics: empty body".into()))
    }

    /// `GET /team-billing/gpuaas-pool/{team}/{start}/{end}/{interval}?timezone=UTC`.
    pub async fn billing_pool(
        &self,
        start: &str,
        end: &str,
        interval: &str,
    ) -> Result<Value, HostedAiError> {
        let path = format!(
            "/team-billing/gpuaas-pool/{}/{start}/{end}/{interval}",
            self.config.team_id
        );
        let v = self
            .call(
                PANEL,
                Method::GET,
                &path,
                &[("timezone", "UTC".into()), ("region_id", "all".into())],
                None,
            )
            .await?;
        v.ok_or_else(|| HostedAiError::BadResponse("billing: empty body".into()))
    }

    /// `GET /team-billing/summary/{team}/{start}/{end}`.
    pub async fn billing_summary(
        &self,
        start: &str,
        end: &str,
    ) -> Result<BillingSummary, HostedAiError> {
        let path = format!(
            "/team-billing/summary/{}/{start}/{end}",
            self.config.team_id
        );
        let v = self
            .call(
                PANEL,
                Method::GET,
                &path,
                &[("timezone", "UTC".into())],
                None,
            )
            .await?;
        self.typed("billing summary", v).await
    }
}

/// Pool and subscription ids go out as numbers when they are numeric, as the panel expects.
fn pool_id_json(id: &str) -> Value {
    id.parse::<u64>().map_or_else(|_| json!(id), |n| json!(n))
}

/// The list inside `{items}`, `{data}`, or a bare array.
fn unwrap_list(v: Value) -> Value {
    match v {
        Value::Object(mut map) => map
            .remove("items")
            .or_else(|| map.remove("data"))
            .unwrap_or(Value::Object(map)),
        other => other,
    }
}

fn with_pool(e: HostedAiError, pool: &str) -> HostedAiError {
    match e {
        HostedAiError::InsufficientResources { message, .. } => {
            HostedAiError::InsufficientResources {
                pool: pool.to_owned(),
                message,
            }
        }
        HostedAiError::AlreadySubscribed { .. } => HostedAiError::AlreadySubscribed {
            pool: pool.to_owned(),
        },
        other => other,
    }
}

fn transport(e: reqwest::Error) -> HostedAiError {
    // reqwest names the URL in its errors; these reach clients, so the
    // message says the cause only (the panel's address is configuration).
    let timeout = e.is_timeout();
    let e = e.without_url();
    HostedAiError::Transient(if timeout {
        format!("timed out: {e}")
    } else {
        e.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_billing_summary_reads_numbers_strings_and_currency_objects() {
        let read = |v: Value| serde_json::from_value::<BillingSummary>(v).unwrap();
        let b = read(
            json!({"total_cost": 1.5, "pool_hours": 2, "gpuaas_summary": [], "currency": "USD"}),
        );
        assert_eq!((b.total_cost, b.currency.as_deref()), (1.5, Some("USD")));
        let b = read(
            json!({"total_cost": "0.007788", "pool_hours": 0.1, "gpuaas_summary": [],
            "currency": {"code": "USD", "symbol": "$"}}),
        );
        assert_eq!(
            (b.total_cost, b.currency.as_deref()),
            (0.007_788, Some("USD"))
        );
        let b = read(
            json!({"gpuaas_summary": [{"pool_name": "a", "total": "0.5"}, {"total": 0.25}],
            "currency": {"symbol": "€"}}),
        );
        assert_eq!((b.total_cost, b.currency.as_deref()), (0.75, Some("€")));
        assert!(serde_json::from_value::<BillingSummary>(json!({"currency": "USD"})).is_err());
        assert!(serde_json::from_value::<BillingSummary>(json!({"total_cost": "n/a"})).is_err());
    }

    #[test]
    fn transport_errors_do_not_name_the_panel_s_address() {
        let e = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(
                reqwest::Client::new()
                    .get("http://127.0.0.1:1/api/secret-path")
                    .send(),
            )
            .unwrap_err();
        let text = transport(e).to_string();
        assert!(
            !text.contains("127.0.0.1") && !text.contains("secret-path"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_dropped_trial_call_does_not_jam_a_half_open_breaker() {
        // A panel that accepts and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let client = Client::new(ClientConfig {
            base_url: format!("http://{addr}"),
            api_key: Secret::new("k".to_owned()),
            auth_header: AuthHeader::XApiKey,
            team_id: "team".to_owned(),
            call_timeout: Duration::from_secs(10),
            max_attempts: 1,
            breaker_failures: 1,
            breaker_cooldown: Duration::from_millis(10),
        })
        .unwrap();
        client.breakers().insert(
            "pool".to_owned(),
            Breaker {
                failures: 1,
                open_until: Instant::now().checked_sub(Duration::from_millis(1)),
                trial_in_flight: false,
            },
        );
        assert_eq!(client.breaker_state("pool"), BreakerState::HalfOpen);
        let trial = client.call("pool", Method::GET, "/hang", &[], None);
        assert!(
            tokio::time::timeout(Duration::from_millis(200), trial)
                .await
                .is_err(),
            "the panel never answers"
        );
        assert!(
            client.admit("pool").is_ok(),
            "the next call gets its trial instead of failing fast forever"
        );
    }
}
